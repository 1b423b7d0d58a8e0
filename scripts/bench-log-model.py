#!/usr/bin/env python3
"""`log_model` and `load_model` of a ~1 MB scikit-learn model through the unmodified mlflow client, tally and a real
`mlflow server` side by side (both started here, SQLite, proxied artifacts): median seconds of ROUNDS rounds of
`mlflow.sklearn.log_model(...)` inside a run, and of `mlflow.sklearn.load_model("models:/<id>")`. Prints JSON.

Usage: .venv-interop/bin/python scripts/bench-log-model.py [--tally .build/release/tally] [--rounds 5]
"""
import argparse, json, os, shutil, statistics, tempfile, time

import numpy as np

from benchutil import start_mlflow, start_tally, stop


def rounds_against(url, model, X, rounds):
    import mlflow
    mlflow.set_tracking_uri(url)
    mlflow.set_experiment("log-model-bench")
    log, load = [], []
    for _ in range(rounds):
        with mlflow.start_run():
            t0 = time.perf_counter()
            info = mlflow.sklearn.log_model(model, name="model")
            log.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        back = mlflow.sklearn.load_model(f"models:/{info.model_id}")
        load.append(time.perf_counter() - t0)
        assert np.allclose(back.predict(X[:3]), model.predict(X[:3]))
    return {"log_model_s_p50": round(statistics.median(log), 3), "load_model_s_p50": round(statistics.median(load), 3)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tally", default=".build/release/tally")
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
    from sklearn.linear_model import Ridge
    rng = np.random.default_rng(1)
    X = rng.normal(size=(8, 131_072))  # 131,072 float64 coefficients: the pickled model is ~1 MB
    model = Ridge().fit(X, rng.normal(size=8))
    work = tempfile.mkdtemp(prefix="tally-bench-log-model-")
    result = {}
    try:
        proc, url = start_tally(a.tally, work)
        try:
            result["tally"] = rounds_against(url, model, X, a.rounds)
        finally:
            stop(proc)
        p, url = start_mlflow(os.path.join(work, "mlflow.db"), os.path.join(work, "mlart"))
        try:
            result["mlflow"] = rounds_against(url, model, X, a.rounds)
        finally:
            stop(p)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
