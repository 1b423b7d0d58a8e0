#!/usr/bin/env python3
"""`traces/metrics` (MLflow's trace overview charts), `tally server` against a real `mlflow server`, side by side in one
run, on the same data: `--traces` OpenInference traces of `--spans` spans (an agent and its model calls on three
models, translated and priced by both servers), spread over `--hours` hours, with a feedback on every tenth trace,
sent to both in batched exports. Then each query below `--rounds` times, median milliseconds per query, and the
server's RSS at the end. Tally runs with `--model-prices` on MLflow's bundled catalog, MLflow prices from the same
files (`MLFLOW_MODEL_CATALOG_URI=""`, set by benchutil).

    swift build -c release --product tally
    .venv-interop/bin/python scripts/bench-trace-metrics.py --tally .build/release/tally

`--ingest-only` sends the spans and reports their time and the server's CPU (`/proc`), nothing else. With
`--postgres`, both servers keep their metadata in one PostgreSQL cluster started here (`scripts/pg-test`, plain
connections), a database each; MLflow through psycopg2.
"""
import argparse
import json
import os
import random
import statistics
import subprocess
import tempfile
import time

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from benchutil import call, database, server_rss, start_server, stop_server

PB = {"Content-Type": "application/x-protobuf"}
CATALOG = os.path.join(os.path.dirname(__import__("mlflow").__file__), "utils", "model_catalog")
BASE_MS = 1_767_225_600_000
MODELS = [("gpt-4o-mini", "openai"), ("gpt-4o", "openai"), ("claude-sonnet-4-5", "anthropic")]


def kv(key, **value):
    a = KeyValue(key=key)
    for field, v in value.items():
        setattr(a.value, field, v)
    return a


def spans_of(t, n, start_ns):
    rnd = random.Random(t)
    trace = rnd.randbytes(16)
    out = []
    for i in range(n):
        length = rnd.randint(50, 2000) * 1_000_000
        s = Span(trace_id=trace, span_id=(t * 1000 + i + 1).to_bytes(8, "big"), name=f"call_{i % 3}" if i else ["agent", "rag", "chat"][t % 3],
                 start_time_unix_nano=start_ns + i * 1_000_000, end_time_unix_nano=start_ns + i * 1_000_000 + length)
        if i:
            s.parent_span_id = (t * 1000 + 1).to_bytes(8, "big")
        s.status.code = 2 if rnd.random() < 0.05 else 1
        s.attributes.extend([kv("openinference.span.kind", string_value="LLM" if i else "AGENT"),
                             kv("input.value", string_value="question %d" % t), kv("output.value", string_value="answer %d.%d" % (t, i))])
        if i:
            model, provider = MODELS[(t + i) % 3]
            s.attributes.extend([kv("llm.model_name", string_value=model), kv("llm.provider", string_value=provider),
                                 kv("llm.token_count.prompt", int_value=rnd.randint(100, 4000)),
                                 kv("llm.token_count.completion", int_value=rnd.randint(10, 800))])
        else:
            s.attributes.append(kv("session.id", string_value="session-%d" % (t % 50)))
        out.append(s)
    return trace, out


def export(spans):
    req = ExportTraceServiceRequest()
    req.resource_spans.add().scope_spans.add().spans.extend(spans)
    return req.SerializeToString()


def agg(kind, p=None):
    return {"aggregation_type": kind} | ({"percentile_value": p} if p is not None else {})


def queries(hours):
    window = {"start_time_ms": BASE_MS, "end_time_ms": BASE_MS + hours * 3_600_000}
    return {
        "traces per hour by status": ("TRACES", "trace_count", [agg("COUNT")], {"dimensions": ["trace_status"], "time_interval_seconds": 3600, **window}),
        "latency avg/p50/p95": ("TRACES", "latency", [agg("AVG"), agg("PERCENTILE", 50), agg("PERCENTILE", 95)], {}),
        "tokens per hour": ("TRACES", "total_tokens", [agg("SUM"), agg("AVG")], {"time_interval_seconds": 3600, **window}),
        "sessions": ("TRACES", "session_count", [agg("COUNT")], {}),
        "spans by name and status": ("SPANS", "span_count", [agg("COUNT")], {"dimensions": ["span_name", "span_status"]}),
        "cost by model per hour": ("SPANS", "total_cost", [agg("SUM")], {"dimensions": ["span_model_name"], "time_interval_seconds": 3600, **window}),
        "feedback average": ("ASSESSMENTS", "assessment_value", [agg("AVG")], {"dimensions": ["assessment_name"]}),
    }


def server_cpu(proc):
    """The server's CPU time so far (user and system, its own threads), in seconds."""
    with open(f"/proc/{proc.pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(target, backend, args):
    work = tempfile.mkdtemp(prefix="bench-metrics-")
    proc, url = start_server(target, backend, work, ["--model-prices", CATALOG] if target != "mlflow" else [])
    try:
        exp = call(url, "POST", "/api/2.0/mlflow/experiments/create", {"name": "metrics-bench"})["experiment_id"]
        import requests
        s = requests.Session()
        step = args.hours * 3_600_000_000_000 // args.traces
        batch, ids = [], []
        t0, cpu0 = time.perf_counter(), server_cpu(proc)
        for t in range(args.traces):
            trace, spans = spans_of(t, args.spans, BASE_MS * 1_000_000 + t * step)
            ids.append("tr-" + trace.hex())
            batch += spans
            if len(batch) >= 512 or t == args.traces - 1:
                r = s.post(url + "/v1/traces", data=export(batch), headers={**PB, "x-mlflow-experiment-id": exp})
                assert r.status_code == 200, r.text
                batch = []
        spans_s, spans_cpu = time.perf_counter() - t0, server_cpu(proc) - cpu0
        if args.ingest_only:
            return {"target": target, "spans": args.traces * args.spans, "spans_s": round(spans_s, 2), "spans_server_cpu_s": round(spans_cpu, 2)}, {}
        for i, tid in enumerate(ids[::10]):
            r = s.post(f"{url}/api/3.0/mlflow/traces/{tid}/assessments", json={"assessment": {
                "trace_id": tid, "assessment_name": "helpful", "source": {"source_type": "HUMAN", "source_id": "u"}, "feedback": {"value": i % 3 != 0}}})
            assert r.status_code == 200, r.text
        ingest = time.perf_counter() - t0
        out = {"target": target, "traces": args.traces, "spans": args.traces * args.spans, "ingest_s": round(ingest, 1), "spans_s": round(spans_s, 2)}
        if target != "mlflow":  # MLflow's work is done by its worker processes, not the one started
            out["spans_server_cpu_s"] = round(spans_cpu, 2)
        answers = {}
        for name, (view, metric, aggregations, extra) in queries(args.hours).items():
            body = {"experiment_ids": [exp], "view_type": view, "metric_name": metric, "aggregations": aggregations, **extra}
            times = []
            for _ in range(args.rounds):
                t1 = time.perf_counter()
                r = s.post(url + "/api/3.0/mlflow/traces/metrics", json=body)
                times.append((time.perf_counter() - t1) * 1000)
                assert r.status_code == 200, r.text
            answers[name] = r.json().get("data_points", [])
            assert answers[name], (target, name)
            out[name + " ms"] = round(statistics.median(times), 1)
        rss = server_rss(proc)
        out["rss_mb"], out["peak_rss_mb"] = round(rss[0], 1), round(rss[1], 1)
        return out, answers
    finally:
        stop_server(proc, work)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--tally", required=True)
    p.add_argument("--traces", type=int, default=5000)
    p.add_argument("--spans", type=int, default=5)
    p.add_argument("--hours", type=int, default=24)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--tally-only", action="store_true")
    p.add_argument("--postgres", action="store_true")
    p.add_argument("--ingest-only", action="store_true", help="only the spans' ingest: its time and the server's CPU")
    args = p.parse_args()
    results = {}
    pg_test = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pg-test")
    cluster = os.path.join(tempfile.gettempdir(), f"bench-metrics-pg-{os.getpid()}") if args.postgres else None
    if cluster:
        base = subprocess.run([pg_test, "start", cluster], check=True, capture_output=True, text=True, env=dict(os.environ, PG_TEST_TLS="0")).stdout.strip()
    try:
        for n, target in enumerate([args.tally] + ([] if args.tally_only else ["mlflow"])):
            if cluster:
                uri = database(cluster, base, f"metrics{n}")
                backend = uri if target != "mlflow" else uri.replace("postgresql://", "postgresql+psycopg2://")
            else:
                backend = "-" if target != "mlflow" else "sqlite:///" + os.path.join(tempfile.mkdtemp(prefix="bench-metrics-mlflow-"), "m.db")
            out, answers = run(target, backend, args)
            results[target] = answers
            print(json.dumps({**out, "backend": "postgresql" if cluster else "sqlite"}), flush=True)
    finally:
        if cluster:
            subprocess.run([pg_test, "stop", cluster], check=False)
    if not args.tally_only and not args.ingest_only:  # the same data, the same answers (counts exactly; sums within rounding)
        for name, ours in results[args.tally].items():
            theirs = results["mlflow"][name]
            same = len(ours) == len(theirs) and all(
                a.get("dimensions") == b.get("dimensions") and a["values"].keys() == b["values"].keys()
                and all(abs(a["values"][k] - b["values"][k]) <= 1e-9 * max(1, abs(b["values"][k])) for k in a["values"])
                for a, b in zip(ours, theirs))
            print(json.dumps({"query": name, "points": len(ours), "same_as_mlflow": same}), flush=True)


if __name__ == "__main__":
    main()
