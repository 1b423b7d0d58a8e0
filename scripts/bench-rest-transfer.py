#!/usr/bin/env python3
"""Import from and export to a running MLflow server, side by side with MLflow's own client doing the same work
(issue #17): on a database written by scripts/gen-mlflow-db.py, served by `mlflow server` from this venv,

- read:  `tally import mlflow --from URL` vs the client reading every run's every history (`get_metric_history`);
- write: `tally export mlflow --to URL` (into a fresh server) vs the client writing the same points with `log_batch`
  in 1,000-metric batches (into another fresh server).

Usage: .venv-interop/bin/python scripts/bench-rest-transfer.py --tally .build/release/tally --db /tmp/rest1m/m.db
       [--workers N] [--read-only]
"""
import argparse, os, shutil, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "Interop"))
from conftest import MlflowServer  # noqa: E402
from mlflow import MlflowClient  # noqa: E402
from mlflow.entities import Metric  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--tally", required=True)
ap.add_argument("--db", required=True)
ap.add_argument("--workers", type=int, default=1, help="the source server's worker processes")
ap.add_argument("--read-only", action="store_true", help="skip the write half")
args = ap.parse_args()

src = MlflowServer(db=args.db, workers=args.workers)
work = tempfile.mkdtemp(prefix="tally-bench-rest-")
try:
    c = MlflowClient(src.url)
    runs = [r for e in c.search_experiments() for r in c.search_runs([e.experiment_id], max_results=50000)]
    t = time.time()
    histories = {}
    for r in runs:
        for key in r.data.metrics:
            histories[(r.info.run_id, key)] = c.get_metric_history(r.info.run_id, key)
    client_read = time.time() - t
    points = sum(len(h) for h in histories.values())
    t = time.time()
    subprocess.run([args.tally, "import", "mlflow", "--from", src.url, "--data-dir", os.path.join(work, "data")], check=True,
                   capture_output=True)
    tally_read = time.time() - t
    print(f"read {points} points: MLflow client {client_read:.1f} s ({points / client_read:,.0f}/s), "
          f"tally import --from URL {tally_read:.1f} s ({points / tally_read:,.0f}/s)")

    if args.read_only:
        sys.exit(0)
    dst = MlflowServer()
    try:
        t = time.time()
        subprocess.run([args.tally, "export", "mlflow", "--to", dst.url, "--data-dir", os.path.join(work, "data")], check=True,
                       capture_output=True)
        tally_write = time.time() - t
    finally:
        dst.stop()
    dst = MlflowServer()
    try:
        w = MlflowClient(dst.url)
        t = time.time()
        e = w.create_experiment("big")
        for r in runs:
            rid = w.create_run(e, run_name=r.info.run_name, start_time=r.info.start_time).info.run_id
            batch = []
            for key in r.data.metrics:
                for m in histories[(r.info.run_id, key)]:
                    batch.append(Metric(m.key, m.value, m.timestamp, m.step))
                    if len(batch) == 1000:
                        w.log_batch(rid, metrics=batch)
                        batch = []
            if batch:
                w.log_batch(rid, metrics=batch)
        client_write = time.time() - t
    finally:
        dst.stop()
    print(f"write {points} points: MLflow client log_batch {client_write:.1f} s ({points / client_write:,.0f}/s), "
          f"tally export {tally_write:.1f} s ({points / tally_write:,.0f}/s)")
finally:
    src.stop()
    shutil.rmtree(work, ignore_errors=True)
