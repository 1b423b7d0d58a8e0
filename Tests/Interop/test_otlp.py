"""OTLP trace ingest (`POST /v1/traces`): MLflow's own client sends each finished span there (Tally's `/version` is
MLflow's 3.17.2, so the client knows it may) and reads them back through `traces/get` and `traces/batchGet`, in both
of its logging modes; OpenTelemetry's own OTLP/HTTP exporter (gzip) sends spans of any application; and one rich
export, in protobuf, JSON and compressed, is stored byte for byte as a real `mlflow server` stores it (the span JSON
the web UI reads, the trace info made from the spans, the OpenTelemetry JSON of `traces/get` and `batchGet`), with
the same refusals of bad requests."""
import gzip
import json
import os
import time
import zlib

import pytest
import requests
import mlflow
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from conftest import Server, module_server

V3 = "/api/3.0/mlflow"
PB = {"Content-Type": "application/x-protobuf"}


@pytest.fixture(scope="module")
def local():
    yield from module_server()


@mlflow.trace(span_type="LLM")
def answer(question):
    return {"choices": [{"message": {"role": "assistant", "content": f"echo {question}"}}]}


@mlflow.trace(span_type="CHAIN")
def chat(messages):
    mlflow.update_current_trace(tags={"team": "otlp"})
    return answer(messages[-1]["content"])


@pytest.mark.parametrize("asynchronous", [False, True])
def test_client_sends_spans_and_reads_them_back(local, asynchronous, monkeypatch):
    monkeypatch.setenv("MLFLOW_ENABLE_ASYNC_TRACE_LOGGING", "true" if asynchronous else "false")
    mlflow.set_experiment(f"otlp-client-{asynchronous}")
    assert requests.get(local.url + "/version").text == "3.17.2"
    chat([{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello there"}])
    mlflow.flush_trace_async_logging()
    trace_id = mlflow.get_last_active_trace_id()
    # The spans came over OTLP: the info says they are kept in the tracking store, with previews from the root span.
    info = requests.get(f"{local.url}{V3}/traces/{trace_id}").json()["trace"]["trace_info"]
    assert info["tags"]["mlflow.trace.spansLocation"] == "TRACKING_STORE"
    assert info["tags"]["team"] == "otlp" and info["state"] == "OK"
    trace = mlflow.get_trace(trace_id)
    assert [(s.name, s.span_type) for s in trace.data.spans] == [("chat", "CHAIN"), ("answer", "LLM")]
    root, child = trace.data.spans
    assert root.inputs == {"messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello there"}]}
    assert child.parent_id == root.span_id and child.outputs["choices"][0]["message"]["content"] == "echo hello there"
    assert trace.info.request_preview and trace.info.response_preview
    found = mlflow.search_traces(return_type="list", filter_string="tags.team = 'otlp'")
    assert trace_id in [t.info.trace_id for t in found]
    assert all(len(t.data.spans) == 2 for t in found)
    # The web UI reads the same spans from get-trace-artifact.
    ui = requests.get(f"{local.url}/ajax-api/2.0/mlflow/get-trace-artifact", params={"request_id": trace_id})
    assert ui.status_code == 200 and [s["name"] for s in ui.json()["spans"]] == ["chat", "answer"]
    if not asynchronous:  # the info came after the spans: the client wrote no traces.json of its own
        listed = requests.get(f"{local.url}/api/2.0/mlflow-artifacts/artifacts",
                              params={"path": f"{trace.info.experiment_id}/traces/{trace_id}/artifacts"}).json()
        assert "files" not in listed, listed
    # Deleting the trace deletes its spans.
    mlflow.MlflowClient().delete_traces(trace.info.experiment_id, trace_ids=[trace_id])
    assert requests.get(f"{local.url}{V3}/traces/get", params={"trace_id": trace_id}).status_code == 404


def test_opentelemetry_exporter_sends_spans(local):
    """OpenTelemetry's SDK and OTLP/HTTP exporter (protobuf, gzip), as any application would send them."""
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    exp = mlflow.MlflowClient().create_experiment("otel-sdk")
    run = mlflow.MlflowClient().create_run(exp).info.run_id
    provider = TracerProvider(resource=Resource.create({"service.name": "checkout", "deployment.environment": "staging"}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(
        endpoint=local.url + "/v1/traces", compression=Compression.Gzip,
        headers={"x-mlflow-experiment-id": exp, "x-mlflow-run-id": run})))
    tracer = provider.get_tracer("shop")
    with tracer.start_as_current_span("handle-order") as root:
        root.set_attribute("order.items", 3)
        with tracer.start_as_current_span("charge-card") as child:
            child.set_attribute("amount", 12.5)
            child.add_event("declined-once", {"retry": True})
    provider.shutdown()
    trace_id = f"tr-{root.get_span_context().trace_id:032x}"
    trace = mlflow.get_trace(trace_id)
    assert sorted(s.name for s in trace.data.spans) == ["charge-card", "handle-order"]
    charge = next(s for s in trace.data.spans if s.name == "charge-card")
    assert charge.attributes["amount"] == 12.5 and charge.events[0].attributes == {"retry": True}
    assert trace.info.tags["service.name"] == "checkout" and trace.info.tags["deployment.environment"] == "staging"
    assert not any(k.startswith("telemetry.sdk.") for k in trace.info.tags)
    # x-mlflow-run-id linked the trace (its root span came in that export) to the run.
    linked = mlflow.search_traces(locations=[exp], run_id=run, return_type="list")
    assert [t.info.trace_id for t in linked] == [trace_id]


# ---------------------------------------------------------------------------------------------------------------------
# Side by side with a real `mlflow server`.

TRACE = bytes.fromhex("0af7651916cd43dd8448eb211c80319c")
SHORT_TRACE = bytes.fromhex("00000000000000000000000000000abc")  # a trace id MLflow writes zero-padded


def kv(key, **value):
    a = KeyValue(key=key)
    for field, v in value.items():
        if field == "array":
            for x in v:
                a.value.array_value.values.add().CopyFrom(x)
            if not v:
                a.value.array_value.SetInParent()
        elif field == "kvlist":
            for k, x in v:
                e = a.value.kvlist_value.values.add()
                e.key, _ = k, e.value.CopyFrom(x)
            if not v:
                a.value.kvlist_value.SetInParent()
        else:
            setattr(a.value, field, v)
    return a


def rich_request(trace=TRACE):
    """One export of three spans exercising every value kind and MLflow's special attributes (no attribute one of
    MLflow's OpenTelemetry translators reads: those it does not copy here are listed in docs/otlp.md)."""
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.extend([kv("service.name", string_value="claude-code"), kv("deployment.environment", string_value="prod"),
                                   kv("host.count", int_value=3), kv("telemetry.sdk.name", string_value="opentelemetry"),
                                   kv("mlflow.evil", string_value="x"), kv("region", array=[AnyValue(string_value="eu")])])
    ss = rs.scope_spans.add()
    ss.scope.name = "my.scope"
    root = ss.spans.add()
    root.trace_id, root.span_id, root.name, root.kind = trace, bytes.fromhex("b7ad6b7169203331"), "root-op ✓", Span.SPAN_KIND_SERVER
    root.trace_state = "vendor=abc"
    root.start_time_unix_nano, root.end_time_unix_nano = 1700000000123456789, 1700000002500000000
    root.attributes.extend([
        kv("s", string_value="hello \"world\"\n\tünïcode \x07"), kv("b", bool_value=True), kv("i", int_value=-42),
        kv("big", int_value=9223372036854775807), kv("d", double_value=3.5), kv("d2", double_value=2.0), kv("tiny", double_value=1e-05),
        kv("huge", double_value=1e300), kv("nan", double_value=float("nan")), kv("inf", double_value=float("-inf")),
        kv("arr", array=[AnyValue(string_value="x"), AnyValue(int_value=2), AnyValue(bool_value=False)]), kv("arr0", array=[]),
        kv("kv", kvlist=[("a", AnyValue(int_value=1)), ("n", AnyValue(string_value="z")), ("a", AnyValue(int_value=9))]), kv("kv0", kvlist=[]),
        kv("by", bytes_value=b"\x00\x01\xff'q"), kv("empty"), kv("jsonstr", string_value='{"k": [1, 2.0, null]}'),
        kv("jsonarr", string_value="[1, \"two\"]"), kv("quoted", string_value='"already json"'), kv("numstr", string_value="123"),
        kv("truestr", string_value="true"), kv("dup", string_value="first"), kv("dup", string_value="second"),
        kv("mlflow.spanInputs", string_value=json.dumps({"messages": [{"role": "user", "content": "What is OTLP?"},
                                                                       {"role": "assistant", "content": "earlier"}]})),
        kv("mlflow.spanOutputs", string_value=json.dumps("x" * 1200)),
        kv("mlflow.spanType", string_value="AGENT"), kv("mlflow.traceTag.foo", string_value="bar"),
        kv("mlflow.traceTag.mlflow.traceName", string_value="the name"), kv("mlflow.traceTag.num", int_value=5),
        kv("mlflow.traceRequestId", string_value="tr-spoofed"), kv("user.id", string_value="alice"), kv("session.id", string_value="sess-1"),
    ])
    root.status.code = Status.STATUS_CODE_OK
    root.status.message = "dropped for OK"
    ev = root.events.add()
    ev.name, ev.time_unix_nano = "ev1", 1700000001000000000
    ev.attributes.extend([kv("es", string_value="v"), kv("ei", int_value=7), kv("earr", array=[AnyValue(double_value=1.5)]),
                          kv("eb", bytes_value=b"\x00"), kv("enone")])
    root.events.add()  # an empty event
    child = ss.spans.add()
    child.trace_id, child.span_id, child.parent_span_id, child.name = trace, bytes.fromhex("00f067aa0ba902b7"), root.span_id, "child-op"
    child.start_time_unix_nano, child.end_time_unix_nano = 1700000000500000000, 1700000001500000000
    child.status.code, child.status.message = Status.STATUS_CODE_ERROR, "boom"
    child.attributes.extend([kv("mlflow.spanType", string_value='"RETRIEVER"')])
    link = child.links.add()
    link.trace_id, link.span_id, link.trace_state = bytes.fromhex("4bf92f3577b34da6a3ce929d0e0e4736"), bytes.fromhex("00f067aa0ba902b8"), "x=y"
    link.attributes.extend([kv("lk", string_value="lv"), kv("ln", int_value=1), kv("lb", bytes_value=b"\x00\xff")])
    grand = ss.spans.add()
    grand.trace_id, grand.span_id, grand.parent_span_id, grand.name = trace, bytes.fromhex("01020304"), child.span_id, ""
    grand.start_time_unix_nano, grand.end_time_unix_nano = 1700000000600000000, 1700000000700000000
    grand.status.code = 5  # not a code: UNSET
    return req


def as_json(req):
    """The request in OTLP's JSON encoding (hex ids, as the specification writes them; links' ids too)."""
    from google.protobuf.json_format import MessageToDict
    d = MessageToDict(req)
    for rs in d.get("resourceSpans", []):
        for ss in rs.get("scopeSpans", []):
            for s in ss.get("spans", []):
                for f in ("traceId", "spanId", "parentSpanId"):
                    if f in s:
                        s[f] = __import__("base64").b64decode(s[f]).hex()
                s.pop("links", None)  # MLflow reads links' ids in JSON as base64, the specification as hex: left out
    return json.dumps(d).encode()


def reduced_info(info):
    """A trace info without what names the server's own places."""
    info = dict(info)
    info["tags"] = {k: v for k, v in info.get("tags", {}).items() if k != "mlflow.artifactLocation"}
    return info


def test_stored_like_mlflow(local, oracles):
    oracle = oracles["plain"].get()
    problems = []
    sent = [("protobuf", rich_request().SerializeToString(), PB),
            ("json", as_json(rich_request(SHORT_TRACE)), {"Content-Type": "application/json; charset=utf-8"}),
            ("gzip", gzip.compress(rich_request(bytes.fromhex("11" * 16)).SerializeToString()), {**PB, "Content-Encoding": "GZIP"}),
            ("deflate", zlib.compress(rich_request(bytes.fromhex("22" * 16)).SerializeToString()), {**PB, "Content-Encoding": "deflate"}),
            ("raw deflate", zlib.compressobj(wbits=-15).compress(rich_request(bytes.fromhex("33" * 16)).SerializeToString())
             + b"", {**PB, "Content-Encoding": "deflate"})]
    raw = zlib.compressobj(wbits=-15)
    sent[-1] = (sent[-1][0], raw.compress(rich_request(bytes.fromhex("33" * 16)).SerializeToString()) + raw.flush(), sent[-1][2])
    experiments = {}
    for name, server in (("mlflow", oracle), ("tally", local)):
        experiments[name] = requests.post(f"{server.url}/api/2.0/mlflow/experiments/create", json={"name": "otlp-diff"}).json()["experiment_id"]
    ids = ["tr-0af7651916cd43dd8448eb211c80319c", "tr-00000000000000000000000000000abc", "tr-" + "11" * 16, "tr-" + "22" * 16, "tr-" + "33" * 16]
    for (label, body, headers), trace_id in zip(sent, ids):
        answers = {}
        for name, server in (("mlflow", oracle), ("tally", local)):
            r = requests.post(server.url + "/v1/traces", data=body, headers={**headers, "x-mlflow-experiment-id": experiments[name]})
            assert r.status_code == 200, (name, label, r.text)
            art = requests.get(f"{server.url}/ajax-api/2.0/mlflow/get-trace-artifact", params={"request_id": trace_id})
            got = requests.get(f"{server.url}{V3}/traces/get", params={"trace_id": trace_id}).json()["trace"]
            batch = requests.get(f"{server.url}{V3}/traces/batchGet", params={"trace_ids": [trace_id, "tr-nope"]}).json()["traces"]
            answers[name] = (art.text, reduced_info(got["trace_info"]), got["spans"], [t["spans"] for t in batch])
            assert art.status_code == 200 and len(art.json()["spans"]) == 3 and len(got["spans"]) == 3 and len(batch) == 1, (name, label)
        m, t = answers["mlflow"], answers["tally"]
        if m[0] != t[0]:
            problems.append(f"{label}: stored spans differ:\nmlflow {m[0]}\ntally  {t[0]}")
        for what, i in (("trace info", 1), ("traces/get spans", 2), ("batchGet spans", 3)):
            a, b = m[i], t[i]
            if what == "trace info":
                a, b = {**a, "trace_location": None}, {**b, "trace_location": None}
            if a != b:
                problems.append(f"{label}: {what} differ:\nmlflow {a}\ntally  {b}")
    # A second batch of the first trace: a late child widens the times, a re-sent root keeps the state.
    late = rich_request()
    spans = late.resource_spans[0].scope_spans[0].spans
    spans[0].status.code = Status.STATUS_CODE_ERROR
    spans[2].start_time_unix_nano, spans[2].end_time_unix_nano = 1600000000000000000, 1800000000000000000
    for name, server in (("mlflow", oracle), ("tally", local)):
        r = requests.post(server.url + "/v1/traces", data=late.SerializeToString(), headers={**PB, "x-mlflow-experiment-id": experiments[name]})
        assert r.status_code == 200
    infos = [reduced_info(requests.get(f"{s.url}{V3}/traces/{ids[0]}").json()["trace"]["trace_info"]) for s in (oracle, local)]
    for i in infos:
        i["trace_location"] = None
    if infos[0] != infos[1]:
        problems.append(f"second batch: info differs:\nmlflow {infos[0]}\ntally  {infos[1]}")
    assert not problems, "\n\n".join(problems)


def test_refusals_like_mlflow(local, oracles):
    oracle = oracles["plain"].get()
    experiments = {}
    for name, server in (("mlflow", oracle), ("tally", local)):
        e = requests.post(f"{server.url}/api/2.0/mlflow/experiments/create", json={"name": "otlp-refusals"}).json()["experiment_id"]
        experiments[name] = e
    good = rich_request(bytes.fromhex("44" * 16)).SerializeToString()
    no_trace = ExportTraceServiceRequest()
    no_trace.resource_spans.add().scope_spans.add().spans.add().span_id = b"\x01" * 8
    wide = ExportTraceServiceRequest()
    s = wide.resource_spans.add().scope_spans.add().spans.add()
    s.trace_id, s.span_id = b"\x01" * 16, b"\x01" * 16
    long_session = rich_request(bytes.fromhex("55" * 16))
    long_session.resource_spans[0].scope_spans[0].spans[0].attributes.append(kv("session.id", string_value="s" * 251))
    long_name = rich_request(bytes.fromhex("66" * 16))
    long_name.resource_spans[0].scope_spans[0].spans[0].attributes.append(kv("mlflow.traceTag.mlflow.traceName", string_value="n" * 4097))
    cases = [
        ("no content type", good, {}, None),
        ("text/plain", good, {"Content-Type": "text/plain"}, None),
        ("garbage", b"\xff\xff\xff\xff garbage", PB, None),
        ("empty body", b"", PB, None),
        ("no resource spans", b"", {"Content-Type": "application/json"}, None),
        ("json object without spans", b"{}", {"Content-Type": "application/json"}, None),
        ("bad json", b"{", {"Content-Type": "application/json"}, None),
        ("bad hex id", b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz", "spanId": "01"}]}]}]}',
         {"Content-Type": "application/json"}, None),
        ("no trace id", no_trace.SerializeToString(), PB, None),
        ("span id of 16 bytes", wide.SerializeToString(), PB, None),
        ("bad gzip", b"not gzip", {**PB, "Content-Encoding": "gzip"}, None),
        ("bad deflate", b"not deflate", {**PB, "Content-Encoding": "deflate"}, None),
        ("brotli", good, {**PB, "Content-Encoding": "br"}, None),
        ("unknown experiment", good, PB, "987654"),
        ("experiment not a number", good, PB, "abc"),
        ("session id too long", long_session.SerializeToString(), PB, ""),
        ("trace name too long", long_name.SerializeToString(), PB, ""),
        ("resource without spans", ExportTraceServiceRequest(resource_spans=[{}]).SerializeToString(), PB, ""),
    ]
    problems = []
    for label, body, headers, experiment in cases:
        answers = {}
        for name, server in (("mlflow", oracle), ("tally", local)):
            r = requests.post(server.url + "/v1/traces", data=body,
                              headers={**headers, "x-mlflow-experiment-id": experiment or experiments[name]})
            answers[name] = (r.status_code, r.json() if r.headers.get("content-type", "").startswith("application/json") else r.content)
        (ms, mb), (ts, tb) = answers["mlflow"], answers["tally"]
        if ms != ts:
            problems.append(f"{label}: status mlflow {ms} {mb!r}, tally {ts} {tb!r}")
        elif ms >= 400:
            text = mb.get("detail") or mb.get("message")
            if tb.get("message") != text or (mb.get("error_code") and mb["error_code"] != tb.get("error_code")):
                problems.append(f"{label}: mlflow {mb}, tally {tb}")
    # The header is required (MLflow: FastAPI's 422; Tally names it).
    r = requests.post(local.url + "/v1/traces", data=good, headers=PB)
    assert r.status_code == 422 and "x-mlflow-experiment-id" in r.json()["message"]
    r = requests.post(local.url + "/v1/traces", data=good, headers={**PB, "x-mlflow-experiment-id": ""})
    assert r.status_code == 400 and r.json()["error_code"] == "BAD_REQUEST"  # MLflow drops the spans and answers 200
    # traces/get and batchGet: the same errors.
    for path, params in (("traces/get", {"trace_id": "tr-" + "0" * 32}), ("traces/get", {}), ("traces/batchGet", {}),
                         ("traces/batchGet", {"trace_ids": ["tr-nope"]})):
        m = requests.get(f"{oracle.url}{V3}/{path}", params=params)
        t = requests.get(f"{local.url}{V3}/{path}", params=params)
        if (m.status_code, m.json().get("error_code")) != (t.status_code, t.json().get("error_code")) or \
                (m.status_code == 200 and m.json() != t.json()):
            problems.append(f"{path} {params}: mlflow {m.status_code} {m.text}, tally {t.status_code} {t.text}")
    assert not problems, "\n".join(problems)


SPAN_FILTERS = [
    "span.name = 'retrieve'", "span.name != 'retrieve'", "span.name IN ('rerank', 'generate')", "span.name NOT IN ('agent')",
    "span.name LIKE 're%'", "span.name ILIKE 'RE%'", "span.name RLIKE '^ge'", "span.type = 'LLM'", "span.type != 'LLM'",
    "span.type IN ('RETRIEVER')", "span.status = 'ERROR'", "span.status = 'OK' AND span.name = 'generate'",
    "span.status = 'ERROR' AND span.type = 'LLM'", "span.content LIKE '%cats%'", "span.content ILIKE '%CATS%'",
    "trace.text ILIKE '%dogs%'", "span.attributes.model LIKE '%gpt%'", "span.attributes.model ILIKE '%GPT-4%'",
    "span.attributes.model RLIKE 'gpt-4o'", "span.attributes.model RLIKE '^gpt'", "span.attributes.model RLIKE 'mini$'",
    "span.attributes.`llm.temperature` LIKE '%0.2%'", "span.attributes.model = 'gpt-4o'", "span.attributes.model != 'gpt-4o'",
    "span.name = 'generate' AND tags.team = 'a'", "span.attributes.mlflow.spanType LIKE '%LLM%'",
]


def test_span_search_like_mlflow(local, oracles):
    """`span.*` and `trace.text` filters give the same traces as a real `mlflow server` holding the same spans."""
    oracle = oracles["plain"].get()
    rng = __import__("random").Random(5)
    exports = []
    for n in range(12):
        req = ExportTraceServiceRequest()
        rs = req.resource_spans.add()
        rs.resource.attributes.append(kv("team", string_value="ab"[n % 2]))
        spans = rs.scope_spans.add().spans
        trace = n.to_bytes(16, "big")
        names = ["agent"] + rng.sample(["retrieve", "rerank", "generate", "summarize"], 2)
        for i, name in enumerate(names):
            s = spans.add()
            s.trace_id, s.span_id, s.name = trace, (n * 10 + i + 1).to_bytes(8, "big"), name
            if i:
                s.parent_span_id = (n * 10 + 1).to_bytes(8, "big")
            s.start_time_unix_nano, s.end_time_unix_nano = 1_700_000_000_000_000_000 + n * 10**9 + i, 1_700_000_000_500_000_000 + n * 10**9
            s.status.code = rng.choice([1, 1, 2, 0])
            s.attributes.extend([kv("mlflow.spanType", string_value={"retrieve": "RETRIEVER", "generate": "LLM"}.get(name, "CHAIN")),
                                 kv("mlflow.spanInputs", string_value=json.dumps({"q": rng.choice(["cats", "dogs", "birds"])}))])
            if name == "generate":
                s.attributes.extend([kv("model", string_value=rng.choice(["gpt-4o", "gpt-4o-mini", "claude"])),
                                     kv("llm.temperature", double_value=rng.choice([0.2, 0.7]))])
        exports.append(req.SerializeToString())
    answers = {}
    for name, server in (("mlflow", oracle), ("tally", local)):
        exp = requests.post(f"{server.url}/api/2.0/mlflow/experiments/create", json={"name": "otlp-span-search"}).json()["experiment_id"]
        for body in exports:
            assert requests.post(server.url + "/v1/traces", data=body, headers={**PB, "x-mlflow-experiment-id": exp}).status_code == 200
        for f in SPAN_FILTERS:
            r = requests.post(f"{server.url}{V3}/traces/search", json={"locations": [{"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {
                "experiment_id": exp}}], "filter": f, "max_results": 100})
            answers.setdefault(f, {})[name] = (r.status_code, sorted(t["trace_id"] for t in r.json().get("traces", [])))
    problems = [f"{f}: mlflow {a['mlflow']}, tally {a['tally']}" for f, a in answers.items() if a["mlflow"] != a["tally"]]
    assert not problems, "\n".join(problems)
    assert sum(1 for a in answers.values() if a["tally"][1] and len(a["tally"][1]) < 12) > 10  # the filters tell traces apart
