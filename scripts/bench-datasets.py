#!/usr/bin/env python3
"""Evaluation datasets at scale: a server (a `tally server` binary, or a real `mlflow server` from the venv) given one
dataset of N records, upserted in requests of B records as `merge_records` sends them, then merged again (the same
inputs with new expectations: every record an update), read back whole through pages of 1,000 as `to_df` reads
them, and searched. Prints the seconds of each step and the server's RSS (VmRSS, peak VmHWM) at the end.

    scripts/bench-datasets.py .build/release/tally - --n 20000                 # SQLite in a temp data directory
    scripts/bench-datasets.py .build/release/tally postgresql://… --n 20000
    .venv-interop/bin/python scripts/bench-datasets.py mlflow sqlite:////tmp/m.db --n 20000   # a real `mlflow server`
"""
import argparse
import json
import os
import statistics
import tempfile
import time
import urllib.request

from benchutil import call, server_rss, start_server, stop_server

DS = "/api/3.0/mlflow/datasets"


def record(i, round_):
    """A record as `merge_records` sends one: a question, an expectation, the caller's tag, a source."""
    return {"inputs": {"question": f"What is item {i}?", "context": "x" * 40, "k": i},
            "expectations": {"answer": f"item {i}", "round": round_}, "source": {"source_type": "HUMAN", "source_data": {}},
            "tags": {"mlflow.user": "bench"}}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("server", help="a tally binary, or `mlflow`")
    p.add_argument("backend", help="a PostgreSQL or sqlite:// URI, or - for Tally's SQLite in the data directory")
    p.add_argument("--n", type=int, default=20000)
    p.add_argument("--batch", type=int, default=500)
    a = p.parse_args()
    work = tempfile.mkdtemp(prefix="bench-datasets-")
    proc, url = start_server(a.server, a.backend, work)
    try:
        exp = call(url, "POST", "/api/2.0/mlflow/experiments/create", {"name": "bench-datasets-%d" % os.getpid()})["experiment_id"]
        d = call(url, "POST", DS + "/create", {"name": "bench", "experiment_ids": [exp], "tags": json.dumps({"mlflow.user": "bench"})})
        did = d["dataset"]["dataset_id"]
        for round_, label in [(1, "inserted"), (2, "merged")]:
            started = time.time()
            counts = [0, 0]
            for i in range(0, a.n, a.batch):
                got = call(url, "POST", f"{DS}/{did}/records",
                           {"records": json.dumps([record(j, round_) for j in range(i, min(a.n, i + a.batch))])})
                counts[0] += got.get("inserted_count", 0)
                counts[1] += got.get("updated_count", 0)
            took = time.time() - started
            print(f"{a.n} records {label} in requests of {a.batch}: {took:.2f} s ({a.n / took:.0f}/s; inserted {counts[0]}, updated {counts[1]})")
        times = []
        for _ in range(3):
            started, token, n = time.time(), None, 0
            while True:
                q = "?max_results=1000" + (f"&page_token={urllib.request.quote(token)}" if token else "")
                page = call(url, "GET", f"{DS}/{did}/records{q}")
                n += len(json.loads(page.get("records", "[]")))
                token = page.get("next_page_token")
                if not token:
                    break
            times.append(time.time() - started)
        print(f"{n} records read in pages of 1,000: {statistics.median(times):.2f} s (median of 3)")
        times = []
        for _ in range(7):
            t0 = time.perf_counter()
            call(url, "POST", DS + "/search", {"experiment_ids": [exp], "filter_string": "name = 'bench'", "max_results": 10})
            times.append((time.perf_counter() - t0) * 1000)
        print(f"search by name: {statistics.median(times):.1f} ms (median of 7)")
        now, peak = server_rss(proc)
        print(f"server RSS {now:.1f} MB, peak {peak:.1f} MB")
    finally:
        stop_server(proc, work)


if __name__ == "__main__":
    main()
