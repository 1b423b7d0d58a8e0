#!/usr/bin/env python3
"""traces/search over many traces: a `tally server` (the binary given) filled with N traces of one experiment, each as
MLflow 3's client sends it (a dozen metadata entries, three tags, every fifth with a feedback), then each search run
7 times, then each `traces/calculate-filter-correlation` (the UI's NPMI of two filters) 7 times, then the issues: 20
issues made first, every third trace linked to one of them (an issue reference among its assessments), `issues/search`
with trace counts (the UI's issues tab) and the `issue.id` search of one issue's traces, then every fourth trace linked
to one of 10 prompt versions (`traces/link-prompts`) and the `prompt = 'name/version'` search of one version's, 7
times each: the median in ms, and the server's RSS (VmRSS, peak VmHWM) at the end.

    scripts/bench-traces.py .build/release/tally - --n 20000            # SQLite in a temp data directory
    scripts/bench-traces.py .build/release/tally postgresql://… --n 20000
    .venv-interop/bin/python scripts/bench-traces.py mlflow sqlite:////tmp/m.db --n 20000   # a real `mlflow server` from the venv
"""
import argparse
import concurrent.futures
import json
import os
import statistics
import tempfile
import time

from benchutil import call, server_rss, start_server, stop_server

SEARCHES = [
    ("newest 100 (no filter)", {}),
    ("tag equals", {"filter": "tags.team = 'a'"}),
    ("metadata equals", {"filter": "metadata.`mlflow.user` = 'user3'"}),
    ("status (attribute)", {"filter": "trace.status = 'ERROR'"}),
    ("order by tag", {"order_by": ["tags.priority DESC"]}),
    ("feedback >= 0.5", {"filter": "feedback.quality >= 0.5"}),
    ("page at offset 10,000", {"page_token": "eyJvZmZzZXQiOiAxMDAwMH0="}),
]

CORRELATIONS = [
    ("errors ~ team a", "trace.status = 'ERROR'", "tags.team = 'a'", None),
    ("errors ~ user3, in a window", "trace.status = 'ERROR'", "metadata.`mlflow.user` = 'user3'", "trace.timestamp_ms > 1700000100000"),
    ("feedback ~ priority (in memory)", "feedback.quality >= 0.5", "tags.priority LIKE '3%'", None),
]


def trace(i, exp, issues):
    ms = 1_700_000_000_000 + i * 37
    meta = {"mlflow.source.type": "LOCAL", "mlflow.source.name": "app.py", "mlflow.source.git.commit": "", "mlflow.source.git.branch": "",
            "mlflow.source.git.repoURL": "", "mlflow.user": "user%d" % (i % 10), "mlflow.trace_schema.version": "3",
            "mlflow.traceInputs": json.dumps({"question": "q%d" % i}), "mlflow.traceOutputs": json.dumps("a%d" % i),
            "mlflow.trace.sizeBytes": "1784", "mlflow.sourceRun": "run-%d" % (i % 50),
            "mlflow.trace.sizeStats": "{\"total_size_bytes\": 1784, \"num_spans\": 2}"}
    tags = {"mlflow.traceName": ["chat", "embed", "rerank"][i % 3], "team": "abcd"[i % 4], "priority": str(i % 7)}
    info = {"trace_id": "tr-%032x" % (i + 1), "trace_location": {"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": exp}},
            "request_time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + ".%03dZ" % (ms % 1000),
            "execution_duration": "0.%03ds" % (i % 1000), "state": "ERROR" if i % 11 == 0 else "OK", "trace_metadata": meta, "tags": tags,
            "request_preview": "q%d" % i, "response_preview": "a%d" % i}
    if i % 5 == 0:
        info["assessments"] = [{"assessment_name": "quality", "source": {"source_type": "HUMAN", "source_id": "x"},
                                "feedback": {"value": (i % 10) / 10}}]
    if i % 3 == 0:  # linked to an issue, as discover_issues links the traces it found failing
        info.setdefault("assessments", []).append({"assessment_name": issues[i % len(issues)], "issue": {"issue_name": "issue %d" % (i % len(issues))},
                                                   "source": {"source_type": "LLM_JUDGE", "source_id": "discovery"}, "rationale": "why %d" % i})
    return {"trace": {"trace_info": info}}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("tally")
    p.add_argument("backend", help="a PostgreSQL URI, or - for SQLite in the data directory")
    p.add_argument("--n", type=int, default=20000)
    a = p.parse_args()
    work = tempfile.mkdtemp(prefix="bench-traces-")
    proc, url = start_server(a.tally, a.backend, work)
    try:
        exp = call(url, "POST", "/api/2.0/mlflow/experiments/create", {"name": "bench-traces-%d" % os.getpid()})["experiment_id"]
        issues = [call(url, "POST", "/api/3.0/mlflow/issues", {"experiment_id": exp, "name": "issue %d" % k, "description": "d",
                                                               "severity": ["low", "medium", "high"][k % 3]})["issue"]["issue_id"] for k in range(20)]
        started = time.time()
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda i: call(url, "POST", "/api/3.0/mlflow/traces", trace(i, exp, issues)), range(a.n)))
        print(f"{a.n} traces stored in {time.time() - started:.1f} s ({a.n / (time.time() - started):.0f}/s)")
        linked = range(0, a.n, 4)  # as MLflow's client links a prompt loaded inside a trace
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda i: call(url, "POST", "/api/2.0/mlflow/traces/link-prompts",
                                         {"trace_id": "tr-%032x" % (i + 1), "prompt_versions": [{"name": "qa", "version": str(i % 10 + 1)}]}),
                          linked))
        location = [{"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": exp}}]
        for name, extra in SEARCHES:
            times, got = [], 0
            for _ in range(7):
                t0 = time.perf_counter()
                got = len(call(url, "POST", "/api/3.0/mlflow/traces/search", {"locations": location, "max_results": 100, **extra}).get("traces", []))
                times.append((time.perf_counter() - t0) * 1000)
            print(f"{name:28s} {statistics.median(times):9.1f} ms  ({got} traces)")
        for name, f1, f2, base in CORRELATIONS:
            times, got = [], {}
            body = {"experiment_ids": [exp], "filter_string1": f1, "filter_string2": f2} | ({"base_filter": base} if base else {})
            for _ in range(7):
                t0 = time.perf_counter()
                got = call(url, "POST", "/api/3.0/mlflow/traces/calculate-filter-correlation", body)
                times.append((time.perf_counter() - t0) * 1000)
            counts = "/".join(str(got.get(k, 0)) for k in ("joint_count", "filter1_count", "filter2_count", "total_count"))
            print(f"{'correlation: ' + name:44s} {statistics.median(times):9.1f} ms  (counts {counts}, npmi {got.get('npmi')})")
        for name, path, body, field in [
                ("issues with trace counts", "/api/3.0/mlflow/issues/search", {"experiment_id": exp, "include_trace_count": True}, "issues"),
                ("issues without", "/api/3.0/mlflow/issues/search", {"experiment_id": exp}, "issues"),
                ("traces of an issue (issue.id)", "/api/3.0/mlflow/traces/search",
                 {"locations": location, "max_results": 100, "filter": f"issue.id = '{issues[0]}'"}, "traces"),
                ("traces of a prompt version (prompt =)", "/api/3.0/mlflow/traces/search",
                 {"locations": location, "max_results": 100, "filter": "prompt = 'qa/1'"}, "traces")]:
            times, got = [], {}
            for _ in range(7):
                t0 = time.perf_counter()
                got = call(url, "POST", path, body)
                times.append((time.perf_counter() - t0) * 1000)
            counts = sum(i.get("trace_count", 0) for i in got.get("issues", [])) if field == "issues" else len(got.get("traces", []))
            print(f"{name:44s} {statistics.median(times):9.1f} ms  ({len(got.get(field, []))} {field}, {counts} traces)")
        now, peak = server_rss(proc)
        print(f"server RSS {now:.1f} MB, peak {peak:.1f} MB")
    finally:
        stop_server(proc, work)


if __name__ == "__main__":
    main()
