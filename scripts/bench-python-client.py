#!/usr/bin/env python3
"""Throughput of the Python client (clients/python) against a `tally server` it starts: one process logging
10 metrics per step through Run.log, then flush. Prints JSON.

Usage: .venv-interop/bin/python scripts/bench-python-client.py [--tally .build/release/tally] [--steps N]
"""
import argparse, json, os, shutil, tempfile, time

import tally_client

from benchutil import start_tally, stop


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tally", default=os.path.join(os.path.dirname(__file__), "..", ".build", "release", "tally"))
    ap.add_argument("--steps", type=int, default=300_000)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="tally-pyclient-")
    proc, url = start_tally(a.tally, work)
    try:
        rates = []
        for _ in range(a.repeats):
            run = tally_client.Run(experiment="bench-client", tracking_uri=url)
            t = time.perf_counter()
            for step in range(a.steps):
                run.log(step, loss=0.5, acc=0.9, lr=0.001, grad_norm=1.5, m4=1.0, m5=2.0, m6=3.0, m7=4.0, m8=5.0, m9=6.0)
            run.flush()
            elapsed = time.perf_counter() - t
            run.close()
            rates.append(a.steps * 10 / elapsed)
        rates.sort()
        print(json.dumps({"steps": a.steps, "metrics_per_step": 10, "points_per_s_median": round(rates[len(rates) // 2]),
                          "points_per_s_all": [round(r) for r in rates]}, indent=2))
    finally:
        stop(proc)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
