#!/usr/bin/env python3
"""Registry search at scale, tally and a real `mlflow server` side by side (SQLite, both started here on free ports):
MODELS registered models × VERSIONS versions each (every version from one logged model, created through the REST API
by 4 threads), then the median of ROUNDS filtered searches: a page of one model's versions
(`model-versions/search?filter=name='model-0042'`), a page of versions by number across models
(`version_number >= VERSIONS-5`, 100 per page) and a page of registered models by name prefix. Prints JSON.

Usage: .venv-interop/bin/python scripts/bench-registry.py [--tally .build/release/tally] [--models 100] [--versions 100]
"""
import argparse, concurrent.futures, json, os, shutil, statistics, tempfile, time

import requests

from benchutil import start_mlflow, start_tally, stop


def populate(url, models, versions):
    api = url + "/api/2.0/mlflow"
    s = requests.Session()
    exp = s.post(api + "/experiments/create", json={"name": "registry-bench"}).json()["experiment_id"]
    run = s.post(api + "/runs/create", json={"experiment_id": exp}).json()["run"]["info"]["run_id"]
    mid = s.post(api + "/logged-models", json={"experiment_id": exp, "name": "m", "source_run_id": run}).json()["model"]["info"]["model_id"]

    def one_model(i):
        t = requests.Session()
        name = f"model-{i:04d}"
        t.post(api + "/registered-models/create", json={"name": name, "tags": [{"key": "team", "value": f"t{i % 10}"}]}).raise_for_status()
        for _ in range(versions):
            t.post(api + "/model-versions/create", json={"name": name, "source": f"models:/{mid}", "model_id": mid}).raise_for_status()

    t0 = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        list(ex.map(one_model, range(models)))
    return time.perf_counter() - t0


def measure(url, models, versions, rounds):
    api = url + "/api/2.0/mlflow"
    s = requests.Session()
    asks = {
        "one_model_versions": ("/model-versions/search", {"filter": f"name = 'model-{models // 2:04d}'", "max_results": 100}),
        "versions_by_number": ("/model-versions/search", {"filter": f"version_number >= {max(1, versions - 5)}", "max_results": 100}),
        "models_by_prefix": ("/registered-models/search", {"filter": "name LIKE 'model-00%' AND tag.`mlflow.prompt.is_prompt` != 'true'",
                                                            "max_results": 100}),
    }
    out = {}
    for name, (path, params) in asks.items():
        times = []
        for _ in range(rounds):
            t0 = time.perf_counter()
            r = s.get(api + path, params=params)
            times.append(time.perf_counter() - t0)
            r.raise_for_status()
        out[name + "_ms_p50"] = round(statistics.median(times) * 1000, 2)
        out[name + "_items"] = len(r.json().get("model_versions", r.json().get("registered_models", [])))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tally", default=".build/release/tally")
    ap.add_argument("--models", type=int, default=100)
    ap.add_argument("--versions", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=21)
    ap.add_argument("--skip-mlflow", action="store_true")
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="tally-bench-registry-")
    result = {"models": a.models, "versions_per_model": a.versions}
    try:
        proc, url = start_tally(a.tally, work)
        try:
            result["tally_populate_s"] = round(populate(url, a.models, a.versions), 1)
            result["tally"] = measure(url, a.models, a.versions, a.rounds)
        finally:
            stop(proc)
        if not a.skip_mlflow:
            p, url = start_mlflow(os.path.join(work, "mlflow.db"), os.path.join(work, "mlart"))
            try:
                result["mlflow_populate_s"] = round(populate(url, a.models, a.versions), 1)
                result["mlflow"] = measure(url, a.models, a.versions, a.rounds)
            finally:
                stop(p)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
