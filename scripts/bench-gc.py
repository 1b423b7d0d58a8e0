#!/usr/bin/env python3
"""`tally gc` against `mlflow gc`, side by side in one run. Each round fills a fresh `tally server` (the binary given)
and a fresh `mlflow server` (this venv's, SQLite, proxied artifacts) through their REST APIs with the same N runs: P
points of one metric each (batches of 1,000), 5 params, an artifact of A KB. It deletes every run, then runs each
side's gc over them:
- Tally's `tally gc` goes through the running server's admin socket;
- MLflow's `mlflow gc` works on its database, with `--tracking-uri` so that it reaches the proxied artifacts.

Prints each gc's wall time, and the same for a gc with nothing to purge, run just before (what starting the command
costs). Prints the bytes allocated on disk after the deletes and after the gc: metadata, metric points and artifacts.
MLflow keeps its points as rows of its database.

    scripts/bench-gc.py .build/release/tally --runs 50 --points 2000 --rounds 2
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

from benchutil import call, start_server, stop, stop_server


def allocated(*paths):
    """Bytes allocated on disk under `paths` (files, or directories walked), as `du` counts them."""
    total = 0
    for p in paths:
        if os.path.isfile(p):
            total += os.stat(p).st_blocks * 512
            continue
        for d, _, files in os.walk(p):
            for f in files:
                try:
                    total += os.stat(os.path.join(d, f)).st_blocks * 512
                except FileNotFoundError:
                    pass
    return total


def fill(url, runs, points, artifact_kb):
    """`runs` runs with `points` points, 5 params and one artifact each, in a new experiment; their ids."""
    exp = call(url, "POST", "/api/2.0/mlflow/experiments/create", {"name": "gc-bench"})["experiment_id"]
    blob = os.urandom(artifact_kb * 1024)
    ids = []
    for i in range(runs):
        r = call(url, "POST", "/api/2.0/mlflow/runs/create", {"experiment_id": exp, "start_time": 1})["run"]["info"]["run_id"]
        call(url, "POST", "/api/2.0/mlflow/runs/log-batch", {"run_id": r, "params": [{"key": f"p{k}", "value": str(k)} for k in range(5)]})
        for start in range(0, points, 1000):
            call(url, "POST", "/api/2.0/mlflow/runs/log-batch", {"run_id": r, "metrics": [
                {"key": "loss", "value": 1 / (k + 1), "timestamp": 1_700_000_000_000 + k, "step": k} for k in range(start, min(points, start + 1000))]})
        import urllib.request
        req = urllib.request.Request(f"{url}/api/2.0/mlflow-artifacts/artifacts/{exp}/{r}/artifacts/model.bin", data=blob, method="PUT")
        urllib.request.urlopen(req, timeout=120).read()
        ids.append(r)
    return ids


def timed(cmd, env=None, cwd=None):
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd)
    seconds = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(" ".join(cmd) + " failed: " + p.stderr[-2000:])
    return seconds, len(p.stdout.splitlines())


def mb(b):
    return "%.1f MB" % (b / 1e6)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("tally")
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--points", type=int, default=2000)
    ap.add_argument("--artifact-kb", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=2)
    a = ap.parse_args()
    tally = os.path.abspath(a.tally)
    for rnd in range(1, a.rounds + 1):
        for side in ["tally", "mlflow"]:
            work = tempfile.mkdtemp(prefix=f"bench-gc-{side}-")
            db = "sqlite:///" + os.path.join(work, "m.db")
            proc, url = start_server(tally if side == "tally" else "mlflow", "-" if side == "tally" else db, work)
            try:
                t0 = time.perf_counter()
                ids = fill(url, a.runs, a.points, a.artifact_kb)
                fill_s = time.perf_counter() - t0
                for r in ids:
                    call(url, "POST", "/api/2.0/mlflow/runs/delete", {"run_id": r})
                # Restarted, as runs deleted long ago are found: Tally's points sealed into segments (a stop seals every
                # head and trims its log), MLflow's rows where they are.
                stop(proc)
                proc, url = start_server(tally if side == "tally" else "mlflow", "-" if side == "tally" else db, work)
                if side == "tally":
                    data = os.path.join(work, "data")
                    parts = {"metadata": [os.path.join(data, f) for f in os.listdir(data) if f.startswith("metadata.sqlite")],
                             "points (segments)": [os.path.join(data, "metrics", "runs")], "points (log)": [os.path.join(data, "metrics", "wal")],
                             "artifacts": [os.path.join(data, "artifacts")]}
                    cmd = [tally, "gc", "--data-dir", data]
                    env, cwd = None, None
                else:
                    parts = {"metadata+points": [os.path.join(work, f) for f in os.listdir(work) if f.startswith("m.db")],
                             "artifacts": [os.path.join(work, "artifacts")]}
                    cmd = [sys.executable, "-m", "mlflow", "gc", "--backend-store-uri", db, "--tracking-uri", url]
                    env, cwd = {**os.environ, "MLFLOW_TRACKING_URI": url, "MLFLOW_DISABLE_TELEMETRY": "true"}, work
                before = {k: allocated(*v) for k, v in parts.items()}
                empty_s, _ = timed(cmd + ["--older-than", "3650d"], env, cwd)  # nothing that old: the command's own cost
                gc_s, lines = timed(cmd, env, cwd)
                after = {k: allocated(*v) for k, v in parts.items()}
                assert lines == a.runs, (side, lines)
                print(f"round {rnd} {side:6s}: filled in {fill_s:.1f} s; gc of {a.runs} runs {gc_s:.2f} s (an empty gc {empty_s:.2f} s); "
                      + "; ".join(f"{k} {mb(before[k])} -> {mb(after[k])}" for k in parts), flush=True)
            finally:
                stop_server(proc, work)


if __name__ == "__main__":
    main()
