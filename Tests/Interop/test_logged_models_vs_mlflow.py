"""Logged-model answers field by field against a real `mlflow server` (3.17, SQLite, from the venv) started here: the
same raw requests to both, then the same JSON shape (keys, types, enum names, which fields are present) and the same
error codes and statuses. Ids, timestamps and generated names differ by nature and are compared by form only."""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import pytest
import requests


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def mlflow_url():
    work = tempfile.mkdtemp(prefix="tally-oracle-")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = dict(os.environ, MLFLOW_DISABLE_TELEMETRY="true")
    proc = subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--backend-store-uri", "sqlite:///" + os.path.join(work, "m.db"),
                             "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
                             "--artifacts-destination", os.path.join(work, "artifacts")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.time() + 120
    while True:
        try:
            urllib.request.urlopen(url + "/health", timeout=1).read()
            break
        except Exception:
            if proc.poll() is not None or time.time() > deadline:
                proc.kill()
                raise RuntimeError("mlflow server did not start")
            time.sleep(0.2)
    yield url
    proc.terminate()
    proc.wait(timeout=30)
    shutil.rmtree(work, ignore_errors=True)


def shape(v):
    """The JSON's shape: object keys with their values' shapes, list element shapes, scalar types."""
    if isinstance(v, dict):
        return {k: shape(x) for k, x in sorted(v.items())}
    if isinstance(v, list):
        return [shape(x) for x in v]
    return type(v).__name__


def session(url):
    """One scripted sequence of raw requests; returns (name, status, body) per step."""
    api = url + "/api/2.0/mlflow"
    out = []

    def call(name, method, path, **kw):
        r = requests.request(method, api + path, **kw)
        body = r.json() if r.headers.get("content-type", "").startswith("application/json") else r.text
        out.append((name, r.status_code, body))
        return body

    exp = call("experiment", "POST", "/experiments/create", json={"name": "oracle"})["experiment_id"]
    run = call("run", "POST", "/runs/create", json={"experiment_id": exp})["run"]["info"]["run_id"]
    created = call("create", "POST", "/logged-models", json={
        "experiment_id": exp, "name": "model", "source_run_id": run,
        "params": [{"key": "b", "value": "2"}, {"key": "a", "value": "1"}], "tags": [{"key": "z", "value": "1"}, {"key": "stage", "value": "dev"}]})
    mid = created["model"]["info"]["model_id"]
    call("bare create", "POST", "/logged-models", json={"experiment_id": exp})
    call("outputs", "POST", "/runs/outputs", json={"run_id": run, "models": [{"model_id": mid, "step": 0}]})
    call("log metric", "POST", "/runs/log-metric", json={"run_id": run, "key": "rmse", "value": 0.5, "timestamp": 1, "step": 0,
                                                         "model_id": mid, "dataset_name": "train", "dataset_digest": "abc"})
    call("finalize", "PATCH", f"/logged-models/{mid}", json={"model_id": mid, "status": "LOGGED_MODEL_READY"})
    call("get", "GET", f"/logged-models/{mid}")
    call("run with outputs", "GET", "/runs/get", params={"run_id": run})
    call("set tags", "PATCH", f"/logged-models/{mid}/tags", json={"tags": [{"key": "t", "value": "v"}]})
    call("params", "POST", f"/logged-models/{mid}/params", json={"model_id": mid, "params": [{"key": "c", "value": "3"}]})
    call("search", "POST", "/logged-models/search", json={"experiment_ids": [exp], "filter": "name = 'model'"})
    call("search metric", "POST", "/logged-models/search", json={"experiment_ids": [exp], "filter": "metrics.rmse < 1",
                                                                  "order_by": [{"field_name": "metrics.rmse", "ascending": True}]})
    call("search empty", "POST", "/logged-models/search", json={"experiment_ids": [exp], "filter": "name = 'none'"})
    call("search page", "POST", "/logged-models/search", json={"experiment_ids": [exp], "max_results": 1})
    call("delete tag", "DELETE", f"/logged-models/{mid}/tags/t")
    call("delete missing tag", "DELETE", f"/logged-models/{mid}/tags/nokey")
    call("search no experiments", "POST", "/logged-models/search", json={})
    call("search bad experiment", "POST", "/logged-models/search", json={"experiment_ids": ["abc"]})
    call("search bad entity", "POST", "/logged-models/search", json={"experiment_ids": [exp], "filter": "tag.stage = 'dev'"})
    call("create no experiment", "POST", "/logged-models", json={"name": "x"})
    call("create unknown experiment", "POST", "/logged-models", json={"experiment_id": "9999"})
    call("params without id", "POST", f"/logged-models/{mid}/params", json={"params": []})
    call("delete", "DELETE", f"/logged-models/{mid}", json={"model_id": mid})
    call("get deleted", "GET", f"/logged-models/{mid}")
    call("get deleted allowed", "GET", f"/logged-models/{mid}", params={"allow_deleted": "true"})
    call("get unknown", "GET", "/logged-models/m-00000000000000000000000000000000")
    return out


def normalise(step, body):
    """Fields that differ by nature (ids, times, generated names) reduced to their form."""
    if isinstance(body, dict) and "error_code" in body:
        return {"error_code": body["error_code"]}
    return shape(body)


def test_logged_model_answers_match_mlflow(server, mlflow_url):
    ours, theirs = session(server.url), session(mlflow_url)
    assert [s[0] for s in ours] == [s[0] for s in theirs]
    assert len(ours) == 27 and sum(1 for _, st, _ in theirs if st >= 400) == 9  # the sequence ran, errors included
    for (name, status, body), (_, want_status, want) in zip(ours, theirs):
        assert status == want_status, (name, body, want)
        a, b = normalise(name, body), normalise(name, want)
        if name == "run with outputs":  # compare the parts logged models add, not the rest of the run
            a, b = a["run"]["outputs"], b["run"]["outputs"]
        assert a == b, (name, body, want)
    # Values where the two agree exactly.
    got = {n: b for n, _, b in ours}
    exp = {n: b for n, _, b in theirs}
    for name in ["get", "get deleted allowed"]:
        gi, ei = got[name]["model"]["info"], exp[name]["model"]["info"]
        for k in ["name", "status", "model_type"]:
            assert gi[k] == ei[k], (name, k)
        assert [t["key"] for t in gi["tags"]] == [t["key"] for t in ei["tags"]]
        assert got[name]["model"]["data"]["params"] == exp[name]["model"]["data"]["params"]
        strip = lambda ms: [{k: v for k, v in m.items() if k not in ("timestamp", "model_id", "run_id")} for m in ms]
        assert strip(got[name]["model"]["data"]["metrics"]) == strip(exp[name]["model"]["data"]["metrics"])
