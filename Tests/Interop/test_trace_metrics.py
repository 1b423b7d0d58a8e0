"""`traces/metrics` (MLflow's QueryTraceMetrics: its trace overview's counts, latency, token usage, cost and
assessment charts), side by side with a real `mlflow server`: the same traces, spans and assessments sent to both,
then every view, metric, aggregation, dimension, time bucket and filter asked of both, and the answers compared
data point for data point; refusals compared status, code and message."""
import json
import math
import os

import pytest
import requests
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Status

import mlflow
from conftest import module_server
from test_otlp import PB, V3, kv

CATALOG = os.path.join(os.path.dirname(mlflow.__file__), "utils", "model_catalog")
BASE_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
HOUR = 3_600_000
MODELS = [("gpt-4o-mini", "openai"), ("claude-sonnet-4-5", "anthropic"), ("gemini-2.5-pro", None)]
N = 24


@pytest.fixture(scope="module")
def local():
    yield from module_server("--model-prices", CATALOG)


def trace_id(k):
    return bytes([0x40 + k]) * 16


def export(k):
    """Trace k: a root named by k, a chat span on one of three models (usage on most), a tool span; some roots fail."""
    req = ExportTraceServiceRequest()
    ss = req.resource_spans.add().scope_spans.add()
    start = (BASE_MS + k * 20 * 60_000 + k * 7) * 1_000_000
    duration = ((k % 5) + 1) * 137_000_000 + k * 1_000
    model, provider = MODELS[k % 3]

    def span(i, name, attributes, parent=None, begin=0, length=duration, error=False):
        sp = ss.spans.add()
        sp.trace_id, sp.span_id, sp.name = trace_id(k), bytes([0, 0, 0, 0, 0, 0, k, i]), name
        if parent is not None:
            sp.parent_span_id = bytes([0, 0, 0, 0, 0, 0, k, parent])
        sp.start_time_unix_nano, sp.end_time_unix_nano = start + begin, start + begin + length
        sp.attributes.extend(attributes)
        sp.status.code = Status.STATUS_CODE_ERROR if error else Status.STATUS_CODE_OK

    root = [kv("gen_ai.operation.name", string_value="invoke_agent")]
    if k % 4 != 3:
        root.append(kv("session.id", string_value=f"s-{k % 3}"))
    span(1, ["chat", "search", "summarize"][k % 3], root, error=k % 7 == 0)
    llm = [kv("gen_ai.operation.name", string_value="chat"), kv("gen_ai.request.model", string_value=model)]
    if provider:
        llm.append(kv("gen_ai.provider.name", string_value=provider))
    if k % 5 != 4:
        llm += [kv("gen_ai.usage.input_tokens", int_value=100 + 13 * k), kv("gen_ai.usage.output_tokens", int_value=10 + k)]
    if k % 6 == 1:
        llm.append(kv("gen_ai.usage.cache_read.input_tokens", int_value=40 + k))
    span(2, "llm", llm, parent=1, begin=1_000_000, length=duration // 2 + k * 3_000_000)
    span(3, "tool", [kv("gen_ai.operation.name", string_value="execute_tool")], parent=1, begin=2_000_000, length=5_000_000 * (k % 3 + 1),
         error=k % 5 == 0)
    if k % 8 == 2:
        span(4, "priced", [kv("mlflow.llm.cost", string_value=json.dumps({"input_cost": 0.25 * k, "output_cost": 0.5, "total_cost": 0.25 * k + 0.5})),
                           kv("mlflow.llm.model", string_value="custom-model")], parent=1, begin=3_000_000, length=1_000_000)
    return req


def assessments(k, tid):
    """Feedback and expectations on the first traces: booleans, numbers, yes/no, text, an error, an override."""
    out = []
    if k >= 12:
        return out
    src = {"source_type": "HUMAN", "source_id": "reviewer"}
    base = {"trace_id": tid, "source": src}
    out.append({**base, "assessment_name": "relevance", "feedback": {"value": k % 2 == 0}})
    out.append({**base, "assessment_name": "score", "feedback": {"value": k / 4}})
    out.append({**base, "assessment_name": "verdict", "feedback": {"value": ["yes", " No ", "maybe"][k % 3]}})
    out.append({**base, "assessment_name": "expected", "expectation": {"value": {"answer": f"a{k % 2}"}}})
    if k % 5 == 0:
        out.append({**base, "assessment_name": "judge", "feedback": {"error": {"error_code": "TIMEOUT", "error_message": "slow"}}})
    return out


def post_assessment(server, tid, a):
    r = requests.post(f"{server.url}{V3}/traces/{tid}/assessments", json={"assessment": a})
    assert r.status_code == 200, r.text
    return r.json()["assessment"]["assessment_id"]


@pytest.fixture(scope="module")
def populated(local, oracles):
    """Both servers with the same traces, spans and assessments; the experiment id on each."""
    oracle = oracles["plain"].get()
    exp = {}
    for who, server in (("mlflow", oracle), ("tally", local)):
        exp[who] = requests.post(f"{server.url}/api/2.0/mlflow/experiments/create", json={"name": "trace-metrics"}).json()["experiment_id"]
        for k in range(N):
            r = requests.post(server.url + "/v1/traces", data=export(k).SerializeToString(), headers={**PB, "x-mlflow-experiment-id": exp[who]})
            assert r.status_code == 200, (who, r.text)
            tid = "tr-" + trace_id(k).hex()
            for a in assessments(k, tid):
                post_assessment(server, tid, a)
            if k == 0:  # a corrected score: the first is no longer valid
                first = requests.post(f"{server.url}{V3}/traces/{tid}/assessments", json={"assessment": {
                    "trace_id": tid, "source": {"source_type": "HUMAN", "source_id": "x"}, "assessment_name": "score", "feedback": {"value": 9}}})
                post_assessment(server, tid, {"trace_id": tid, "source": {"source_type": "HUMAN", "source_id": "y"}, "assessment_name": "score",
                                              "feedback": {"value": 7}, "overrides": first.json()["assessment"]["assessment_id"]})
        r = requests.patch(f"{server.url}{V3}/traces/tr-{trace_id(3).hex()}/tags", json={"key": "team", "value": "search"})
        assert r.status_code == 200, r.text
    return oracle, exp


def agg(kind, p=None):
    return {"aggregation_type": kind} | ({"percentile_value": p} if p is not None else {})


COUNT, SUM, AVG, MIN, MAX = (agg(k) for k in ("COUNT", "SUM", "AVG", "MIN", "MAX"))
RANGE = {"start_time_ms": BASE_MS, "end_time_ms": BASE_MS + 8 * HOUR}
SPREAD = [AVG, MIN, MAX, agg("PERCENTILE", 50), agg("PERCENTILE", 95), agg("PERCENTILE", 0), agg("PERCENTILE", 100), agg("PERCENTILE", 33.3)]

QUERIES = [
    ("TRACES", "trace_count", [COUNT], {}),
    ("TRACES", "trace_count", [COUNT], {"dimensions": ["trace_name"]}),
    ("TRACES", "trace_count", [COUNT], {"dimensions": ["trace_status", "trace_name"]}),
    ("TRACES", "trace_count", [COUNT], {"time_interval_seconds": 3600, **RANGE}),
    ("TRACES", "trace_count", [COUNT], {"time_interval_seconds": 3600, "dimensions": ["trace_status"], **RANGE, "max_results": 5}),
    ("TRACES", "trace_count", [COUNT], {"time_interval_seconds": 86400, "start_time_ms": BASE_MS + HOUR, "end_time_ms": BASE_MS + 3 * HOUR}),
    ("TRACES", "trace_count", [COUNT], {"start_time_ms": BASE_MS + 2 * HOUR, "end_time_ms": BASE_MS + 2 * HOUR + 40 * 60_000 + 14}),
    ("TRACES", "session_count", [COUNT], {}),
    ("TRACES", "session_count", [COUNT], {"time_interval_seconds": 7200, **RANGE}),
    ("TRACES", "latency", SPREAD, {}),
    ("TRACES", "latency", [AVG, agg("PERCENTILE", 90)], {"dimensions": ["trace_name"]}),
    ("TRACES", "input_tokens", [SUM, AVG, MIN, MAX, agg("PERCENTILE", 75)], {"dimensions": ["trace_name"]}),
    ("TRACES", "output_tokens", [SUM], {"time_interval_seconds": 1800, **RANGE}),
    ("TRACES", "total_tokens", [SUM, AVG], {}),
    ("TRACES", "cache_read_input_tokens", [SUM, MAX], {}),
    ("TRACES", "cache_creation_input_tokens", [SUM], {}),
    ("TRACES", "trace_count", [COUNT], {"filters": ["trace.status = 'ERROR'"]}),
    ("TRACES", "trace_count", [COUNT], {"filters": ["trace.status = 'IN_PROGRESS'"]}),
    ("TRACES", "latency", [AVG], {"filters": ["trace.status = 'IN_PROGRESS'"]}),
    ("TRACES", "trace_count", [COUNT], {"filters": ["trace.tag.mlflow.traceName = 'chat'"]}),
    ("TRACES", "trace_count", [COUNT], {"filters": ['trace.tag.`mlflow.traceName` = "search"', "trace.status = 'OK'"]}),
    ("TRACES", "trace_count", [COUNT], {"filters": ["trace.tag.team = 'search'"]}),
    ("TRACES", "trace_count", [COUNT], {"filters": ["trace.metadata.mlflow.trace.session = 's-1'"], "dimensions": ["trace_name"]}),
    ("TRACES", "trace_count", [COUNT], {"filters": ["trace.metadata.mlflow.trace.tokenUsage = "
                                                     "'{\"input_tokens\": 113, \"output_tokens\": 11, \"total_tokens\": 124}'"]}),
    ("TRACES", "trace_count", [COUNT], {"filters": ["trace.metadata.mlflow.trace.tokenUsage = "
                                                     "'{\"output_tokens\": 11, \"input_tokens\": 113, \"total_tokens\": 124}'"]}),
    ("TRACES", "trace_count", [COUNT], {"max_results": 0, "dimensions": ["trace_name"]}),
    ("SPANS", "span_count", [COUNT], {}),
    ("SPANS", "span_count", [COUNT], {"dimensions": ["span_type"]}),
    ("SPANS", "span_count", [COUNT], {"dimensions": ["span_model_name", "span_model_provider"]}),
    ("SPANS", "span_count", [COUNT], {"dimensions": ["span_status", "span_name"]}),
    ("SPANS", "span_count", [COUNT], {"time_interval_seconds": 3600, "dimensions": ["span_type"], **RANGE}),
    ("SPANS", "latency", [AVG, MIN, MAX, agg("PERCENTILE", 50)], {"dimensions": ["span_name"]}),
    ("SPANS", "latency", [MAX], {"filters": ["span.status = 'OK'"], "dimensions": ["span_status"]}),
    ("SPANS", "total_cost", [SUM, AVG, MIN, MAX], {"dimensions": ["span_model_name"]}),
    ("SPANS", "input_cost", [SUM], {"time_interval_seconds": 3600, **RANGE}),
    ("SPANS", "output_cost", [SUM, agg("PERCENTILE", 50)], {"dimensions": ["span_model_provider"]}),
    ("SPANS", "total_cost", [SUM], {"start_time_ms": BASE_MS + 2 * HOUR, "end_time_ms": BASE_MS + 6 * HOUR}),
    ("SPANS", "span_count", [COUNT], {"filters": ["span.type = 'CHAT_MODEL'", "trace.status = 'OK'"]}),
    ("SPANS", "span_count", [COUNT], {"filters": ["span.name = 'tool'"], "dimensions": ["span_status"]}),
    ("SPANS", "span_count", [COUNT], {"filters": ["trace.metadata.mlflow.trace.session = 's-2'"]}),
    ("ASSESSMENTS", "assessment_count", [COUNT], {}),
    ("ASSESSMENTS", "assessment_count", [COUNT], {"dimensions": ["assessment_name"]}),
    ("ASSESSMENTS", "assessment_count", [COUNT], {"dimensions": ["assessment_name", "assessment_value"]}),
    ("ASSESSMENTS", "assessment_value", [AVG, MIN, MAX, agg("PERCENTILE", 50)], {"dimensions": ["assessment_name"]}),
    ("ASSESSMENTS", "assessment_count", [COUNT], {"filters": ["assessment.type = 'expectation'"]}),
    ("ASSESSMENTS", "assessment_value", [AVG], {"filters": ["assessment.name = 'score'", "trace.status = 'OK'"]}),
    ("ASSESSMENTS", "assessment_count", [COUNT], {"time_interval_seconds": 3600, **RANGE, "dimensions": ["assessment_name"]}),
    ("ASSESSMENTS", "assessment_count", [COUNT], {"filters": ["trace.tag.mlflow.traceName = 'search'"]}),
]


def ask(server, exp, view, metric, aggregations, extra):
    body = {"experiment_ids": [exp], "view_type": view, "metric_name": metric, "aggregations": aggregations, **extra}
    return requests.post(f"{server.url}{V3}/traces/metrics", json=body)


def same_points(a, b):
    if len(a) != len(b):
        return False
    for x, y in zip(a, b):
        if x.get("metric_name") != y.get("metric_name") or x.get("dimensions", {}) != y.get("dimensions", {}):
            return False
        vx, vy = x.get("values", {}), y.get("values", {})
        if vx.keys() != vy.keys() or any(not math.isclose(vx[k], vy[k], rel_tol=1e-12, abs_tol=1e-12) for k in vx):
            return False
    return True


def test_metrics_like_mlflow(local, populated):
    oracle, exp = populated
    problems = []
    for view, metric, aggregations, extra in QUERIES:
        got = {}
        for who, server in (("mlflow", oracle), ("tally", local)):
            r = ask(server, exp[who], view, metric, aggregations, extra)
            got[who] = (r.status_code, r.json().get("data_points", []))
        (ms, mp), (ts, tp) = got["mlflow"], got["tally"]
        if ms != 200 or ts != 200 or not same_points(mp, tp):
            problems.append(f"{view} {metric} {[str(a) for a in aggregations]} {extra}:\nmlflow {ms} {mp}\ntally  {ts} {tp}")
    assert not problems, "\n\n".join(problems)
    # The answers are not empty where the data has values: the comparison compared something.
    r = ask(local, exp["tally"], "SPANS", "total_cost", [SUM], {"dimensions": ["span_model_name"]}).json()["data_points"]
    assert {p["dimensions"]["span_model_name"] for p in r} >= {"gpt-4o-mini", "claude-sonnet-4-5", "custom-model"}


REFUSED = [
    ({"view_type": "TRACES", "metric_name": "span_count", "aggregations": [COUNT]}, None),
    ({"view_type": "TRACES", "metric_name": "trace_count", "aggregations": [SUM, AVG]}, None),
    ({"view_type": "SPANS", "metric_name": "latency", "aggregations": [AVG], "dimensions": ["span_type", "trace_name"]}, None),
    ({"view_type": "TRACES", "metric_name": "trace_count", "aggregations": [COUNT], "time_interval_seconds": 60}, None),
    ({"view_type": "TRACES", "metric_name": "trace_count", "aggregations": [COUNT], "time_interval_seconds": 60, "start_time_ms": 1}, None),
    ({"view_type": "TRACES", "metric_name": "trace_count", "aggregations": [COUNT], "filters": ["span.name = 'x'"]}, None),
    ({"view_type": "SPANS", "metric_name": "span_count", "aggregations": [COUNT], "filters": ["assessment.name = 'x'"]}, None),
    ({"view_type": "TRACES", "metric_name": "trace_count", "aggregations": [COUNT], "filters": ["trace.status != 'OK'"]}, None),
    ({"view_type": "TRACES", "metric_name": "trace_count", "aggregations": [COUNT], "filters": ["trace.status = 5"]}, None),
    ({"view_type": "TRACES", "metric_name": "trace_count", "aggregations": [COUNT], "filters": ["run.status = 'OK'"]}, None),
    ({"view_type": "TRACES", "metric_name": "trace_count", "aggregations": [COUNT], "filters": ["trace.name = 'x'"]}, None),
    ({"view_type": "TRACES", "metric_name": "trace_count", "aggregations": [COUNT], "filters": ["trace.tag = 'x'"]}, None),
    ({"view_type": "TRACES", "metric_name": "trace_count", "aggregations": [COUNT], "filters": ["trace.status.x = 'OK'"]}, None),
    ({"view_type": "TRACES", "metric_name": "trace_count", "aggregations": [COUNT], "filters": ["status = 'OK'"]}, None),
    ({"view_type": "TRACES", "metric_name": "trace_count", "aggregations": [COUNT],
      "filters": ["trace.status = 'OK' AND trace.tag.a = 'b'"]}, None),
    ({"view_type": "TRACES", "metric_name": "trace_count", "aggregations": [COUNT], "filters": [""]}, None),
    ({"metric_name": "trace_count", "aggregations": [COUNT]}, None),
    ({"view_type": "NO_SUCH_VIEW", "metric_name": "trace_count", "aggregations": [COUNT]}, None),
    ({"view_type": "TRACES", "aggregations": [COUNT]}, None),
    ({"view_type": "TRACES", "metric_name": "trace_count", "aggregations": [COUNT], "experiment_ids": []}, None),
    ({"view_type": "TRACES", "metric_name": "trace_count", "aggregations": [COUNT], "experiment_ids": ["abc"]}, None),
    ({"view_type": "TRACES", "metric_name": "trace_count", "aggregations": "COUNT"}, None),
    ({"view_type": "TRACES", "metric_name": "latency", "aggregations": [{}]}, None),  # protobuf's default type: COUNT
    ({"view_type": "TRACES", "metric_name": "latency", "aggregations": [{"aggregation_type": "MEDIAN"}]}, None),
    ({"view_type": "TRACES", "metric_name": "trace_count", "aggregations": [COUNT], "experiment_ids": "1"}, None),
    # MLflow answers this 400 with its SQL's error ("Query contains no columns with which to SELECT from.").
    ({"view_type": "TRACES", "metric_name": "trace_count", "aggregations": []}, "Missing value for required parameter 'aggregations'"),
    # MLflow answers these 500 (a Python ValueError); Tally 400 with the same sentence.
    ({"view_type": "TRACES", "metric_name": "latency", "aggregations": [agg("PERCENTILE")]},
     "Percentile value is required for PERCENTILE aggregation"),
    ({"view_type": "TRACES", "metric_name": "latency", "aggregations": [agg("PERCENTILE", 101)]}, "Percentile value must be between 0 and 100, got 101.0"),
    ({"view_type": "TRACES", "metric_name": "latency", "aggregations": [agg("AVG", 5)]},
     "Percentile value is only allowed for PERCENTILE aggregation type, got AVG"),
]


def test_refusals_like_mlflow(local, populated):
    oracle, exp = populated
    problems = []
    for body, tally_only in REFUSED:
        got = {}
        for who, server in (("mlflow", oracle), ("tally", local)):
            r = requests.post(f"{server.url}{V3}/traces/metrics", json={"experiment_ids": [exp[who]], **body})
            j = r.json() if r.headers.get("Content-Type", "").startswith("application/json") else {}
            got[who] = (r.status_code, j.get("error_code"), j.get("message"))
        if tally_only:
            assert got["mlflow"][0] in (400, 500) and got["mlflow"][2] != got["tally"][2], (body, got["mlflow"])
            if got["tally"][:2] != (400, "INVALID_PARAMETER_VALUE") or tally_only not in (got["tally"][2] or ""):
                problems.append(f"{body}: tally {got['tally']}")
        elif got["mlflow"] != got["tally"]:
            problems.append(f"{body}:\nmlflow {got['mlflow']}\ntally  {got['tally']}")
    assert not problems, "\n\n".join(problems)


def test_reads_need_every_experiment(local, populated):
    """The caller must be able to read each experiment named; one that does not exist gives no data points."""
    _, exp = populated
    r = ask(local, "999999", "TRACES", "trace_count", [COUNT], {"dimensions": ["trace_name"]})
    assert r.status_code == 200 and r.json() == {}, r.text
    r = ask(local, exp["tally"], "TRACES", "trace_count", [COUNT], {})
    assert r.json()["data_points"] == [{"metric_name": "trace_count", "values": {"COUNT": float(N)}}]
