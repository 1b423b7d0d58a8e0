#!/usr/bin/env python3
"""Writes a large MLflow tracking database for `tally import` benchmarks (issue #17): MLflow's own client creates
the schema (its alembic head), one experiment and RUNS runs; the metric rows (KEYS keys × STEPS steps per run, a
random walk in float64, 100 ms apart) and each key's latest value are inserted with sqlite3 directly, since MLflow's
client would take hours.

Usage: .venv-interop/bin/python scripts/gen-mlflow-db.py OUT.db [--runs 100] [--keys 10] [--steps 10000]
"""
import argparse, random, sqlite3

import mlflow
from mlflow import MlflowClient

ap = argparse.ArgumentParser()
ap.add_argument("out")
ap.add_argument("--runs", type=int, default=100)
ap.add_argument("--keys", type=int, default=10)
ap.add_argument("--steps", type=int, default=10_000)
args = ap.parse_args()
mlflow.set_tracking_uri("sqlite:///" + args.out)
c = MlflowClient()
e = c.create_experiment("big")
runs = [c.create_run(e, run_name=f"r{i}").info.run_id for i in range(args.runs)]
db = sqlite3.connect(args.out)
rng = random.Random(1)
for r in runs:
    rows = []
    for k in range(args.keys):
        v = 1.0
        for s in range(args.steps):
            v *= 1 + (rng.random() - 0.5) * 0.01
            rows.append((f"metric_{k}", v, 1_700_000_000_000 + s * 100, s, 0, r))
    db.executemany("INSERT INTO metrics (key, value, timestamp, step, is_nan, run_uuid) VALUES (?,?,?,?,?,?)", rows)
    # The latest value per key, as MLflow keeps it beside the history (its API lists a run's keys from here).
    db.executemany("INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid) VALUES (?,?,?,?,?,?)",
                   [row for row in rows if row[3] == args.steps - 1])
    db.commit()
print(db.execute("SELECT COUNT(*) FROM metrics").fetchone()[0], "points in", args.out)
