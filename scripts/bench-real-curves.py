#!/usr/bin/env python3
"""Bytes per point of a real training run written to a `tally server` through MLflow's log-batch (issue #19).

Generates the run with scripts/gen-training-curves.py (or reads --curves FILE), starts a `tally server` on a fresh
data directory, logs every point with the real MLflow client (`MlflowClient.log_batch`, 1,000 metrics per call,
the metrics of consecutive steps together, as a training loop's batched logger sends them), stops the server
gracefully and measures everything on disk: segments, log, metadata. Prints JSON; `--mlflow` also runs a real
`mlflow server` (SQLite) on the same points for the side-by-side figure (slow: MLflow stores a row per point).

Usage: .venv-interop/bin/python scripts/bench-real-curves.py [--tally .build/release/tally] [--steps N | --curves F]
"""
import argparse, json, os, shutil, subprocess, sys, tempfile, time

from mlflow.entities import Metric
from mlflow.tracking import MlflowClient

from benchutil import read_curves, start_mlflow, start_tally, stop


def disk_bytes(root):
    total = 0
    for d, _, files in os.walk(root):
        for f in files:
            total += os.path.getsize(os.path.join(d, f))
    return total


def breakdown(root):
    """Bytes by kind of file: segments, log, metadata, the rest."""
    kinds = {}
    for d, _, files in os.walk(root):
        for f in files:
            kind = "segments" if f.endswith(".seg") else "wal" if "/wal" in d else "metadata" if "metadata" in f else f
            kinds[kind] = kinds.get(kind, 0) + os.path.getsize(os.path.join(d, f))
    return kinds


def log_all(url, series):
    """Logs every point through log-batch; returns seconds."""
    client = MlflowClient(url)
    exp = client.create_experiment("real-curves-%d" % time.time_ns())
    run = client.create_run(exp).info.run_id
    # Rows of consecutive steps, all metrics of a step together, cut into calls of at most 1,000 metrics.
    rows = []
    for name, _width, steps, stamps, values in series:
        rows.extend(zip(steps.tolist(), [name] * len(steps), stamps.tolist(), values.tolist()))
    rows.sort(key=lambda r: r[0])
    t = time.perf_counter()
    for i in range(0, len(rows), 1000):
        client.log_batch(run, metrics=[Metric(k, v, ts, s) for s, k, ts, v in rows[i:i + 1000]])
    client.set_terminated(run)
    return time.perf_counter() - t


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser()
    ap.add_argument("--tally", default=os.path.join(here, "..", ".build", "release", "tally"))
    ap.add_argument("--steps", type=int, default=1_000_000, help="steps to generate when --curves is not given")
    ap.add_argument("--curves", help="a file written by gen-training-curves.py")
    ap.add_argument("--mlflow", action="store_true", help="also measure a real mlflow server")
    ap.add_argument("--keep", help="copy the tally server's data directory here before cleaning up (to inspect it)")
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="tally-curves-")
    try:
        path = a.curves
        if not path:
            path = os.path.join(work, "curves.bin")
            subprocess.run([sys.executable, os.path.join(here, "gen-training-curves.py"), "--steps", str(a.steps), "--out", path], check=True)
        series = read_curves(path)
        points = sum(len(s[1]) for s in series)
        out = {"points": points, "series": len(series)}
        proc, url = start_tally(a.tally, os.path.join(work, "tally"))
        try:
            seconds = log_all(url, series)
        finally:
            stop(proc)
        if a.keep:
            shutil.copytree(os.path.join(work, "tally", "data"), a.keep, dirs_exist_ok=True)
        size = disk_bytes(os.path.join(work, "tally", "data"))
        out["tally"] = {"log_batch_seconds": round(seconds, 1), "bytes_on_disk": size, "bytes_per_point": round(size / points, 3),
                        "by_kind": breakdown(os.path.join(work, "tally", "data"))}
        if a.mlflow:
            os.makedirs(os.path.join(work, "mlflow"))
            proc, url = start_mlflow(os.path.join(work, "mlflow", "mlflow.db"), os.path.join(work, "mlflow", "artifacts"))
            try:
                seconds = log_all(url, series)
            finally:
                stop(proc)
            size = disk_bytes(os.path.join(work, "mlflow"))
            out["mlflow"] = {"log_batch_seconds": round(seconds, 1), "bytes_on_disk": size, "bytes_per_point": round(size / points, 3)}
        print(json.dumps(out, indent=1))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
