"""The tracking API's write paths against a real `mlflow server` (3.17, SQLite, from the venv): a seeded random walk of
raw requests (experiments and their tags, runs and their lifecycle, params, metrics, tags, batches, dataset inputs,
with reads in between), each sent to both servers, with each server's own ids put in where the walk names a logical
experiment or run. Per step: the same status; for a refusal the same `error_code`; for a 200 the same body once ids,
server clocks, artifact URIs and generated run names are reduced to tokens. After every write the entity written is
read back (`runs/get`, `experiments/get`) and compared too, and at the end the whole state (every experiment, every
run, every metric history). The test fails on any divergence not listed in ACCEPTED; the report groups them by
endpoint and place. A difference read back again later counts once, and once a write diverged (one server stored what
the other refused), later differences of that entity are its consequences and are not counted again.

TALLY_WRITES_SEED and TALLY_WRITES_STEPS change the walk (default: seed 1204, 500 steps); TALLY_WRITES_REPORT names a
file to write the full report to (JSON). Messages of refusals are compared after ids are reduced; where they differ the
report notes it (not a failure: MLflow's messages are not an API)."""
import json
import math
import os
import posixpath
import random
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from conftest import MlflowServer, Server

SEED = int(os.environ.get("TALLY_WRITES_SEED", "1204"))
STEPS = int(os.environ.get("TALLY_WRITES_STEPS", "500"))
REPORT = os.environ.get("TALLY_WRITES_REPORT")
API = "/api/2.0/mlflow"
T0 = int(time.time() * 1000) - 60_000  # server-clock timestamps are after this; the walk's own are far from it


# ---------------------------------------------------------------------------------------------------------------------
# Logical ids: the walk names experiments and runs by number; each server has its own ids for them.

class Ref:
    """Logical experiment `kind == "E"` or run `kind == "R"` number `n`, replaced by a server's id when sent."""
    __slots__ = ("kind", "n")

    def __init__(self, kind, n):
        self.kind, self.n = kind, n

    def __repr__(self):
        return f"<{self.kind}{self.n}>"

    def __eq__(self, other):
        return isinstance(other, Ref) and (self.kind, self.n) == (other.kind, other.n)

    def __hash__(self):
        return hash((self.kind, self.n))


class Text:
    """A string with refs in it, an experiment id in another spelling: `Text("0{}", ref)` is `"05"` where ref is `"5"`."""

    def __init__(self, fmt, *refs):
        self.fmt, self.refs = fmt, refs

    def __repr__(self):
        return self.fmt.format(*self.refs)


class AsInt:
    """A logical experiment's id sent as a JSON number."""

    def __init__(self, ref):
        self.ref = ref

    def __repr__(self):
        return f"int({self.ref!r})"


MISSING_EXP = "987654321"
MISSING_RUN = "0123456789abcdef0123456789abcdef"


class Step:
    def __init__(self, label, method, path, body=None, query=None, subject=None, reads=(), one_sided=(), clockless=()):
        """`label`: the operation and its variant (groups the report); `subject`: the entity written (a Ref) or None;
        `reads`: refs to read back after the write; `one_sided`: the datasets of a log-inputs step that only one server
        stored in the run's experiment before (its first version, which every later run gets); `clockless`: the runs
        created without a start time (for a search)."""
        self.label, self.method, self.path, self.body, self.query = label, method, path, body, query
        self.subject, self.reads, self.one_sided, self.clockless = subject, tuple(reads), tuple(one_sided), tuple(clockless)

    def show(self):
        """The request as the walk wrote it, refs as tokens, long strings shortened."""
        what = self.body if self.method != "GET" else self.query
        return f"{self.method} {self.path} {short(json.dumps(tokens(what), ensure_ascii=False, default=repr), 400)}"


def tokens(x):
    if isinstance(x, (Ref, Text, AsInt)):
        return repr(x)
    if isinstance(x, dict):
        return {k: tokens(v) for k, v in x.items()}
    if isinstance(x, list):
        return [tokens(v) for v in x]
    if isinstance(x, str) and len(x) > 60:
        return f"{x[:20]}…<{len(x)} chars>"
    return x  # NaN and ±inf show bare, as sent


def short(s, n=300):
    if isinstance(s, str) and len(s) > 60 and len(set(s)) == 1:
        return f"{s[:3]}…<{len(s)} chars>"
    s = s if isinstance(s, str) else json.dumps(tokens(s), ensure_ascii=False, default=repr)
    s = s.replace("\n", "⏎")
    return s if len(s) <= n else s[:n] + f"…({len(s)} chars)"


# ---------------------------------------------------------------------------------------------------------------------
# One server: sends a step with its own ids and reduces its answers to tokens.

RUN_ID = re.compile(r"[0-9a-f]{32}")
TIME_KEYS = {"creation_time", "last_update_time", "start_time", "end_time", "timestamp"}
# Where a message names an experiment id: "id=3", "ID '3'", "experiment 3", "experiment_id=3".
EXP_IN_MESSAGE = re.compile(r"((?:\bid|\bID|\bId|[Ee]xperiment(?:_id)?)\s*(?:=|:)?\s*'?)(\d+)(?![\w.])")


class Side:
    def __init__(self, name, url):
        self.name, self.url = name, url
        self.http = requests.Session()
        self.ids = {Ref("E", 0): "0"}
        self.exp_token = {"0": "<E0>"}
        self.run_token = {}
        self.name_token = {}  # generated run names

    def bind(self, ref, real):
        self.ids[ref] = real
        (self.exp_token if ref.kind == "E" else self.run_token)[real] = repr(ref)

    def real(self, x):
        if isinstance(x, Ref):
            return self.ids[x]
        if isinstance(x, Text):
            return x.fmt.format(*[self.ids[r] for r in x.refs])
        if isinstance(x, AsInt):
            return int(self.ids[x.ref])
        if isinstance(x, dict):
            return {k: self.real(v) for k, v in x.items()}
        if isinstance(x, list):
            return [self.real(v) for v in x]
        return x

    def send(self, step):
        url = self.url + API + step.path
        if step.method == "GET":
            r = self.http.get(url, params=self.real(step.query), timeout=60)
        else:
            # NaN and ±inf go bare, as Python's json writes them (MLflow's own client quotes them: "NaN").
            r = self.http.request(step.method, url, data=json.dumps(self.real(step.body)).encode(),
                                  headers={"Content-Type": "application/json"}, timeout=60)
        try:
            body = r.json()
        except ValueError:
            body = {"<not json>": r.text[:300]}
        return r.status_code, body

    def norm(self, x, key=None):
        if isinstance(x, dict):
            return {k: self.norm(v, k) for k, v in x.items()}
        if isinstance(x, list):
            return [self.norm(v, key) for v in x]
        if isinstance(x, float) and math.isnan(x):
            return "NaN"
        if isinstance(x, int) and not isinstance(x, bool) and key in TIME_KEYS and T0 <= x <= time.time() * 1000 + 600_000:
            return "<now>"
        if isinstance(x, str):
            if key == "experiment_id" and x in self.exp_token:
                return self.exp_token[x]
            if x in self.name_token:
                return self.name_token[x]
            x = RUN_ID.sub(lambda m: self.run_token.get(m.group(0), m.group(0)), x)
            x = re.sub(r"mlflow-artifacts:/(\d+)", lambda m: "mlflow-artifacts:/" + self.exp_token.get(m.group(1), m.group(1)), x)
            if key == "message":
                x = EXP_IN_MESSAGE.sub(lambda m: m.group(1) + self.exp_token.get(m.group(2), m.group(2)), x)
        return x


# ---------------------------------------------------------------------------------------------------------------------
# Comparing normalised answers: unordered lists become maps by identity, then a recursive diff gives paths.

def ident(v):
    if not isinstance(v, dict):
        return None
    if "info" in v and isinstance(v["info"], dict):
        return "run=" + str(v["info"].get("run_id"))
    if "dataset" in v and isinstance(v["dataset"], dict):
        return f"dataset={v['dataset'].get('name')}@{v['dataset'].get('digest')}"
    if "experiment_id" in v and "name" in v:
        return "experiment=" + str(v["experiment_id"])
    if isinstance(v.get("key"), str):  # tags, params, a run's latest metrics (one per key; a history's repeat: a multiset)
        return "key=" + v["key"]
    return None


def canon(x):
    if isinstance(x, dict):
        return {k: canon(v) for k, v in x.items()}
    if isinstance(x, list):
        items = [canon(v) for v in x]
        ids = [ident(v) for v in items]
        if items and None not in ids and len(set(ids)) == len(ids):
            return {"[" + i + "]": v for i, v in zip(ids, items)}
        return sorted(items, key=lambda v: json.dumps(v, sort_keys=True, default=repr))  # a multiset (metric points)
    return x


ABSENT = "<absent>"


def diff(a, b, path=""):
    """(path, mlflow's, tally's) for each difference between canonical a (MLflow) and b (Tally)."""
    if a == ABSENT and isinstance(b, dict) and b and all(k.startswith("[") for k in b):
        a = {}  # a keyed list one side has not at all: the differences are its entries
    if b == ABSENT and isinstance(a, dict) and a and all(k.startswith("[") for k in a):
        b = {}
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in list(a) + [k for k in b if k not in a]:
            out += diff(a.get(k, ABSENT), b.get(k, ABSENT), f"{path}.{k}" if not k.startswith("[") else path + k)
        return out
    if isinstance(a, list) and isinstance(b, list) and a != b:
        da = [json.dumps(v, sort_keys=True) for v in a]
        db = [json.dumps(v, sort_keys=True) for v in b]
        only_a = [v for v in a if da.count(json.dumps(v, sort_keys=True)) > db.count(json.dumps(v, sort_keys=True))]
        only_b = [v for v in b if db.count(json.dumps(v, sort_keys=True)) > da.count(json.dumps(v, sort_keys=True))]
        return [(path, {"only in mlflow": only_a}, {"only in tally": only_b})]
    if a != b or type(a) is not type(b):
        return [(path, a, b)]
    return []


# ---------------------------------------------------------------------------------------------------------------------
# Differences that are deliberate and documented. Each entry: a name, a one-line reason, `answer(step, m, t)` — true
# when the two answers to `step` ((status, body) each) differ as documented —, and `taints(step)`: what the step leaves
# different on purpose in the two stores, as (subject, path pattern) pairs whose later differences are the same one; a
# pair with no subject explains that path of the answer only. Every entry that matches applies; two 200s are still
# compared, outside what the entries explain.

def _code(answer):
    return answer[1].get("error_code") if isinstance(answer[1], dict) else None


def _body(step):
    return step.body if isinstance(step.body, dict) else {}


def _list(value):
    """The dicts in value, a list a request sends (or not)."""
    return [x for x in value if isinstance(x, dict)] if isinstance(value, list) else []


def _points(step):
    """The metrics a log-metric or log-batch step sends (dicts), or []."""
    return [_body(step)] if step.path == "/runs/log-metric" else _list(_body(step).get("metrics"))


def _everything_sent(step):
    """Taints for every key a log-metric / log-batch step names on its run: MLflow stores such a request half-parsed."""
    run = step.subject if isinstance(step.subject, Ref) else None
    if run is None:
        return []
    body, keys = step.body, []
    for part, where in (("metrics", "metrics"), ("params", "params"), ("tags", "tags")):
        items = [body] if step.path == "/runs/log-metric" and part == "metrics" else body.get(part) if isinstance(body.get(part), list) else []
        for item in items:
            if isinstance(item, dict) and isinstance(item.get("key"), str):
                keys.append((repr(run), re.compile(r"\.(run\.data\.%s\[key=%s\]|history\[key=%s\])" % (where, re.escape(item["key"]), re.escape(item["key"])))))
                if part == "tags" and item["key"] == "mlflow.runName":
                    keys.append((repr(run), re.compile(r"\.run\.info\.run_name$")))
    return keys


def _half_stored(step):
    """What a write MLflow stored half-parsed leaves different: each key a metric write names, or the whole run
    (runs/update; a runs/create one server refused leaves no run to compare)."""
    if step.path == "/runs/update" and isinstance(step.subject, Ref):
        return [(repr(step.subject), re.compile(""))]
    return _everything_sent(step)


def _parsed_partway(m, t):
    """The answers to a request MLflow's parser failed on partway: MLflow stored what it had read (200), failed on it
    (500), found no run by the id it had read (404) or refused what it had read (a tag key twice, 400 BAD_REQUEST);
    Tally stored the request, refused it, or found no run by its id where MLflow failed."""
    return ((m[0] in (200, 500) or _code(m) in ("RESOURCE_DOES_NOT_EXIST", "BAD_REQUEST"))
            and (t[0] == 200 or t[0] == 400 and _code(t) == "INVALID_PARAMETER_VALUE"
                 or m[0] == 500 and _code(t) == "RESOURCE_DOES_NOT_EXIST"))


def _lowercase_nan(step, m, t):
    # MLflow's parser may stop before the run id, and then looks up the run '' (404).
    return _parsed_partway(m, t) and any(p.get("value") == "nan" for p in _points(step))


def _status_cut(step, m, t):
    status = _body(step).get("status")
    return (step.path == "/runs/update" and m[0] == 200 and _code(t) == "INVALID_PARAMETER_VALUE"
            and (isinstance(status, bool) or _fraction(status)))


def _dataset_not_an_object(step, m, t):
    entries = _body(step).get("datasets")
    return (step.path == "/runs/log-inputs" and m[0] == 200 and _code(t) == "INVALID_PARAMETER_VALUE" and isinstance(entries, list)
            and any(not isinstance(e, dict) for e in entries))


def _fraction(v):
    return isinstance(v, float) and math.isfinite(v) and v != int(v)


def _int_with_fraction(step, m, t):
    body = _body(step)
    # MLflow stores it (200), or looks the run up first (404 for an unknown one), or refuses another part of the request
    # first (a tag key twice); Tally checks the field first.
    return ((m[0] == 200 or m[0] in (400, 404) and _code(m) != "INVALID_PARAMETER_VALUE") and t[0] == 400 and _code(t) == "INVALID_PARAMETER_VALUE"
            and (any(_fraction(p.get("timestamp")) or _fraction(p.get("step")) for p in _points(step))
                 or any(_fraction(body.get(k)) for k in ("start_time", "end_time"))))


PARSED = {  # the fields MLflow's JSON parser may fail on partway, by kind; a log-batch's metrics as log-metric's
    "/runs/log-metric": {"value": "double", "timestamp": "int64", "step": "int64"},
    "/runs/log-batch": {"metrics": "list", "params": "list", "tags": "list"},
    "/runs/create": {"start_time": "int64", "tags": "list", "user_id": "string"},
    "/runs/update": {"end_time": "int64"},
}


def _parsed(step):
    """(value, kind) for each field of step that MLflow's JSON parser reads (see PARSED)."""
    body, kinds = _body(step), PARSED.get(step.path, {})
    fields = [(body[k], kind) for k, kind in kinds.items() if k in body]
    if step.path == "/runs/log-batch":
        fields += [(p[k], kind) for p in _points(step) for k, kind in PARSED["/runs/log-metric"].items() if k in p]
    return fields


def _reads_as(text, kind):
    """Whether json_format reads the string text as a number of kind: a double as Python's float does, but not "nan";
    an int64 with no space in it, integral and in range."""
    try:
        number = float(text)
    except ValueError:
        return False
    if kind == "double":
        return text != "nan"
    return " " not in text and number.is_integer() and -2 ** 63 <= int(number) < 2 ** 63


def _unparsable(value, kind):
    """True when MLflow's protobuf parser (json_format) fails on value, as Python's json reads it, for a field of kind,
    or reads a bool as a number. Lowercase "nan" and fractions in an int64 have entries of their own."""
    if value is None:
        return False  # the field is left out
    if kind == "list":
        return not isinstance(value, list) or len(_list(value)) != len(value)
    if kind == "string" or isinstance(value, (bool, list, dict)):
        return not isinstance(value, str)
    if isinstance(value, str):
        return value != "nan" and not _reads_as(value, kind)
    if isinstance(value, float):
        return not math.isfinite(value)  # bare NaN, Infinity (1e400 too)
    return kind == "int64" and not -2 ** 63 <= value < 2 ** 63


def _half_parsed(step, m, t):
    fields = _parsed(step)
    return _parsed_partway(m, t) and (any(_unparsable(v, kind) for v, kind in fields)
                                      or m[0] == 500 and any(v is None for v, _ in fields))


def _created(step, m, t):
    return step.path == "/runs/create" and m[0] == t[0] == 200


def _no_start_time(step, m, t):
    return _created(step, m, t) and _body(step).get("start_time") is None and m[1]["run"]["info"].get("start_time") == 0


def _no_experiment(step, m, t):
    """MLflow's foreign key fails; Tally answers as for Default: the run, or a refusal another entry explains."""
    return (step.path == "/runs/create" and _body(step).get("experiment_id") in (None, "") and _code(m) == "BAD_REQUEST"
            and (t[0] == 200 or any(e[2](step, (200, {}), t) for e in ACCEPTED if e[2] is not _no_experiment)))


def _duplicate_experiment_tag(step, m, t):
    keys = [x.get("key") for x in _list(_body(step).get("tags"))]
    return (step.path == "/experiments/create" and len(set(keys)) < len(keys) and _code(m) == "RESOURCE_ALREADY_EXISTS"
            and "experiment_tags" in m[1].get("message", "") and _code(t) == "INVALID_PARAMETER_VALUE")


def _long_tag_values(step):
    """The keys of the tags a runs/create step sends with values over 8,000 characters."""
    return [x.get("key") for x in _list(_body(step).get("tags")) if isinstance(x.get("value"), str) and len(x["value"]) > 8000]


def _bad_key(key):
    """MLflow's tag key rule (set-tag, log-batch): at most 250 word characters, `/`, `.`, `-`, ` ` or `:`, a path that
    names itself."""
    if not isinstance(key, str) or len(key) > 250 or not re.fullmatch(r"[/\w.\- :]*", key):
        return True
    norm = posixpath.normpath(key)
    return norm != key or norm == "." or norm.startswith(("..", "/"))


def _tag_key_unchecked(step, m, t):
    return (step.path == "/runs/create" and m[0] == 200 and _code(t) == "INVALID_PARAMETER_VALUE"
            and any(_bad_key(x.get("key")) for x in _list(_body(step).get("tags"))))


def _datasets(step):
    """The datasets (dicts) a log-inputs step sends."""
    return [e["dataset"] for e in _list(_body(step).get("datasets")) if isinstance(e.get("dataset"), dict)]


def _inputs(step, datasets):
    """Taints for the run's inputs of datasets (a field not sent reads as anything)."""
    ident = lambda d, f: re.escape(d[f]) if isinstance(d.get(f), str) else r"[^@\]]*"
    return [(repr(step.subject), re.compile(r"\.run\.inputs\.dataset_inputs\[dataset=%s@%s\]" % (ident(d, "name"), ident(d, "digest"))))
            for d in datasets]


def _dataset_incomplete(step, m, t):
    # MLflow stores it, or looks the run up first (404 for an unknown one); Tally checks the fields first.
    return (step.path == "/runs/log-inputs" and (m[0] == 200 or _code(m) == "RESOURCE_DOES_NOT_EXIST") and _code(t) == "INVALID_PARAMETER_VALUE"
            and any(f not in d for d in _datasets(step) for f in ("name", "digest", "source_type", "source")))


def _echoed_experiment_id(step, m, t):
    return (_created(step, m, t) and isinstance(_body(step).get("experiment_id"), Text)
            and not re.fullmatch(r"0|[1-9]\d*", m[1]["run"]["info"].get("experiment_id", "")))


ACCEPTED = [
    ("INVALID_STATE is a 400",
     "docs/architecture.md: INVALID_STATE is a 400 where MLflow's server answers 500 (which its client retries)",
     lambda step, m, t: m[0] == 500 and _code(m) == "INVALID_STATE" and t[0] == 400 and _code(t) == "INVALID_STATE",
     lambda step: []),
    ("metric value \"nan\"",
     "docs/notes/robustness-sweep-2026-12-03.md (session 43, numbers): a double may be a numeric string as Python's float "
     "reads it; MLflow's protobuf parser refuses \"nan\" and MLflow stores the request half-parsed (value, timestamp, step 0) "
     "or answers 500",
     _lowercase_nan, _everything_sent),
    ("int64 with a fraction",
     "docs/notes/robustness-sweep-2026-12-03.md (session 43, numbers): a fraction in an int64 (timestamp, step, start or "
     "end time) is a 400; MLflow answers 200 and stores the request half-parsed (timestamp 1.5 as 0)",
     _int_with_fraction, _half_stored),
    ("a status that is a bool or a fraction",
     "MLflow's parser reads true as 1 (RUNNING) and cuts 2.7 to 2 (SCHEDULED); Tally takes a status name or whole number",
     _status_cut, _half_stored),
    ("a dataset entry that is not an object",
     "MLflow stores an empty dataset (name, digest, source '') for it; Tally refuses the request",
     _dataset_not_an_object, lambda step: [(repr(step.subject), re.compile(r"\.run\.inputs\."))]),
    ("a dataset only one server stored before",
     "its experiment keeps the version first stored, so a later run gets that server's (an accepted refusal before)",
     lambda step, m, t: step.path == "/runs/log-inputs" and m[0] == t[0] == 200 and bool(step.one_sided),
     lambda step: _inputs(step, step.one_sided)),
    ("run created without a start time",
     "MLflow stores 0, which its UI shows as 1970; its clients always send start_time",
     _no_start_time, lambda step: [(repr(step.subject), re.compile(r"\.run\.info\.start_time$"))]),
    ("a search on start_time finds runs created without one",
     "MLflow stores 0, which its UI shows as 1970; its clients always send start_time",
     lambda step, m, t: step.path == "/runs/search" and m[0] == t[0] == 200 and "start_time" in _body(step).get("filter", ""),
     lambda step: [(None, re.compile(r"\.runs\[run=%s\]$" % re.escape(repr(run)))) for run in step.clockless]),
    ("run created without an experiment",
     "proto field is optional; Default is MLflow's own default experiment",
     _no_experiment, lambda step: []),
    ("experiment created with a tag key twice",
     "RESOURCE_ALREADY_EXISTS would tell clients such as set_experiment the experiment exists",
     _duplicate_experiment_tag, lambda step: []),
    ("rename to a name in use",
     "the code that says what happened",
     lambda step, m, t: step.path == "/experiments/update" and _code(m) == "BAD_REQUEST" and _code(t) == "RESOURCE_ALREADY_EXISTS",
     lambda step: []),
    ("runs/create tag values cut to 8,000 characters",
     "one rule for every tag write",
     lambda step, m, t: _created(step, m, t) and bool(_long_tag_values(step)),
     lambda step: [(repr(step.subject), re.compile(r"\.run\.data\.tags\[key=%s\]\.value$" % re.escape(k))) for k in _long_tag_values(step)]),
    ("runs/create tag keys checked",
     "one key rule for every tag write",
     _tag_key_unchecked, lambda step: []),
    ("dataset fields required",
     "the reference marks them required",
     _dataset_incomplete, lambda step: _inputs(step, _datasets(step))),
    ("runs/create answers the canonical experiment id",
     "the id as the experiment has it; the read-back agrees",
     _echoed_experiment_id, lambda step: [(None, re.compile(r"\.run\.info\.experiment_id$"))]),
    ("no request half-parsed",
     "MLflow stores value/timestamp/step 0 or drops later fields; Tally never stores a request half-parsed",
     _half_parsed, _half_stored),
]


def accepted(step, m, t):
    """The ACCEPTED entries that explain the answers to step."""
    return [entry for entry in ACCEPTED if entry[2](step, m, t)]


# ---------------------------------------------------------------------------------------------------------------------
# The walk.

ODD_EXPERIMENT_NAMES = [
    "with space", " leading space", "trailing space ", "tab\tin", "new\nline", "quote'single", 'quote"double', "back\\slash",
    "slash/in/name", "ünïcødé ✓", "emoji 🚀", "名前", "%20percent", "semi;colon", "dots...", "0", "Default", "<b>html</b>",
    "", "   ", "a" * 250, "l" * 499, "l" * 500, "l" * 501, "L" * 5000, "DEFAULT", "mixed Case", "under_score", "x" * 256,
]
KEYS = ["lr", "loss", "acc", "batch_size", "opt", "a/b", "a.b", "a-b", "a b", "x:y", "ä", "naïve", "k" * 250, "k" * 251, "",
        "../etc", "a/../b", "/abs", "a//b", "key!", "🚀", "a\\b", ".", "a/", "x" * 1000, "0", " lead", "trail "]
COMMON_KEYS = ["lr", "loss", "acc", "batch_size", "opt", "epoch", "a/b", "x:y"]
PARAM_VALUES = ["1", "0.01", "adam", "", "v" * 500, "v" * 5999, "v" * 6000, "v" * 6001, "v" * 7999, "v" * 8000, "v" * 8001,
                "ünï", "line\nbreak", "  spaced  ", "{\"json\": 1}"]
TAG_VALUES = ["v", "", "team-a", "t" * 5000, "t" * 7999, "t" * 8000, "t" * 8001, "t" * 20000, "ü", "x\ny"]
METRIC_VALUES = [0.5, -1, 0, 1, 2.5e-3, 1e308, -1e308, 5e-324, float("nan"), float("inf"), float("-inf"), "NaN", "Infinity",
                 "-Infinity", "nan", "inf", "1.5", " 2 ", "abc", "", True, None, [1], {"a": 1}, 10 ** 30, 1.7976931348623157e308]
TIMESTAMPS = [0, 1, 1234, 10 ** 9, 2 ** 53, 2 ** 63 - 1, 2 ** 63, -1, -(2 ** 63), "1234", "abc", None, 5.0, "", [1], 1e3, 1.5]
STEPS_VALUES = [0, 1, 2, 5, 10, 100, -1, 2 ** 31, 2 ** 53 + 1, 2 ** 63 - 1, 2 ** 63, -(2 ** 63), "7", "x", None, 3.0, [1], 2.5]
STATUSES = ["RUNNING", "FINISHED", "FAILED", "KILLED", "SCHEDULED", "finished", "BOGUS", "", 3, None]
WRONG_TYPES = [123, 1.5, True, None, [], ["x"], {}, {"a": "b"}]


class Walk:
    def __init__(self, rng):
        self.rng = rng
        self.exps = [Ref("E", 0)]
        self.runs = []
        self.names = ["Default"]
        self.run_names = []
        self.keys = {}  # run ref → {"params": {key: value}, "metrics": set, "tags": set}
        self.exp_tags = {Ref("E", 0): set()}
        self.run_exp = {}  # run ref → experiment ref
        self.clockless = []  # runs created without a start time
        self.one_sided = set()  # (experiment, name, digest) of datasets only one server stored
        self.next_exp, self.next_run = 1, 0
        self.counter = 0

    def dataset_key(self, run, d):
        """A dataset as an experiment holds it: one version per (name, digest), the first stored."""
        return self.run_exp.get(run), json.dumps(d.get("name")), json.dumps(d.get("digest"))

    def answered(self, step, ms, ts):
        """Notes what one server stored and the other did not that later steps depend on."""
        if step.path == "/runs/log-inputs" and (ms == 200) != (ts == 200) and isinstance(step.subject, Ref):
            self.one_sided.update(self.dataset_key(step.subject, d) for d in _datasets(step))

    # Picking targets -----------------------------------------------------------------------------------------------
    def exp(self, missing=0.05):
        r = self.rng.random()
        if r < missing:
            other = self.rng.choice(self.exps)
            return self.rng.choice([MISSING_EXP, "abc", "-1", "", Text("{}.0", other), Text("0{}", other), Text(" {}", other),
                                    Text("+{}", other)])
        return self.rng.choice(self.exps)

    def run(self, missing=0.05):
        if not self.runs or self.rng.random() < missing:
            return self.rng.choice([MISSING_RUN, "not-a-run", "", "0123456789ABCDEF0123456789ABCDEF", "x" * 200])
        return self.rng.choice(self.runs)

    def fresh_name(self):
        self.counter += 1
        return f"exp-{self.counter}"

    def exp_name(self):
        r = self.rng.random()
        if r < 0.55:
            return self.fresh_name()
        if r < 0.75:
            return self.rng.choice(self.names)  # a duplicate, maybe of a renamed or deleted experiment
        name = self.rng.choice(ODD_EXPERIMENT_NAMES)
        return name + (f" {self.counter}" if self.rng.random() < 0.5 and name.strip() and len(name) < 400 else "")

    def key(self, common=0.75):
        return self.rng.choice(COMMON_KEYS) if self.rng.random() < common else self.rng.choice(KEYS)

    def known(self, ref, kind):
        have = self.keys.get(ref, {}).get(kind)
        return list(have) if have else []

    def wrong(self, body, fields):
        """Maybe one field of body with a wrong type."""
        if self.rng.random() < 0.07:
            body = dict(body)
            body[self.rng.choice(fields)] = self.rng.choice(WRONG_TYPES)
            return body, "/wrong type"
        return body, ""

    def note(self, ref, kind, key, value=None):
        if isinstance(ref, Ref):
            slot = self.keys.setdefault(ref, {"params": {}, "metrics": set(), "tags": set()})
            if kind == "params":
                slot["params"].setdefault(key, value)
            else:
                slot[kind].add(key)

    # Operations -----------------------------------------------------------------------------------------------------
    def experiments_create(self):
        name = self.exp_name()
        body = {"name": name}
        variant = "fresh" if name.startswith("exp-") else ("duplicate" if name in self.names else "odd name")
        if self.rng.random() < 0.3:
            body["tags"] = [{"key": self.key(), "value": self.rng.choice(TAG_VALUES)} for _ in range(self.rng.randint(0, 3))]
            if self.rng.random() < 0.2 and body["tags"]:
                body["tags"].append(dict(body["tags"][0], value="other"))
                variant += "+duplicate tag"
            else:
                variant += "+tags"
        if self.rng.random() < 0.08:
            body["artifact_location"] = self.rng.choice(["s3://bucket/path", "", "s3://bucket/x y", "mlflow-artifacts:/custom"])
            variant += "+artifact_location"
        if self.rng.random() < 0.05:
            del body["name"]
            variant = "no name"
        body, w = self.wrong(body, ["name", "tags", "artifact_location"])
        ref = Ref("E", self.next_exp)
        self.next_exp += 1
        return Step("experiments/create " + variant + w, "POST", "/experiments/create", body, subject=ref, reads=())

    def experiments_update(self):
        exp = self.exp()
        r = self.rng.random()
        new = self.fresh_name() if r < 0.5 else self.rng.choice(self.names) if r < 0.75 else self.rng.choice(ODD_EXPERIMENT_NAMES)
        body = {"experiment_id": exp, "new_name": new}
        if self.rng.random() < 0.05:
            del body["new_name"]
        body, w = self.wrong(body, ["experiment_id", "new_name"])
        if isinstance(body.get("new_name"), str):
            self.names.append(body["new_name"])
        return Step("experiments/update" + w, "POST", "/experiments/update", body, subject=exp, reads=[exp])

    def experiments_delete(self):
        exp = self.exp()
        body, w = self.wrong({"experiment_id": exp}, ["experiment_id"])
        return Step("experiments/delete" + w, "POST", "/experiments/delete", body, subject=exp, reads=[exp])

    def experiments_restore(self):
        exp = self.exp()
        body, w = self.wrong({"experiment_id": exp}, ["experiment_id"])
        return Step("experiments/restore" + w, "POST", "/experiments/restore", body, subject=exp, reads=[exp])

    def experiments_set_tag(self):
        exp = self.exp()
        have = list(self.exp_tags.get(exp, ()))
        key = self.rng.choice(have) if have and self.rng.random() < 0.4 else self.key()
        value = self.rng.choice(TAG_VALUES + ["t" * 20001])
        body = {"experiment_id": exp, "key": key, "value": value}
        if self.rng.random() < 0.05:
            del body["value"]
        body, w = self.wrong(body, ["experiment_id", "key", "value"])
        self.exp_tags.setdefault(exp, set()).add(key)
        return Step("experiments/set-experiment-tag" + w, "POST", "/experiments/set-experiment-tag", body, subject=exp, reads=[exp])

    def experiments_delete_tag(self):
        exp = self.exp()
        have = list(self.exp_tags.get(exp, ()))
        existing = have and self.rng.random() < 0.6
        key = self.rng.choice(have) if existing else self.key()
        body, w = self.wrong({"experiment_id": exp, "key": key}, ["experiment_id", "key"])
        return Step("experiments/delete-experiment-tag " + ("existing" if existing else "maybe missing") + w, "POST",
                    "/experiments/delete-experiment-tag", body, subject=exp, reads=[exp])

    def experiments_get(self):
        exp = self.exp(missing=0.15)
        return Step("experiments/get", "GET", "/experiments/get", query={"experiment_id": exp})

    def experiments_get_by_name(self):
        name = self.rng.choice(self.names) if self.rng.random() < 0.8 else self.rng.choice(["nope", "", "DEFAULT", " Default"])
        return Step("experiments/get-by-name", "GET", "/experiments/get-by-name", query={"experiment_name": name})

    def runs_create(self):
        body, variant = {}, []
        r = self.rng.random()
        if r < 0.9:
            body["experiment_id"] = self.exp(missing=0.08)
        elif r < 0.95:
            variant.append("no experiment")
        else:
            body["experiment_id"] = AsInt(self.rng.choice(self.exps))
            variant.append("experiment_id as a number")
        r = self.rng.random()
        if r < 0.5:
            name = self.rng.choice(["train", "eval", "it's", "ünï", "a" * 250, "a" * 251, "b" * 1000, " ", "", f"run-{self.counter}"])
            body["run_name"] = name
            self.run_names.append(name)
            variant.append("run_name")
        if self.rng.random() < 0.35:
            tags = [{"key": self.key(), "value": self.rng.choice(TAG_VALUES)} for _ in range(self.rng.randint(1, 3))]
            if self.rng.random() < 0.3:
                tags.append({"key": "mlflow.runName", "value": self.rng.choice(["from-tag", body.get("run_name", "x") or "y"])})
                variant.append("runName tag")
            if self.rng.random() < 0.2:
                tags.append({"key": "mlflow.user", "value": "alice"})
            body["tags"] = tags
            variant.append("tags")
        if self.rng.random() < 0.6:
            body["start_time"] = self.rng.choice([1000, 5000, 123456, 0, 2 ** 53, -5, "777", 10 ** 10, 1.5])
            variant.append("start_time")
        if self.rng.random() < 0.15:
            body["user_id"] = self.rng.choice(["alice", "", "ü"])
            variant.append("user_id")
        body, w = self.wrong(body, ["experiment_id", "run_name", "start_time", "tags", "user_id"])
        ref = Ref("R", self.next_run)
        self.next_run += 1
        return Step("runs/create " + "+".join(variant) + w, "POST", "/runs/create", body, subject=ref, reads=())

    def runs_update(self):
        run = self.run()
        body, variant = {"run_id": run}, []
        if self.rng.random() < 0.7:
            body["status"] = self.rng.choice(STATUSES)
            variant.append("status")
        if self.rng.random() < 0.5:
            body["end_time"] = self.rng.choice([2000, 9000, 0, -1, 2 ** 62, "3000", None, 2500.5])
            variant.append("end_time")
        if self.rng.random() < 0.3:
            body["run_name"] = self.rng.choice(["renamed", "", "ü" * 3, "r" * 251, f"run-u{self.counter}"])
            self.run_names.append(body["run_name"])
            variant.append("run_name")
        if self.rng.random() < 0.05:
            body = {"run_uuid": body.pop("run_id"), **body}
            variant.append("run_uuid")
        body, w = self.wrong(body, ["run_id", "status", "end_time", "run_name"])
        return Step("runs/update " + "+".join(variant) + w, "POST", "/runs/update", body, subject=run, reads=[run])

    def runs_delete(self):
        run = self.run()
        body, w = self.wrong({"run_id": run}, ["run_id"])
        return Step("runs/delete" + w, "POST", "/runs/delete", body, subject=run, reads=[run])

    def runs_restore(self):
        run = self.run()
        body, w = self.wrong({"run_id": run}, ["run_id"])
        return Step("runs/restore" + w, "POST", "/runs/restore", body, subject=run, reads=[run])

    def runs_set_tag(self):
        run = self.run()
        r = self.rng.random()
        key = ("mlflow.runName" if r < 0.1 else self.rng.choice(self.known(run, "tags")) if r < 0.4 and self.known(run, "tags")
               else self.key())
        value = self.rng.choice(TAG_VALUES)
        body = {"run_id": run, "key": key, "value": value}
        if self.rng.random() < 0.05:
            del body["value"]
        body, w = self.wrong(body, ["run_id", "key", "value"])
        self.note(run, "tags", key)
        return Step("runs/set-tag" + (" mlflow.runName" if key == "mlflow.runName" else "") + w, "POST", "/runs/set-tag", body,
                    subject=run, reads=[run])

    def runs_delete_tag(self):
        run = self.run()
        have = self.known(run, "tags")
        r = self.rng.random()
        variant = "existing" if have and r < 0.5 else "mlflow.runName" if r < 0.6 else "maybe missing"
        key = self.rng.choice(have) if variant == "existing" else "mlflow.runName" if variant == "mlflow.runName" else self.key()
        body, w = self.wrong({"run_id": run, "key": key}, ["run_id", "key"])
        return Step("runs/delete-tag " + variant + w, "POST", "/runs/delete-tag", body, subject=run, reads=[run])

    def runs_log_parameter(self):
        run = self.run()
        have = self.keys.get(run, {}).get("params", {})
        r = self.rng.random()
        if have and r < 0.2:
            key = self.rng.choice(list(have))
            value, variant = have[key], "same value again"
        elif have and r < 0.4:
            key = self.rng.choice(list(have))
            value, variant = have[key] + "-other", "conflicting value"
        else:
            key = self.key(0.6)
            value = self.rng.choice(PARAM_VALUES)
            variant = f"value of {len(value)} chars" if len(value) > 1000 else "new"
        body = {"run_id": run, "key": key, "value": value}
        if self.rng.random() < 0.04:
            del body["value"]
            variant = "no value"
        body, w = self.wrong(body, ["run_id", "key", "value"])
        self.note(run, "params", key, value)
        return Step("runs/log-parameter " + variant + w, "POST", "/runs/log-parameter", body, subject=run, reads=[run])

    def metric(self, run, full=True):
        key = self.key(0.85)
        m = {"key": key, "value": self.rng.choice(METRIC_VALUES) if self.rng.random() < 0.5 else round(self.rng.uniform(-5, 5), 3)}
        if self.rng.random() < 0.92:
            m["timestamp"] = self.rng.choice(TIMESTAMPS) if self.rng.random() < 0.25 else self.rng.randint(1, 10 ** 6)
        if self.rng.random() < 0.85:
            m["step"] = self.rng.choice(STEPS_VALUES) if self.rng.random() < 0.25 else self.rng.randint(0, 50)
        self.note(run, "metrics", key)
        return m

    def runs_log_metric(self):
        run = self.run()
        m = self.metric(run)
        body = {"run_id": run, **m}
        if self.rng.random() < 0.05:
            body["run_uuid"] = body.pop("run_id")
        variant = "timestamp missing" if "timestamp" not in body else "step missing" if "step" not in body else ""
        body, w = self.wrong(body, ["run_id", "key", "value", "timestamp", "step"])
        return Step("runs/log-metric " + variant + w, "POST", "/runs/log-metric", body, subject=run, reads=[run])

    def runs_log_batch(self):
        run = self.run()
        body, variant = {"run_id": run}, []
        r = self.rng.random()
        if r < 0.04:
            body["metrics"] = [{"key": "many", "value": i, "timestamp": 1, "step": i} for i in range(self.rng.choice([1000, 1001]))]
            variant.append(f"{len(body['metrics'])} metrics")
            self.note(run, "metrics", "many")
        elif r < 0.07:
            body["params"] = [{"key": f"p{i}", "value": "1"} for i in range(self.rng.choice([100, 101]))]
            variant.append(f"{len(body['params'])} params")
            for p in body["params"]:
                self.note(run, "params", p["key"], "1")
        elif r < 0.10:
            body["tags"] = [{"key": f"t{i}", "value": "1"} for i in range(self.rng.choice([100, 101]))]
            variant.append(f"{len(body['tags'])} tags")
        elif r < 0.12:
            body["metrics"] = [{"key": "m", "value": 1, "timestamp": 1, "step": i} for i in range(900)]
            body["params"] = [{"key": f"q{i}", "value": "1"} for i in range(self.rng.choice([100, 101]))]
            variant.append("over 1000 entities")
        else:
            if self.rng.random() < 0.7:
                body["metrics"] = [self.metric(run) for _ in range(self.rng.randint(0, 4))]
            if self.rng.random() < 0.6:
                have = self.keys.get(run, {}).get("params", {})
                params = []
                for _ in range(self.rng.randint(0, 3)):
                    if have and self.rng.random() < 0.3:
                        k = self.rng.choice(list(have))
                        v = have[k] if self.rng.random() < 0.5 else "changed"
                    else:
                        k, v = self.key(0.6), self.rng.choice(PARAM_VALUES[:6] + ["v" * 6001])
                    params.append({"key": k, "value": v})
                    self.note(run, "params", k, v)
                if params and self.rng.random() < 0.25:
                    params.append(dict(params[0], value=params[0]["value"] if self.rng.random() < 0.5 else "dup-other"))
                    variant.append("duplicate param in batch")
                body["params"] = params
            if self.rng.random() < 0.5:
                tags = [{"key": self.key(), "value": self.rng.choice(TAG_VALUES)} for _ in range(self.rng.randint(0, 3))]
                if tags and self.rng.random() < 0.25:
                    tags.append(dict(tags[0], value="dup-tag-other"))
                    variant.append("duplicate tag in batch")
                if self.rng.random() < 0.1:
                    tags.append({"key": "mlflow.runName", "value": "batch-name"})
                    variant.append("runName tag")
                for t in tags:
                    self.note(run, "tags", t["key"])
                body["tags"] = tags
            if self.rng.random() < 0.08:
                part = self.rng.choice(["metrics", "params", "tags"])
                body.setdefault(part, []).append(self.rng.choice([{"value": "1"}, {"key": "k"}, {}, {"key": "", "value": "1"}, {"key": None}]))
                variant.append(f"incomplete {part}")
            variant.append("mixed")
        body, w = self.wrong(body, ["run_id", "metrics", "params", "tags"])
        return Step("runs/log-batch " + "+".join(variant) + w, "POST", "/runs/log-batch", body, subject=run, reads=[run])

    def runs_log_inputs(self):
        run = self.run()
        datasets, variant = [], []
        for _ in range(self.rng.randint(0, 3)):
            d = {"name": self.rng.choice(["train", "eval", "ds"]), "digest": self.rng.choice(["abc123", "d1", "ffff"]),
                 "source_type": self.rng.choice(["local", "s3", "code"]), "source": json.dumps({"uri": "/tmp/data"})}
            if self.rng.random() < 0.3:
                d["schema"] = json.dumps({"mlflow_colspec": [{"type": "double", "name": "x"}]})
            if self.rng.random() < 0.2:
                d["profile"] = json.dumps({"num_rows": 10})
            r = self.rng.random()
            if r < 0.05:
                d["name"] = "n" * 501
                variant.append("long name")
            elif r < 0.1:
                d["digest"] = "d" * 37
                variant.append("long digest")
            elif r < 0.15:
                del d[self.rng.choice(["name", "digest", "source_type", "source"])]
                variant.append("missing field")
            entry = {"dataset": d}
            if self.rng.random() < 0.7:
                entry["tags"] = [{"key": "mlflow.data.context", "value": self.rng.choice(["training", "validation", "eval"])}]
                if self.rng.random() < 0.15:
                    entry["tags"].append({"key": "k" * 256, "value": "v"})
                    variant.append("long tag key")
                elif self.rng.random() < 0.15:
                    entry["tags"].append({"key": "note", "value": "v" * 501})
                    variant.append("long tag value")
            datasets.append(entry)
        if datasets and self.rng.random() < 0.2:
            datasets.append(json.loads(json.dumps(datasets[0])))
            variant.append("duplicate dataset")
        one_sided = [e["dataset"] for e in datasets if self.dataset_key(run, e["dataset"]) in self.one_sided]
        body = {"run_id": run, "datasets": datasets}
        body, w = self.wrong(body, ["run_id", "datasets"])
        return Step("runs/log-inputs " + "+".join(variant) + w, "POST", "/runs/log-inputs", body, subject=run, reads=[run],
                    one_sided=one_sided)

    def runs_get(self):
        run = self.run(missing=0.15)
        query = {"run_id": run} if self.rng.random() < 0.9 else {"run_uuid": run}
        return Step("runs/get", "GET", "/runs/get", query=query)

    def metrics_get_history(self):
        run = self.run(missing=0.1)
        have = self.known(run, "metrics")
        key = self.rng.choice(have) if have and self.rng.random() < 0.8 else self.key()
        query = {"run_id": run, "metric_key": key}
        if self.rng.random() < 0.1:
            query["max_results"] = self.rng.choice([1, 2, 0, -1])
        return Step("metrics/get-history" + (" paged" if "max_results" in query else ""), "GET", "/metrics/get-history", query=query)

    def runs_search(self):
        exps = self.rng.sample(self.exps, min(len(self.exps), self.rng.randint(1, 3)))
        choices = ["", "params.lr = '0.01'", "params.opt = 'adam'", "metrics.loss > 0", "metrics.acc <= 1", "tags.lr = 'v'",
                   "attributes.status = 'FINISHED'", "attributes.status != 'RUNNING'", "params.batch_size LIKE '%'",
                   "attributes.start_time > 2000", "attributes.end_time > 0"]
        if self.run_names:
            choices.append("attributes.run_name = '{}'".format(self.rng.choice(self.run_names).replace("'", "")[:100]))
        body = {"experiment_ids": exps, "filter": self.rng.choice(choices), "max_results": 1000,
                "run_view_type": self.rng.choice(["ACTIVE_ONLY", "DELETED_ONLY", "ALL"])}
        return Step("runs/search", "POST", "/runs/search", body, clockless=self.clockless)

    OPS = [  # (method, weight)
        ("experiments_create", 7), ("experiments_update", 3), ("experiments_delete", 2), ("experiments_restore", 2),
        ("experiments_set_tag", 4), ("experiments_delete_tag", 3), ("experiments_get", 2), ("experiments_get_by_name", 2),
        ("runs_create", 9), ("runs_update", 6), ("runs_delete", 3), ("runs_restore", 3), ("runs_set_tag", 6),
        ("runs_delete_tag", 4), ("runs_log_parameter", 9), ("runs_log_metric", 9), ("runs_log_batch", 8), ("runs_log_inputs", 5),
        ("runs_get", 2), ("metrics_get_history", 4), ("runs_search", 3),
    ]

    def step(self):
        if len(self.exps) < 3 and self.rng.random() < 0.5:
            return self.experiments_create()
        if len(self.runs) < 4 and self.rng.random() < 0.5:
            return self.runs_create()
        names, weights = zip(*self.OPS)
        return getattr(self, self.rng.choices(names, weights)[0])()

    def created(self, step, m, t):
        """Both servers created the step's subject: each binds its own id."""
        ref = step.subject
        if ref.kind == "E":
            m.bind(ref, m.last[1]["experiment_id"])
            t.bind(ref, t.last[1]["experiment_id"])
            self.exps.append(ref)
            if isinstance(step.body.get("name"), str):
                self.names.append(step.body["name"])
        else:
            sent = step.body.get("experiment_id")
            self.run_exp[ref] = sent.refs[0] if isinstance(sent, Text) else sent.ref if isinstance(sent, AsInt) else sent
            if step.body.get("start_time") is None:
                self.clockless.append(ref)
            for side in (m, t):
                info = side.last[1]["run"]["info"]
                side.bind(ref, info["run_id"])
                tags = step.body.get("tags") if isinstance(step.body.get("tags"), list) else []
                sent = [step.body.get("run_name")] + [x.get("value") for x in tags if isinstance(x, dict) and x.get("key") == "mlflow.runName"]
                if info.get("run_name") not in sent:
                    side.name_token[info["run_name"]] = f"<name of {ref!r}>"
            self.runs.append(ref)


# ---------------------------------------------------------------------------------------------------------------------
# Running it.

KEPT = {"/runs/set-tag": "tags", "/runs/delete-tag": "tags", "/runs/log-parameter": "params", "/runs/log-metric": "metrics"}


def kept(step):
    """Where a write of one key to a run keeps it (a refusal there may follow from what is stored there), or None."""
    key = _body(step).get("key")
    return f".run.data.{KEPT[step.path]}[key={key}]" if step.path in KEPT and isinstance(key, str) else None


class Report:
    def __init__(self):
        self.divergences = []  # dicts
        self.accepted = {}     # name → count
        self.messages = []     # (label, code, mlflow's message, tally's message, request)
        self.seen = set()      # (subject, path) already reported for a read-back
        self.suppressed = 0
        self.tainted = []      # (ACCEPTED name, subject, path pattern): differences left on purpose

    def add(self, step, kind, path, mv, tv, context, subject=None):
        """A divergence; one seen before at the same entity and path (a read-back repeating an earlier one, a search
        showing a run already read back) only counts as a repeat. True when it counts as a new one."""
        where = path.replace(".run_info.", ".run.info.")
        found = re.match(r"\.(runs|experiments)\[(?:run|experiment)=([^\]]*)\](.*)", where)
        if found:
            subject, where = found.group(2), "." + found.group(1)[:-1] + found.group(3)
            if not subject.startswith("<") and where in (".run", ".experiment") and ABSENT in (mv, tv):
                # An entity only one server has, which the walk never bound: its create diverged, and was reported.
                name = "consequences of a create that diverged"
                self.accepted[name] = self.accepted.get(name, 0) + 1
                return
        places = [where] + ([kept(step)] if path == "<status>" and kept(step) else [])
        # A run a filtered search finds on one server only, whose data differs on purpose: the filter may name it.
        filtered = step.path == "/runs/search" and where == ".run" and ABSENT in (mv, tv) and bool(_body(step).get("filter"))
        for name, who, pattern in self.tainted:
            if who == str(subject) and (filtered or any(pattern.match(place) for place in places)):
                self.accepted[name] = self.accepted.get(name, 0) + 1
                return
        if subject is not None and path != "<status>":
            if (str(subject), where) in self.seen:
                self.suppressed += 1
                return
            self.seen.add((str(subject), where))
        # Grouped by endpoint and place (any entity, any key), and for a status by the two answers' status and code.
        place = re.sub(r"\[(key|dataset|run|experiment)=[^\]]*\]", r"[\1=*]", where)
        if path == "<status>":
            place = "<status> " + " / ".join(" ".join(str(v).split(" ")[:2]) for v in (mv, tv))
        self.divergences.append({"step": context["n"], "label": step.label, "request": step.show(), "kind": kind, "path": path,
                                 "group": f"{step.path} {place}", "mlflow": short(mv), "tally": short(tv), "after": context.get("after")})
        return True

    def grouped(self):
        groups = {}
        for d in self.divergences:
            groups.setdefault((d["kind"], d["group"]), []).append(d)
        return groups

    def text(self):
        lines = [f"{len(self.divergences)} divergences in {len(self.grouped())} groups (seed {SEED}, {STEPS} steps;"
                 f" {self.suppressed} repeats of a read-back difference not counted)"]
        for (kind, group), ds in sorted(self.grouped().items(), key=lambda kv: kv[1][0]["step"]):
            d = ds[0]
            lines.append(f"- [{kind}] {group}  ×{len(ds)}; first at step {d['step']} ({d['label']}): {d['request']}")
            if d.get("after"):
                lines.append(f"    (read back after: {d['after']})")
            lines.append(f"    mlflow: {d['mlflow']}")
            lines.append(f"    tally:  {d['tally']}")
        accepted = {k: v for k, v in self.accepted.items() if not k.startswith("consequences")}
        if accepted:
            lines.append("accepted: " + ", ".join(f"{k} ×{v}" for k, v in accepted.items()))
        consequences = sum(v for k, v in self.accepted.items() if k.startswith("consequences"))
        if consequences:
            lines.append(f"not counted: {consequences} later differences of entities whose write diverged")
        notes = {}
        for label, code, mine, theirs, request in self.messages:
            notes.setdefault((label.split(" ")[0], code, mine[:60]), (mine, theirs, request))
        if notes:
            lines.append(f"refusals with the same code and other messages ({len(self.messages)}; not failures), one per kind:")
            for (endpoint, code, _), (mine, theirs, request) in sorted(notes.items()):
                lines.append(f"  {endpoint} {code}: mlflow {mine!r} / tally {theirs!r}")
        return "\n".join(lines)


def compare(step, m_ans, t_ans, report, context, subject=None, kind="answer"):
    """Compares two answers of one request; True when they agree (or differ only as ACCEPTED says)."""
    if subject is None:
        subject = step.subject if isinstance(step.subject, Ref) else next(
            (v for v in (step.query or {}).values() if isinstance(v, Ref)), None)
    # A metric history's points are its key's: differences there are the key's, as in a run's latest values.
    scope = f".history[key={step.query.get('metric_key')}]" if step.path == "/metrics/get-history" else ""
    (ms, mb), (ts, tb) = m_ans, t_ans
    entries = accepted(step, m_ans, t_ans) if kind == "answer" else []
    explained = []  # paths of this answer only
    for name, _, _, taints in entries:
        report.accepted[name] = report.accepted.get(name, 0) + 1
        for who, pattern in taints(step):
            if who is None:
                explained.append(pattern)
            elif 200 in (ms, ts):  # a write both refused leaves nothing different
                report.tainted.append((name, who, pattern))
    if entries and (ms, ts) != (200, 200):
        return True
    mn, tn = context["m"].norm(mb), context["t"].norm(tb)
    if ms != ts or (ms != 200 and mb.get("error_code") != tb.get("error_code")):
        new = report.add(step, kind, "<status>", f"{ms} {mn.get('error_code', '')} {mn.get('message', '')}",
                         f"{ts} {tn.get('error_code', '')} {tn.get('message', '')}", context, subject)
        if new and kind == "answer" and step.method == "POST" and isinstance(step.subject, Ref):
            # What one server stored and the other refused shows again in later reads of the entity: consequences.
            report.tainted.append((f"consequences of the divergence at step {context['n']}", repr(step.subject), re.compile("")))
        return False
    if ms != 200:
        if message(mn.get("message")) != message(tn.get("message")):
            report.messages.append((step.label, mb.get("error_code"), short(mn.get("message"), 200), short(tn.get("message"), 200),
                                    step.show()))
        return True
    same = True
    for path, a, b in diff(canon(mn), canon(tn)):
        if not any(pattern.match(path) for pattern in explained):
            report.add(step, kind, scope + path, a, b, context, subject)
            same = False
    return same


def message(text):
    """A refusal's message without what is no API: the database's own words after "Error:", JSON spacing."""
    text = re.sub(r" Error: .*", " Error: …", text or "", flags=re.S)
    return re.sub(r"([:,]) ", r"\1", text)


POOL = ThreadPoolExecutor(2)


def send_both(step, m, t):
    """The same request to both servers at once (each answers alone: neither sees the other's)."""
    mf, tf = POOL.submit(m.send, step), POOL.submit(t.send, step)
    m.last, t.last = mf.result(), tf.result()
    return m.last, t.last


def read_back(ref, m, t, report, context):
    if ref not in m.ids or ref not in t.ids:
        return
    if ref.kind == "R":
        step = Step("runs/get", "GET", "/runs/get", query={"run_id": ref})
    else:
        step = Step("experiments/get", "GET", "/experiments/get", query={"experiment_id": ref})
    compare(step, *send_both(step, m, t), report, context, subject=ref, kind="read-back")


def final_state(walk, m, t, report, context):
    """Every experiment, every run (search over all, deleted too), every metric history the walk may have written."""
    context = dict(context, after="the walk (final state)")
    step = Step("experiments/search", "POST", "/experiments/search", {"view_type": "ALL", "max_results": 1000})
    compare(step, *send_both(step, m, t), report, context, subject="experiments", kind="read-back")
    exps = [e for e in walk.exps]
    for i in range(0, len(exps), 50):
        step = Step("runs/search", "POST", "/runs/search", {"experiment_ids": exps[i:i + 50], "run_view_type": "ALL", "max_results": 1000})
        compare(step, *send_both(step, m, t), report, context, subject="runs", kind="read-back")
    for run in walk.runs:
        for key in sorted(walk.known(run, "metrics")):
            step = Step("metrics/get-history", "GET", "/metrics/get-history", query={"run_id": run, "metric_key": key})
            compare(step, *send_both(step, m, t), report, context, subject=run, kind="read-back")


@pytest.fixture(scope="module")
def servers():
    box = {}
    thread = threading.Thread(target=lambda: box.setdefault("m", MlflowServer()))
    thread.start()
    t = Server()
    thread.join()
    m = box["m"]
    try:
        yield m, t
    finally:
        m.stop()
        t.stop()


def test_write_walk_matches_mlflow(servers):
    mserver, tserver = servers
    m, t = Side("mlflow", mserver.url), Side("tally", tserver.url)
    rng = random.Random(SEED)
    walk = Walk(rng)
    report = Report()
    started = time.time()
    for n in range(STEPS):
        step = walk.step()
        context = {"n": n, "m": m, "t": t}
        (ms, _), (ts, _) = send_both(step, m, t)
        walk.answered(step, ms, ts)
        creating = step.path in ("/experiments/create", "/runs/create")
        if creating:
            if ms == 200 and ts == 200:
                walk.created(step, m, t)
            compare(step, m.last, t.last, report, context)
            if ms == 200 and ts == 200:
                read_back(step.subject, m, t, report, dict(context, after=step.show()))
        else:
            compare(step, m.last, t.last, report, context)
            for ref in step.reads:
                if isinstance(ref, Ref):
                    read_back(ref, m, t, report, dict(context, after=step.show()))
    final_state(walk, m, t, report, {"n": STEPS, "m": m, "t": t})
    elapsed = time.time() - started
    summary = (f"seed {SEED}, {STEPS} steps, {len(walk.exps)} experiments, {len(walk.runs)} runs, {elapsed:.1f} s;"
               f" {len(report.messages)} refusals with other messages")
    print(summary)
    if REPORT:
        with open(REPORT, "w") as f:
            json.dump({"summary": summary, "divergences": report.divergences, "messages": report.messages,
                       "accepted": report.accepted, "text": report.text()}, f, indent=1, ensure_ascii=False)
    assert not report.divergences, summary + "\n" + report.text()
