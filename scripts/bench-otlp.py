#!/usr/bin/env python3
"""OTLP span ingest (`POST /v1/traces`) and span reads, `tally server` against a real `mlflow server`, side by side in
one run, on SQLite (and on PostgreSQL with --postgres, one database per target on the same cluster).

Workload, as MLflow's Python client sends a traced call with synchronous logging: each trace is a root span and
`--spans - 1` children, every span exported alone as it ends (children first), protobuf with the client's resource and
attributes (request id, type, function name, inputs and outputs of ~150 bytes, log level), then the trace's info
(`traces`, POST) with its size stats. `--clients` threads each send their own traces over a kept-alive connection.
Then the batched form an OpenTelemetry BatchSpanProcessor sends: exports of 512 spans. Reads: `traces/get` of random
traces, and `traces/search` (100) followed by `traces/batchGet` of its page in tens, as `mlflow.search_traces` reads.
Storage: bytes per span on disk, measured once the server has stopped (SQLite: Tally's metadata file or MLflow's
database file, with any WAL left; PostgreSQL: the database's size), and the server's RSS before it stops.

    swift build -c release --product tally
    .venv-interop/bin/python scripts/bench-otlp.py --tally .build/release/tally
    .venv-interop/bin/python scripts/bench-otlp.py --tally .build/release/tally --postgres postgresql://tally:tally@127.0.0.1:PORT
"""
import argparse
import http.client
import json
import os
import random
import statistics
import tempfile
import threading
import time
import urllib.parse

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue

from benchutil import call, server_rss, start_server, stop_server

PB = {"Content-Type": "application/x-protobuf"}
CATALOG = os.path.join(os.path.dirname(__import__("mlflow").__file__), "utils", "model_catalog")


def kv(key, **value):
    a = KeyValue(key=key)
    for field, v in value.items():
        if field == "kvlist":
            for k, s in v:
                e = a.value.kvlist_value.values.add()
                e.key, e.value.string_value = k, s
        else:
            setattr(a.value, field, v)
    return a


def spans_of(trace_no, n, start_ns):
    """The spans of one trace as MLflow's client makes them: (trace id bytes, [Span]), root first."""
    from opentelemetry.proto.trace.v1.trace_pb2 import Span
    trace = random.Random(trace_no).randbytes(16)
    out = []
    for i in range(n):
        s = Span(trace_id=trace, span_id=(trace_no * 1000 + i + 1).to_bytes(8, "big"), name="step_%d" % i if i else "agent",
                 start_time_unix_nano=start_ns + i * 1_000_000, end_time_unix_nano=start_ns + (n + 10 - i) * 1_000_000)
        if i:
            s.parent_span_id = (trace_no * 1000 + 1).to_bytes(8, "big")
        s.status.code = 1
        s.attributes.extend([
            kv("mlflow.traceRequestId", string_value="tr-" + trace.hex()), kv("mlflow.spanType", string_value="LLM" if i else "AGENT"),
            kv("mlflow.spanFunctionName", string_value="step_%d" % i),
            kv("mlflow.spanInputs", kvlist=[("question", "what is the capital of country %d, and why does it matter today?" % trace_no),
                                            ("context", "retrieved passage %d of trace %d" % (i, trace_no))]),
            kv("mlflow.spanOutputs", string_value="the answer to step %d of trace %d is a sentence of a few dozen words" % (i, trace_no)),
            kv("mlflow.spanLogLevel", int_value=20)])
        out.append(s)
    return trace, out


def openinference_spans_of(trace_no, n, start_ns):
    """The spans of one trace as an OpenInference instrumentation (an agent and its model calls) makes them: no MLflow
    attribute, so MLflow's translation gives each its type, inputs, outputs, token usage, model and cost."""
    from opentelemetry.proto.trace.v1.trace_pb2 import Span
    trace = random.Random(trace_no).randbytes(16)
    out = []
    for i in range(n):
        s = Span(trace_id=trace, span_id=(trace_no * 1000 + i + 1).to_bytes(8, "big"), name="ChatOpenAI" if i else "agent",
                 start_time_unix_nano=start_ns + i * 1_000_000, end_time_unix_nano=start_ns + (n + 10 - i) * 1_000_000)
        if i:
            s.parent_span_id = (trace_no * 1000 + 1).to_bytes(8, "big")
        s.status.code = 1
        question = "what is the capital of country %d, and why does it matter today?" % trace_no
        s.attributes.extend([
            kv("openinference.span.kind", string_value="LLM" if i else "AGENT"),
            kv("input.value", string_value=json.dumps({"messages": [{"role": "user", "content": question}]})),
            kv("input.mime_type", string_value="application/json"),
            kv("output.value", string_value="the answer to step %d of trace %d is a sentence of a few dozen words" % (i, trace_no))])
        if i:
            s.attributes.extend([kv("llm.model_name", string_value="gpt-4o-mini"), kv("llm.provider", string_value="openai"),
                                 kv("llm.token_count.prompt", int_value=200 + i), kv("llm.token_count.completion", int_value=40),
                                 kv("llm.token_count.total", int_value=240 + i)])
        out.append(s)
    return trace, out


def export(spans):
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.extend([kv("telemetry.sdk.language", string_value="python"), kv("telemetry.sdk.name", string_value="mlflow"),
                                   kv("telemetry.sdk.version", string_value="3.17.2")])
    rs.scope_spans.add().spans.extend(spans)
    return req.SerializeToString()


def info(trace, exp, n, start_ns):
    ms = start_ns // 1_000_000
    return json.dumps({"trace": {"trace_info": {
        "trace_id": "tr-" + trace.hex(), "trace_location": {"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": exp}},
        "request_time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + ".%03dZ" % (ms % 1000),
        "execution_duration": "0.%03ds" % (n + 10), "state": "OK",
        "trace_metadata": {"mlflow.source.type": "LOCAL", "mlflow.user": "bench", "mlflow.trace_schema.version": "3",
                           "mlflow.trace.sizeStats": json.dumps({"total_size_bytes": 900 * n, "num_spans": n})},
        "tags": {"mlflow.traceName": "agent"}, "request_preview": "q", "response_preview": "a"}}}).encode()


def clients(url, jobs, threads):
    """Runs `jobs` (lists of (path, body, headers)) over `threads` kept-alive connections; seconds taken."""
    host = urllib.parse.urlparse(url).netloc
    queue = list(jobs)
    lock = threading.Lock()
    errors = []

    def work():
        conn = http.client.HTTPConnection(host, timeout=600)
        while True:
            with lock:
                if not queue:
                    return
                job = queue.pop()
            for path, body, headers in job:
                conn.request("POST", path, body=body, headers=headers)
                r = conn.getresponse()
                data = r.read()
                if r.status != 200:
                    errors.append((r.status, data[:200]))

    t0 = time.perf_counter()
    ts = [threading.Thread(target=work) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if errors:
        raise RuntimeError(f"{len(errors)} failed: {errors[:3]}")
    return time.perf_counter() - t0


def disk_bytes(target, work, backend):
    if backend.startswith("postgres"):
        import psycopg2
        u = urllib.parse.urlparse(backend.replace("postgresql+psycopg2", "postgresql"))
        with psycopg2.connect(host=u.hostname, port=u.port, user=u.username, password=u.password, dbname=u.path[1:]) as c, c.cursor() as cur:
            cur.execute("SELECT pg_database_size(current_database())")
            return cur.fetchone()[0]
    if backend.startswith("sqlite:///"):
        path = backend[len("sqlite:///"):]
        return sum(os.path.getsize(path + x) for x in ("", "-wal") if os.path.exists(path + x))
    total = 0
    for root, _, files in os.walk(work):
        for f in files:
            if f.endswith((".db", ".sqlite", ".sqlite-wal", ".db-wal")):
                total += os.path.getsize(os.path.join(root, f))
    return total


def run(target, backend, args):
    work = tempfile.mkdtemp(prefix="bench-otlp-")
    openinference = args.workload == "openinference"
    make = openinference_spans_of if openinference else spans_of
    proc, url = start_server(target, backend, work, ["--model-prices", CATALOG] if openinference and target != "mlflow" else [])
    try:
        before = disk_bytes(target, work, backend)
        exp = call(url, "POST", "/api/2.0/mlflow/experiments/create", {"name": "otlp-bench"})["experiment_id"]
        headers = {**PB, "x-mlflow-experiment-id": exp}
        n = args.traces if target != "mlflow" else args.mlflow_traces
        base = 1_700_000_000_000_000_000
        # Per span, then the info (MLflow's client, synchronous logging).
        jobs, traces = [], []
        for t in range(n):
            trace, spans = make(t, args.spans, base + t * 10_000_000_000)
            traces.append("tr-" + trace.hex())
            jobs.append([("/v1/traces", export([s]), headers) for s in reversed(spans)]  # an OpenTelemetry exporter sends no info
                        + ([] if openinference else [("/api/3.0/mlflow/traces", info(trace, exp, args.spans, base + t * 10_000_000_000),
                                                      {"Content-Type": "application/json"})]))
        per_span = clients(url, jobs, args.clients)
        # Batched exports of 512 spans (an OpenTelemetry BatchSpanProcessor).
        batch_spans = []
        for t in range(n, 2 * n):
            batch_spans += make(t, args.spans, base + t * 10_000_000_000)[1]
        batches = [[("/v1/traces", export(batch_spans[i:i + 512]), headers)] for i in range(0, len(batch_spans), 512)]
        batched = clients(url, batches, args.clients)
        # Reads.
        rnd = random.Random(7)
        get = []
        for _ in range(args.reads):
            tid = rnd.choice(traces)
            t0 = time.perf_counter()
            r = call(url, "GET", "/api/3.0/mlflow/traces/get?trace_id=" + tid)
            get.append((time.perf_counter() - t0) * 1000)
            assert len(r["trace"]["spans"]) == args.spans, (target, len(r["trace"]["spans"]))
            if openinference:  # translated and priced: the trace has its spans' sums
                assert {"mlflow.trace.tokenUsage", "mlflow.trace.cost"} <= set(r["trace"]["trace_info"]["trace_metadata"]), (target, r)
        search = []
        for _ in range(max(3, args.reads // 10)):
            t0 = time.perf_counter()
            page = call(url, "POST", "/api/3.0/mlflow/traces/search",
                        {"locations": [{"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": exp}}], "max_results": 100})
            ids = [t["trace_id"] for t in page["traces"]]
            got = 0
            for i in range(0, len(ids), 10):
                got += len(call(url, "GET", "/api/3.0/mlflow/traces/batchGet?" + urllib.parse.urlencode([("trace_ids", x) for x in ids[i:i + 10]]))
                           .get("traces", []))
            search.append((time.perf_counter() - t0) * 1000)
            assert got == len(ids) == 100, (target, got, len(ids))
        rss = server_rss(proc)
        proc.terminate()  # stopped first: a SQLite database is measured checkpointed, as it stays on disk
        proc.wait(timeout=60)
        after = disk_bytes(target, work, backend)
        spans_total = 2 * n * args.spans
        return {"target": target, "backend": backend.split("@")[-1] if backend != "-" else "sqlite",
                "workload": args.workload, "traces_per_s_per_span_export": round(n / per_span, 1), "spans_per_s_per_span_export": round(n * args.spans / per_span, 1),
                "spans_per_s_batched": round(n * args.spans / batched, 1),
                "bytes_per_span": round((after - before) / spans_total, 1),
                "traces_get_ms_p50": round(statistics.median(get), 2), "search_and_batch_get_100_ms_p50": round(statistics.median(search), 1),
                "rss_mb": round(rss[0], 1), "peak_rss_mb": round(rss[1], 1)}
    finally:
        stop_server(proc, work)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--tally", required=True)
    p.add_argument("--postgres", help="a PostgreSQL server URI without database (postgresql://user:pw@host:port): one database per target")
    p.add_argument("--traces", type=int, default=1000)
    p.add_argument("--mlflow-traces", type=int, default=200)
    p.add_argument("--spans", type=int, default=10)
    p.add_argument("--clients", type=int, default=4)
    p.add_argument("--reads", type=int, default=50)
    p.add_argument("--tally-only", action="store_true", help="no mlflow server (a before/after comparison of two Tally builds)")
    p.add_argument("--workload", choices=["mlflow", "openinference"], default="mlflow",
                   help="spans as MLflow's client sends them (with the trace's info), or as an OpenInference instrumentation does "
                        "(translated, priced: Tally with --model-prices on MLflow's bundled catalog)")
    args = p.parse_args()
    targets = [(args.tally, "-")] + ([] if args.tally_only else [("mlflow", None)])
    if args.postgres:
        import psycopg2
        u = urllib.parse.urlparse(args.postgres)
        c = psycopg2.connect(host=u.hostname, port=u.port, user=u.username, password=u.password, dbname="postgres")
        c.autocommit = True  # CREATE DATABASE runs outside a transaction
        for name in ("otlp_tally", "otlp_mlflow"):
            with c.cursor() as cur:
                cur.execute(f"DROP DATABASE IF EXISTS {name}")
                cur.execute(f"CREATE DATABASE {name}")
        c.close()
        targets += [(args.tally, args.postgres + "/otlp_tally"), ("mlflow", args.postgres.replace("postgresql://", "postgresql+psycopg2://") + "/otlp_mlflow")]
    for target, backend in targets:
        if backend is None:
            backend = "sqlite:///" + os.path.join(tempfile.mkdtemp(prefix="bench-otlp-mlflow-"), "m.db")
        print(json.dumps(run(target, backend, args)), flush=True)


if __name__ == "__main__":
    main()
