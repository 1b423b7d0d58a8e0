"""Hostile requests at a fixed seed: every endpoint × random methods × broken bodies, content types and paths, then
raw-socket requests with broken HTTP. Whatever arrives, the server answers below 500 and stays up. A traversal path
never gets a 2xx. Every 4xx under /api/ or /ajax-api/ is MLflow's error JSON.

FUZZ_SEED and FUZZ_REQUESTS (environment) change the seed and the number of HTTP requests (default 2,400). Failures
are grouped by class (check, endpoint, method, body kind), with one example each."""
import collections
import http.client
import json
import os
import random
import re
import socket
import struct
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

import pytest
from mlflow import MlflowClient
from mlflow.entities import Dataset, DatasetInput, InputTag

from tally_client import encode_batch

SEED = int(os.environ.get("FUZZ_SEED", "20261130"))
N_HTTP = int(os.environ.get("FUZZ_REQUESTS", "2400"))
N_RAW = 160
SMALL_LIMIT = 1 << 20  # the server's default small-body limit

# (path under the MLflow prefixes, its method). The ajax-only routes are tried under /api/ too (there: 404).
MLFLOW_ENDPOINTS = [
    ("/experiments/create", "POST"), ("/experiments/get", "GET"), ("/experiments/get-by-name", "GET"),
    ("/experiments/search", "POST"), ("/experiments/search", "GET"), ("/experiments/update", "POST"),
    ("/experiments/delete", "POST"), ("/experiments/restore", "POST"), ("/experiments/set-experiment-tag", "POST"),
    ("/experiments/delete-experiment-tag", "POST"), ("/runs/create", "POST"), ("/runs/get", "GET"),
    ("/runs/update", "POST"), ("/runs/delete", "POST"), ("/runs/restore", "POST"), ("/runs/set-tag", "POST"),
    ("/runs/delete-tag", "POST"), ("/runs/log-metric", "POST"), ("/runs/log-parameter", "POST"),
    ("/runs/log-batch", "POST"), ("/runs/log-inputs", "POST"), ("/runs/log-model", "POST"), ("/runs/search", "POST"),
    ("/metrics/get-history", "GET"), ("/metrics/get-history-bulk-interval", "GET"), ("/metrics/get-history-bulk", "GET"),
    ("/artifacts/list", "GET"), ("/logged-models/search", "POST"), ("/experiments/search-datasets", "POST"),
    ("/upload-artifact", "POST"), ("/logged-models", "POST"), ("/runs/outputs", "POST"), ("/logged-models/m-0", "GET"),
    ("/logged-models/m-0", "PATCH"), ("/logged-models/m-0", "DELETE"), ("/logged-models/m-0/tags", "PATCH"),
    ("/logged-models/m-0/tags/k", "DELETE"), ("/logged-models/m-0/params", "POST"),
    ("/registered-models/create", "POST"), ("/registered-models/get", "GET"), ("/registered-models/rename", "POST"),
    ("/registered-models/update", "PATCH"), ("/registered-models/delete", "DELETE"), ("/registered-models/set-tag", "POST"),
    ("/registered-models/delete-tag", "DELETE"), ("/registered-models/search", "GET"), ("/registered-models/get-latest-versions", "POST"),
    ("/registered-models/alias", "POST"), ("/registered-models/alias", "GET"), ("/registered-models/alias", "DELETE"),
    ("/model-versions/create", "POST"), ("/model-versions/get", "GET"), ("/model-versions/update", "PATCH"),
    ("/model-versions/delete", "DELETE"), ("/model-versions/set-tag", "POST"), ("/model-versions/delete-tag", "DELETE"),
    ("/model-versions/get-download-uri", "GET"), ("/model-versions/search", "GET"), ("/model-versions/transition-stage", "POST"),
]
PREFIXES = ["/api/2.0/mlflow", "/ajax-api/2.0/mlflow"]
METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE"]
FIELDS = ["experiment_id", "experiment_ids", "name", "new_name", "artifact_location", "tags", "run_id", "run_uuid",
          "run_ids", "key", "value", "timestamp", "step", "metrics", "params", "datasets", "models", "filter",
          "filter_string", "max_results", "order_by", "page_token", "run_view_type", "view_type", "status", "end_time",
          "start_time", "run_name", "metric_key", "metric_keys", "start_step", "end_step", "path", "experiment_name",
          "model_json", "buckets", "mode", "format", "max_points", "batch_id", "steps", "timestamps", "values",
          "user_id", "description", "model_id", "source_run_id", "model_type", "allow_deleted", "field_name", "ascending",
          "dataset_name", "dataset_digest", "new_name", "version", "alias", "source", "stage", "archive_existing_versions",
          "stages", "run_link"]
TRAVERSALS = ["../x", "..", "../../../../etc/passwd", "%2e%2e/x", "%2E%2E%2Fetc%2Fpasswd", "%2e%2e%2f%2e%2e%2fx",
              "%252e%252e/x", "%25252e%25252e%25252fx", "/etc/passwd", "%2Fetc%2Fpasswd", "//etc", "/", "..\\..\\etc\\passwd",
              "..%5C..%5Cx", "%5C%5Cserver%5Cshare", "\\etc\\passwd", "a/../../b", "a/%2e%2e/%2e%2e/b", "C:/x", "C:\\x",
              "c:%5Cx", "file:///etc/passwd", "sub/dir/../../..", "./../x", "x/..%2f..%2f..%2fy"]
ODD_PATHS = ["", ".", "./", "a//b", "%00", "a%00b", "%ff%fe", "%c0%ae%c0%ae/x", "%ed%a0%80", "%", "%zz", "a#b", "a%23b",
             "x" * 5000, "é/ü", "%F0%9F%98%80", "a;b", "a?b", "a b", "sub/dir/hello.txt", "hello.txt", "nope"]
RAW_TOKENS = ["NaN", "-NaN", "Infinity", "-Infinity", "inf", "nan", "1e999999", "-1e999999", "1e-999999",
              "123456789012345678901234567890123456789", "-9223372036854775809", "9223372036854775808",
              "18446744073709551616", "0.1e", "01", "+1", ".5", "1.", "0x1F", "-0", "1E400", "-", "1e", "1e+",
              '"\\ud800"', '"\\udc00"', '"\\ud800\\u0041"', '"\\udbff\\udfff"', '"\\u0000"', '"\\uZZZZ"', '"\\u12"',
              '"\\x41"', '"a\\', '"\\', '"', "tru", "nul", "fals", "truex", "[", "{", "]", "}", ",", ":", "[,]", "{,}",
              '{"a"}', '{"a":}', '{:1}', "[1,]", '{"a":1,}', "//", "/* c */ 1", "'x'", "undefined", "None", "True"]
RAW_BYTES = [b'"\xc3\x28"', b'"\xc0\xaf"', b'"\xed\xa0\x80"', b'"\xf4\x90\x80\x80"', b'"\xff"', b'"\x00"', b'"a\x01b"',
             b'"\x7f"', b'"\xe2\x82"', b"\x00", b"\xef\xbb\xbf{}", b"\xfe\xff\x00{\x00}", b'"\t\n"']
CONTENT_TYPES = ["application/json"] * 6 + [None, "text/plain", "application/x-www-form-urlencoded",
                                            "multipart/form-data; boundary=zz", "application/x-tally-columns",
                                            "application/octet-stream", "application/json; charset=utf-16",
                                            "application/json; charset=utf-8", "APPLICATION/JSON", "", "application/json\u00ff",
                                            "application/" + "j" * 3000, "*/*"]

SCALARS = [None, True, False, 0, -1, 1, 2 ** 63 - 1, -2 ** 63, 2 ** 63, 2 ** 64, 10 ** 30, -(10 ** 30), 1.5, -0.0, 1e308,
           5e-324, float("nan"), float("inf"), float("-inf"), "", "NaN", "Infinity", "-5", "1.5", "17", "abc", "true"]
URL_SAFE = "".join(chr(i) for i in range(33, 127))

# Checks -> failures: (check, endpoint template, method, body kind) -> [count, example]
Failures = collections.OrderedDict


def fully_decoded(s):
    for _ in range(10):
        d = urllib.parse.unquote(s)
        if d == s:
            break
        s = d
    return s


def is_traversal(p):
    d = fully_decoded(p).replace("\\", "/")
    return (".." in d.split("/") or d.startswith("/") or re.match(r"^[A-Za-z]:", d) is not None
            or d.startswith("file:"))


class Fuzz:
    def __init__(self, server, rng, ids):
        self.server, self.rng, self.ids = server, rng, ids
        self.host, port = server.url.split("//", 1)[1].split(":")
        self.port = int(port)
        self.failures = Failures()
        self.count = 0
        self.statuses = collections.Counter()

    # values

    def rand_str(self, n=None):
        r = self.rng
        n = n if n is not None else r.choice([0, 1, 5, 20, 300, 5000])
        alphabet = r.choice(["abcxyz", "\u00e9\u4e2d\U0001F600", "\x00\x01\x1f", "/.\\%#?&=+ ", "'\"{}[]:,"])
        return "".join(r.choices(alphabet, k=n))

    def id_like(self):
        r = self.rng
        if r.random() < 0.1:
            return self.rand_str()
        return r.choice([self.ids["rid"], self.ids["rid"], self.ids["eid"], "0", "1", "-1", "424242",
                         "0123456789abcdef0123456789abcdef", self.ids["rid"] + "\u0000", self.ids["rid"].upper(),
                         self.ids["rid"][:-1], "x" * 33, "", " ", "9" * 30])

    def value(self, depth=0):
        r = self.rng
        v = r.choice(SCALARS + [self.id_like, self.rand_str, lambda: r.choice(TRAVERSALS)])
        if callable(v):
            v = v()
        if depth < 2 and r.random() < 0.25:
            if r.random() < 0.5:
                return [self.value(depth + 1) for _ in range(r.choice([0, 1, 2, 5, 50]))]
            return {r.choice(FIELDS + ["key", "value", "x"]): self.value(depth + 1) for _ in range(r.choice([0, 1, 3]))}
        return v

    def entity_list(self, field):
        r = self.rng
        if field == "metrics":
            return [{"key": r.choice(["m", "loss", self.rand_str()]), "value": self.value(), "timestamp": self.value(),
                     "step": self.value()} for _ in range(r.choice([0, 1, 3, 200]))]
        if field in ("params", "tags"):
            return [{"key": r.choice(["p", self.rand_str()]), "value": self.value()} for _ in range(r.choice([0, 1, 3, 150]))]
        if field == "datasets":
            return [{"dataset": {"name": self.value(), "digest": self.value(), "source_type": "local",
                                 "source": self.value()}, "tags": [{"key": "mlflow.data.context", "value": self.value()}]}]
        return self.value()

    def json_object(self, fields):
        r = self.rng
        obj = {}
        for f in r.sample(fields, k=min(len(fields), r.choice([0, 1, 2, 3, 5, 8]))):
            obj[f] = self.entity_list(f) if f in ("metrics", "params", "tags", "datasets") and r.random() < 0.7 else self.value()
        return obj

    # bodies: (kind, bytes)

    def body(self, fields):
        r = self.rng
        kind = r.choices(["wrong-types", "raw-token", "raw-bytes", "invalid-json", "deep-nesting", "long-string",
                          "oversized", "random-bytes", "empty", "valid-ish"],
                         weights=[30, 14, 6, 8, 6, 5, 2, 4, 3, 8])[0]
        if kind in ("wrong-types", "valid-ish"):
            obj = self.json_object(fields)
            if kind == "valid-ish":
                obj.update({"run_id": self.ids["rid"], "experiment_id": self.ids["eid"], "experiment_ids": [self.ids["eid"]]})
            return kind, json.dumps(obj, ensure_ascii=r.random() < 0.5).encode("utf-8", "surrogatepass")
        if kind == "raw-token":
            obj = self.json_object(fields)
            obj[r.choice(fields)] = "__RAW__"
            tok = r.choice(RAW_TOKENS)
            return kind + ":" + tok[:12], json.dumps(obj).replace('"__RAW__"', tok, 1).encode()
        if kind == "raw-bytes":
            obj = self.json_object(fields)
            obj[r.choice(fields)] = "__RAW__"
            return kind, json.dumps(obj).encode().replace(b'"__RAW__"', r.choice(RAW_BYTES), 1)
        if kind == "invalid-json":
            return kind, r.choice([b"{", b"}", b"[1,2]", b'"x"', b"nul", b"null", b"1", b'{"a":1} x', b"{}{}", b"\xff\xfe",
                                   b'{"experiment_id": "0",}', b"{'a': 1}", b'{"a" 1}', b'{"a":1', b"[", b" \t\r\n ",
                                   b'{"run_id": "' + self.ids["rid"].encode() + b'"'])
        if kind == "deep-nesting":
            n = r.choice([64, 512, 4096, 65536, 400_000])
            shape = r.choice(["array", "object", "unclosed", "mixed"])
            if shape == "array":
                b = b"[" * n + b"]" * n
            elif shape == "object":
                b = b'{"a":' * n + b"1" + b"}" * n
            elif shape == "unclosed":
                b = b"[" * n
            else:
                b = b'{"metrics": ' + b'[{"k":' * n + b"0" + b"}]" * n + b"}"
            return f"{kind}:{shape}:{n}", b
        if kind == "long-string":
            n = r.choice([10_000, 100_000, 600_000])
            obj = self.json_object(fields)
            obj[r.choice(fields)] = r.choice(["x", "\u00e9", "\\", "\u0000", "/"]) * n
            return f"{kind}:{n}", json.dumps(obj).encode()
        if kind == "oversized":
            n = r.choice([SMALL_LIMIT + 1, SMALL_LIMIT + 100_000, 3 * SMALL_LIMIT])
            return f"{kind}:{n}", (b'{"run_id": "' + self.ids["rid"].encode() + b'", "x": "' + b"a" * n + b'"}')
        if kind == "random-bytes":
            return kind, bytes(r.randrange(256) for _ in range(r.choice([1, 10, 1000])))
        return kind, b""

    def native_body(self):
        r = self.rng
        good = encode_batch([("k", [1, 2, 3], [1, 2, 3], [1.0, float("nan"), float("inf")]),
                             ("j", [5], [0], [2.0])], batch_id=r.choice([None, "b%d" % r.randrange(50)]),
                            float32=r.random() < 0.3)
        kind = r.choice(["good", "flip", "truncate", "extend", "header", "count", "compressed", "json", "json-bad"])
        if kind == "good":
            return kind, good
        b = bytearray(good)
        if kind == "flip":
            for _ in range(r.choice([1, 3, 10])):
                b[r.randrange(len(b))] = r.randrange(256)
        elif kind == "truncate":
            b = b[:r.randrange(len(b))]
        elif kind == "extend":
            b += bytes(r.randrange(256) for _ in range(r.choice([1, 8, 100])))
        elif kind == "header":
            struct.pack_into("<I", b, 8, r.choice([0, 1, 2 ** 31, 2 ** 32 - 1, len(b), 1 << 30]))
        elif kind == "count":
            struct.pack_into("<I", b, 12, r.choice([0, 2 ** 32 - 1, 100_001, 3, 1 << 20]))
            if r.random() < 0.5:  # the first series' point count too (after the batch id, key "k", type and reserved byte)
                at = 16 + 2 + struct.unpack_from("<H", b, 16)[0] + 2 + 1 + 2
                struct.pack_into("<I", b, at, r.choice([2 ** 32 - 1, 1 << 28, 1 << 61 >> 32]))
        elif kind == "compressed":
            b[5] = 1
            struct.pack_into("<I", b, 8, r.choice([1 << 30, 2 ** 32 - 1, 256 << 20, 10]))
            b = b[:16] + bytes(r.randrange(256) for _ in range(r.choice([0, 4, 64])))
        elif kind == "json":
            return kind, json.dumps({"batch_id": r.choice([None, 5, "x" * 300, "ok"]),
                                     "metrics": [{"key": r.choice(["k", "", "bad key!", "\u0000", "a/../b"]),
                                                  "steps": self.value(), "timestamps": self.value(),
                                                  "values": self.value()}]}).encode()
        else:
            return kind, self.body(["metrics", "batch_id", "steps", "values", "timestamps"])[1]
        return kind, bytes(b)

    def query(self, fields, path_field=None):
        r = self.rng
        parts = []
        for f in r.sample(fields, k=min(len(fields), r.choice([0, 1, 2, 3, 4]))):
            for _ in range(r.choice([1, 1, 1, 2, 120])):
                v = self.value()
                v = json.dumps(v) if not isinstance(v, str) else v
                parts.append(f"{urllib.parse.quote(f)}={urllib.parse.quote(v[:4000], safe='')}")
        if r.random() < 0.1:
            parts.append(r.choice(["%", "%zz", "a=%00", "=", "&&", "a", "a=b=c", "%ed%a0%80=1", "x=%C0%AE"]))
        # Request heads stay far below HTTP servers' head limits (Tally's is 80 KiB): huge heads are the raw part's.
        while parts and sum(len(x) + 1 for x in parts) > 24_000:
            parts.pop(r.randrange(len(parts)))
        traversal = False
        if path_field:
            if r.random() < 0.5:
                p = r.choice(TRAVERSALS)
                traversal = is_traversal(p)
            else:
                p = r.choice(ODD_PATHS + [self.ids["root"], self.ids["root"] + "/sub", "sub"])
            p = p.replace(" ", "%20").replace("#", "%23")
            parts.append(f"{path_field}={p.replace(chr(92), '%5C') if r.random() < 0.5 else p}")
        r.shuffle(parts)
        return "&".join(parts), traversal

    # one request

    def send(self, method, path, body, ctype, template, body_kind, traversal=False, extra_headers=None):
        self.count += 1
        status, data, headers, error = None, b"", {}, None
        path = urllib.parse.quote(path, safe=URL_SAFE)  # only non-ASCII, spaces and control characters
        c = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            c.putrequest(method, path, skip_accept_encoding=True)
            if ctype is not None:
                c.putheader("Content-Type", ctype)
            for k, v in (extra_headers or {}).items():
                c.putheader(k, v)
            if body is not None:
                c.putheader("Content-Length", str(len(body)))
            c.endheaders()
            if body:
                try:
                    c.send(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # an early answer (413) may close the connection before the body is sent
            r = c.getresponse()
            status, headers, data = r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        except (http.client.HTTPException, OSError) as e:
            error = type(e).__name__
        finally:
            c.close()
        self.statuses[status] += 1
        example = f"{method} {path[:300]} ct={ctype!r} body={body_kind}:{(body or b'')[:120]!r} -> {status} {data[:300]!r}"
        if traversal:
            form = re.findall(r"(?:^|[?&])path=([^&]*)", path.split("?", 1)[1]) if "?" in path else []
            form = form[-1] if form else path.split("?")[0].replace(self.ids["root"], "<root>")
            body_kind = "path " + form.replace(self.ids["root"], "<root>")
        if status is None:
            if not body_kind.startswith(("oversized", "over-10MB")):
                self.fail("no answer (" + str(error) + ")", template, method, body_kind, example)
            return status
        if status >= 500:
            self.fail(f"5xx ({status})", template, method, body_kind, example)
        # OPTIONS names the methods a route serves (204 on the API, 200 at the root, no body, as MLflow answers it):
        # nothing is read or served.
        if traversal and 200 <= status < 300 and not (method == "OPTIONS" and status in (200, 204) and not data):
            self.fail("traversal answered 2xx", template, method, body_kind, example)
        bare = path.split("?", 1)[0]
        if 400 <= status < 500 and method != "HEAD" and bare.startswith(("/api/", "/ajax-api/")):
            ok = False
            try:
                j = json.loads(data)
                ok = isinstance(j, dict) and isinstance(j.get("error_code"), str) and isinstance(j.get("message"), str)
            except ValueError:
                pass
            if not ok or not headers.get("content-type", "").startswith("application/json"):
                self.fail(f"4xx ({status}) without MLflow error JSON", template, method, body_kind, example)
        return status

    def fail(self, check, template, method, body_kind, example):
        """Groups by check, endpoint, method and body kind; traversals by endpoint and method, listing the path forms."""
        detail = ""
        if body_kind.startswith("path "):
            body_kind, detail = "path", body_kind[5:]
        key = (check, template, method, body_kind.split(":")[0])
        if key not in self.failures:
            self.failures[key] = [0, example, []]
        self.failures[key][0] += 1
        if detail and detail not in self.failures[key][2]:
            self.failures[key][2].append(detail)

    # the request mix

    def one(self):
        r = self.rng
        ids = self.ids
        area = r.choices(["mlflow", "native", "compare", "artifact-get", "artifact-put", "artifact-list", "get-artifact",
                          "upload", "list", "misc"], weights=[50, 8, 6, 6, 6, 4, 5, 5, 5, 2])[0]
        ctype = r.choice(CONTENT_TYPES)
        traversal = False
        if area == "mlflow":
            ep, right = r.choice(MLFLOW_ENDPOINTS)
            prefix = r.choice(PREFIXES)
            method = right if r.random() < 0.6 else r.choice(METHODS)
            template = prefix + ep
            q, _ = self.query(FIELDS) if method in ("GET", "HEAD", "DELETE") or r.random() < 0.1 else ("", False)
            path = template + ("?" + q if q else "")
            if ep in ("/artifacts/list", "/upload-artifact"):
                q, traversal = self.query(["run_id", "run_uuid"], "path")
                q += "&run_id=" + ids["rid"] + "&run_uuid=" + ids["rid"] if r.random() < 0.7 else ""
                path = template + "?" + q
            if method in ("GET", "HEAD") and r.random() < 0.8:
                body, kind = None, "none"
            elif ep == "/upload-artifact":
                kind, body = r.choice([("bytes", b"file body"), ("empty", b""), self.body(FIELDS)])
            else:
                kind, body = self.body(FIELDS)
            if traversal and ep == "/artifacts/list" and method not in ("GET", "HEAD"):
                traversal = False  # a wrong method is refused before the path matters; 2xx is impossible anyway
            return self.send(method, path, body, ctype, template, kind, traversal)
        if area == "native":
            rid = r.choice([ids["rid"], ids["rid"], ids["deleted"], "0123456789abcdef0123456789abcdef", "..", "%2e%2e",
                            "x" * 300, "%00", ids["rid"] + "%00"])
            method = "POST" if r.random() < 0.8 else r.choice(METHODS)
            kind, body = self.native_body() if r.random() < 0.8 else self.body(FIELDS)
            ctype = r.choice([None, "application/x-tally-columns", "application/json", "text/plain", "application/octet-stream"])
            return self.send(method, f"/api/tally/v1/runs/{rid}/metrics", body, ctype, "/api/tally/v1/runs/{id}/metrics", kind)
        if area == "compare":
            method = "POST" if r.random() < 0.8 else r.choice(METHODS)
            if r.random() < 0.5:
                obj = {"run_ids": r.choice([[ids["rid"]], [ids["rid"], ids["other"]], [], [ids["rid"]] * 2000, self.value()]),
                       "metric_keys": r.choice([["m", "loss"], ["k"], [], ["m"] * 200, self.value()])}
                for f in r.sample(["start_step", "end_step", "buckets", "mode", "max_points", "format"], k=r.randrange(4)):
                    obj[f] = r.choice([0, -1, 1, 10_000, 10_001, 1_000_000, 2 ** 63 - 1, -2 ** 63, 2 ** 64, 1.5, None,
                                       "m4", "mean", "lttb", "raw", "binary", "json", "nope", float("nan")])
                kind, body = "compare", json.dumps(obj).encode()
            else:
                kind, body = self.body(["run_ids", "metric_keys", "start_step", "end_step", "buckets", "mode", "max_points", "format"])
            return self.send(method, "/api/tally/v1/compare", body, ctype, "/api/tally/v1/compare", kind)
        base = "/api/2.0/mlflow-artifacts/artifacts"
        if area in ("artifact-get", "artifact-put"):
            if r.random() < 0.5:
                sub = r.choice(TRAVERSALS)
                if r.random() < 0.5:
                    sub = ids["root"] + "/" + sub
                traversal = is_traversal(sub) or ".." in fully_decoded(sub).replace("\\", "/").split("/")
            else:
                sub = ids["root"] + "/" + r.choice(ODD_PATHS + ["fz/a.txt", "new%20file.bin", "sub/dir/"])
            sub = sub.replace("#", "%23").replace("\\", "%5C") if r.random() < 0.5 else sub
            method = ("GET" if area == "artifact-get" else "PUT") if r.random() < 0.7 else r.choice(METHODS)
            if method == "PUT":
                kind, body = r.choice([("bytes", b"artifact bytes"), ("empty", b""), ("big", b"z" * (2 * SMALL_LIMIT)),
                                       self.body(FIELDS)])
            else:
                kind, body = ("none", None) if r.random() < 0.8 else self.body(FIELDS)
            if method not in ("GET", "PUT", "DELETE", "HEAD"):
                traversal = False
            return self.send(method, f"{base}/{sub}", body, ctype if r.random() < 0.3 else None, base + "/{path}", kind, traversal)
        if area == "artifact-list":
            q, traversal = self.query([], "path")
            method = "GET" if r.random() < 0.8 else r.choice(METHODS)
            if method not in ("GET", "HEAD"):
                traversal = False
            return self.send(method, f"{base}?{q}", None, None, base, "none", traversal)
        if area == "get-artifact":
            q, traversal = self.query(["run_id", "run_uuid"], "path")
            if r.random() < 0.8:
                q += "&" + r.choice(["run_id", "run_uuid"]) + "=" + r.choice([ids["rid"], ids["rid"], ids["deleted"], "nope"])
            method = "GET" if r.random() < 0.8 else r.choice(METHODS)
            if method not in ("GET", "HEAD"):
                traversal = False
            return self.send(method, f"/get-artifact?{q}", None, None, "/get-artifact", "none", traversal)
        if area == "upload":
            q, traversal = self.query([], "path")
            q += "&run_uuid=" + r.choice([ids["rid"], ids["rid"], ids["deleted"], "0123456789abcdef0123456789abcdef", ""])
            method = "POST" if r.random() < 0.85 else r.choice(METHODS)
            kind, body = r.choice([("bytes", b"uploaded"), ("empty", b""), ("over-10MB", b"u" * (10 * 1024 * 1024 + 1)),
                                   ("json", b'{"a": 1}')] + [("bytes", b"uploaded")] * 6)
            if kind == "over-10MB" and self.rng.random() < 0.8:
                kind, body = "bytes", b"uploaded"
            if method != "POST":
                traversal = False
            return self.send(method, f"/ajax-api/2.0/mlflow/upload-artifact?{q}", body, ctype if r.random() < 0.3 else None,
                             "/ajax-api/2.0/mlflow/upload-artifact", kind, traversal)
        if area == "list":
            q, traversal = self.query(["run_id", "run_uuid", "page_token"], "path")
            q += "&run_id=" + ids["rid"]
            prefix = r.choice(PREFIXES)
            return self.send("GET", f"{prefix}/artifacts/list?{q}", None, None, prefix + "/artifacts/list", "none", traversal)
        path = r.choice(["/health", "/", "/static/app.js", "/static/..%2f..%2fetc%2fpasswd", "/static/%2e%2e/%2e%2e/etc/passwd",
                         "/api/3.0/mlflow/server-info", "/api/2.0/mlflow/", "/api/2.0/mlflow", "/api/", "/ajax-api/",
                         "/api/2.0/mlflow/runs/get/../../../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "//etc/passwd",
                         "/api/2.0/mlflow//runs//get", "/api/2.0/mlflow/runs/get%00", "/get-artifact/../../etc/passwd",
                         "/api/tally/v1/runs//metrics", "/api/tally/v1/runs/%2F/metrics", "/api/tally/v1/", "/x" * 2000])
        method = r.choice(METHODS)
        trav = path.startswith(("/static/..", "/static/%2e", "/%2e%2e", "//etc")) or "/../../" in path
        return self.send(method, path, None, None, "misc " + path[:40], "none", trav)

    def restore(self):
        for path, body in [("/api/2.0/mlflow/experiments/restore", {"experiment_id": self.ids["eid"]}),
                           ("/api/2.0/mlflow/runs/restore", {"run_id": self.ids["rid"]})]:
            self.send("POST", path, json.dumps(body).encode(), "application/json", path, "restore")


# raw sockets

def raw_requests(rng, ids, host_header):
    """(name, bytes) of broken HTTP."""
    h = host_header
    rid = ids["rid"].encode()
    targets = [b"/api/2.0/mlflow/runs/search", b"/api/2.0/mlflow/runs/log-batch", b"/api/tally/v1/runs/" + rid + b"/metrics",
               b"/api/2.0/mlflow-artifacts/artifacts/" + ids["root"].encode() + b"/raw.txt",
               b"/ajax-api/2.0/mlflow/upload-artifact?run_uuid=" + rid + b"&path=raw.txt", b"/health"]
    out = []
    for i in range(N_RAW):
        t = rng.choice(targets)
        kind = rng.choice(["short-body", "bad-chunk", "garbage-line", "huge-header", "invalid-method", "bad-version",
                           "header-oddity", "pipelined-garbage", "partial-head", "long-uri"])
        m = b"PUT" if b"mlflow-artifacts" in t else b"POST"
        head = m + b" " + t + b" HTTP/1.1\r\n" + h + b"Content-Type: application/json\r\n"
        if kind == "short-body":
            n = rng.choice([1, 10, 1000, 100_000])
            sent = rng.choice([0, 1, n // 2, n - 1])
            data = head + b"Content-Length: %d\r\n\r\n" % n + b"{" * sent
        elif kind == "bad-chunk":
            size = rng.choice([b"zz", b"-1", b"ffffffffffffffffffff", b"1;ext=\x01", b"", b"0x10", b" 5", b"5 ", b"4\n",
                               b"7fffffffffffffff", b"10", b"2;" + b"e" * 10000, b"\xff"])
            tail = rng.choice([b"\r\n{}\r\n0\r\n\r\n", b"\r\n{}", b"\r\n{}\r\n", b"\r\n{}XX0\r\n\r\n", b"\r\n{}\r\n0\r\nX-T: y\r\n",
                               b"\r\n{}\r\n0\r\n\r\n" + b"garbage"])
            te = rng.choice([b"chunked", b"chunked, chunked", b"gzip, chunked", b"Chunked", b"chunked\x00"])
            data = head + b"Transfer-Encoding: " + te + b"\r\n\r\n" + size + tail
        elif kind == "garbage-line":
            data = rng.choice([bytes(rng.randrange(256) for _ in range(rng.choice([1, 20, 500]))),
                               "".join(chr(rng.randrange(32, 127)) for _ in range(rng.choice([3, 40, 400]))).encode()]) + b"\r\n\r\n"
        elif kind == "huge-header":
            if rng.random() < 0.5:
                data = b"GET /health HTTP/1.1\r\n" + h + b"X-Big: " + b"a" * rng.choice([70_000, 300_000, 1_100_000]) + b"\r\n\r\n"
            else:
                data = b"GET /health HTTP/1.1\r\n" + h + b"".join(b"X-H%d: v\r\n" % j for j in range(rng.choice([200, 3000, 20000]))) + b"\r\n"
        elif kind == "invalid-method":
            meth = rng.choice([b"G(T", b"GET\x00", b"get", b"FOO", b"CONNECT", b"TRACE", b"", b"M" * 10_000, b"P\xffST",
                               b"GE T", b"PRI"])
            data = meth + b" " + t + b" HTTP/1.1\r\n" + h + b"Content-Length: 2\r\n\r\n{}"
        elif kind == "bad-version":
            ver = rng.choice([b"HTTP/2.0", b"HTTP/0.9", b"HTTP/1.2", b"HTTP/1", b"HTTPS/1.1", b"http/1.1", b"", b"HTTP/1.1x", b"HTTP/11.1"])
            data = b"GET /health " + ver + b"\r\n" + h + b"\r\n"
        elif kind == "header-oddity":
            odd = rng.choice([b"X-A: a\r\n b\r\n", b"X-A: a\x00b\r\n", b"X A: b\r\n", b"Content-Length: 1e3\r\n",
                              b"Content-Length: +2\r\n", b"Content-Length: 2\r\nTransfer-Encoding: chunked\r\n",
                              b"Content-Length: 2, 2\r\n", b"Content-Length: 99999999999999999999999\r\n",
                              b"Expect: 100-continue\r\nContent-Length: 10\r\n", b"Host: \r\nHost: y\r\n",
                              b": novalue\r\n", b"X-A:\xff\xfe\r\n", b"Content-Type: \r\n", b"Transfer-Encoding: \r\n"])
            data = m + b" " + t + b" HTTP/1.1\r\n" + h + odd + b"\r\n{}"
        elif kind == "pipelined-garbage":
            data = b"GET /health HTTP/1.1\r\n" + h + b"\r\n" + rng.choice([b"\x00\x01garbage\r\n\r\n", b"GET / HTTP/1.1\r\n\r\n",
                                                                          b"POST " + t + b" HTTP/1.1\r\nContent-Length: 5\r\n\r\n{"])
        elif kind == "partial-head":
            full = head + b"Content-Length: 2\r\n\r\n{}"
            data = full[:rng.randrange(1, len(full) - 1)]
        else:
            data = b"GET /api/2.0/mlflow/runs/get?run_id=" + b"a" * rng.choice([9000, 100_000, 1_100_000]) + b" HTTP/1.1\r\n" + h + b"\r\n"
        out.append((kind, data))
    return out


def raw_exchange(host, port, data, timeout=5):
    s = socket.create_connection((host, port))
    s.settimeout(timeout)
    got = b""
    hung = False
    try:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        while True:
            d = s.recv(65536)
            if not d:
                break
            got += d
    except ConnectionResetError:
        pass
    except socket.timeout:
        hung = True
    finally:
        s.close()
    statuses = [int(x) for x in re.findall(rb"HTTP/1\.[01] (\d{3}) ", got)]
    return statuses, got, hung


def test_fuzz_http(server):
    t0 = time.time()
    rng = random.Random(SEED)
    c = MlflowClient(server.url)
    eid = c.create_experiment("fuzz")
    rid = c.create_run(eid).info.run_id
    other = c.create_run(eid).info.run_id
    deleted = c.create_run(eid).info.run_id
    c.delete_run(deleted)
    for i in range(50):
        c.log_metric(rid, "m", float(i), step=i)
        c.log_metric(other, "m", float(-i), step=i)
    c.log_param(rid, "p", "1")
    c.log_text(rid, "hello\n", "hello.txt")
    c.log_text(rid, "nested\n", "sub/dir/hello.txt")
    c.log_inputs(rid, [DatasetInput(Dataset("train", "d1", "local", '{"uri": "/x"}'), [InputTag("mlflow.data.context", "training")])])
    ids = {"eid": eid, "rid": rid, "other": other, "deleted": deleted, "root": f"{eid}/{rid}/artifacts"}
    fz = Fuzz(server, rng, ids)

    for i in range(N_HTTP):
        fz.one()
        if i % 100 == 99:
            fz.restore()
    t_http = time.time() - t0

    host = f"Host: 127.0.0.1:{fz.port}\r\n".encode()
    raw = raw_requests(rng, ids, host)
    raw_fail = collections.OrderedDict()
    hangs = collections.Counter()

    def run_raw(item):
        kind, data = item
        return kind, data, raw_exchange(fz.host, fz.port, data)

    with ThreadPoolExecutor(8) as ex:
        for kind, data, (statuses, got, hung) in ex.map(run_raw, raw):
            if hung:
                hangs[kind] += 1
            bad = [s for s in statuses if s >= 500]
            if bad:
                key = (f"5xx ({bad[0]})", kind)
                if key not in raw_fail:
                    raw_fail[key] = [0, f"{data[:200]!r} -> {got[:300]!r}"]
                raw_fail[key][0] += 1
    t_raw = time.time() - t0 - t_http

    alive = server.proc.poll() is None
    health = None
    if alive:
        try:
            conn = http.client.HTTPConnection(fz.host, fz.port, timeout=10)
            conn.request("GET", "/health")
            health = conn.getresponse().status
            conn.close()
        except OSError as e:
            health = repr(e)
    report = [f"seed {SEED}: {fz.count} HTTP requests in {t_http:.1f} s, {len(raw)} raw in {t_raw:.1f} s; "
              f"statuses {dict(sorted(fz.statuses.items(), key=lambda kv: (kv[0] is None, kv[0] or 0)))}; "
              f"raw hangs (no answer, no close within 5 s) {dict(hangs)}"]
    for (check, template, method, kind), (n, example, forms) in sorted(fz.failures.items()):
        forms = f"\n    path forms: {', '.join(forms)}" if forms else ""
        report.append(f"[{check}] {method} {template} {'' if kind == 'path' else 'body=' + kind} x{n}\n    e.g. {example}{forms}")
    for (check, kind), (n, example) in raw_fail.items():
        report.append(f"[raw {check}] {kind} x{n}\n    e.g. {example}")
    print("\n".join(report))
    assert fz.count + len(raw) >= 2100
    assert alive, "the server died:\n" + "\n".join(report)
    assert health == 200, f"/health answered {health}\n" + "\n".join(report)
    assert not fz.failures and not raw_fail, f"{len(fz.failures) + len(raw_fail)} failure classes:\n" + "\n".join(report)
