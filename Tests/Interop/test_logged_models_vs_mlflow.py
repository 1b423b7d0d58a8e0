"""Logged-model and registry answers field by field against a real `mlflow server` (3.17, SQLite, from the venv) started here: the
same raw requests to both, then the same JSON shape (keys, types, enum names, which fields are present) and the same
error codes and statuses. Ids, timestamps and generated names differ by nature and are compared by form only."""
import pytest
import requests

from conftest import MlflowServer


@pytest.fixture(scope="module")
def mlflow_url():
    m = MlflowServer()
    yield m.url
    m.stop()


def shape(v):
    """The JSON's shape: object keys with their values' shapes, list element shapes, scalar types."""
    if isinstance(v, dict):
        return {k: shape(x) for k, x in sorted(v.items())}
    if isinstance(v, list):
        return [shape(x) for x in v]
    return type(v).__name__


def recorder(url, out):
    """A call(name, method, path, **requests kwargs) against url's MLflow API that appends (name, status, body) to
    `out` and returns the body."""
    def call(name, method, path, **kw):
        r = requests.request(method, url + "/api/2.0/mlflow" + path, **kw)
        body = r.json() if r.headers.get("content-type", "").startswith("application/json") else r.text
        out.append((name, r.status_code, body))
        return body
    return call


def session(url):
    """One scripted sequence of raw requests; returns (name, status, body) per step."""
    out = []
    call = recorder(url, out)

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


def registry_session(url):
    """The registry's raw requests, as the client sends them; returns (name, status, body) per step."""
    out = []
    call = recorder(url, out)

    exp = call("experiment", "POST", "/experiments/create", json={"name": "registry-oracle"})["experiment_id"]
    run = call("run", "POST", "/runs/create", json={"experiment_id": exp})["run"]["info"]["run_id"]
    mid = call("logged model", "POST", "/logged-models", json={"experiment_id": exp, "name": "m", "source_run_id": run})["model"]["info"]["model_id"]
    call("create", "POST", "/registered-models/create", json={"name": "reg", "tags": [{"key": "team", "value": "ml"}], "description": "d"})
    call("create bare", "POST", "/registered-models/create", json={"name": "reg-bare"})
    call("duplicate", "POST", "/registered-models/create", json={"name": "reg"})
    for _ in range(2):
        call("version", "POST", "/model-versions/create", json={"name": "reg", "source": f"models:/{mid}", "model_id": mid})
    call("version with run", "POST", "/model-versions/create", json={"name": "reg", "source": f"models:/{mid}", "model_id": mid, "run_id": run,
                                                                      "tags": [{"key": "k", "value": "v"}], "description": "three"})
    call("alias", "POST", "/registered-models/alias", json={"name": "reg", "alias": "champion", "version": "2"})
    call("get", "GET", "/registered-models/get", params={"name": "reg"})
    call("get version", "GET", "/model-versions/get", params={"name": "reg", "version": "3"})
    call("by alias", "GET", "/registered-models/alias", params={"name": "reg", "alias": "champion"})
    call("transition", "POST", "/model-versions/transition-stage", json={"name": "reg", "version": "1", "stage": "staging",
                                                                         "archive_existing_versions": False})
    call("latest", "POST", "/registered-models/get-latest-versions", json={"name": "reg"})
    call("download", "GET", "/model-versions/get-download-uri", params={"name": "reg", "version": "1"})
    call("update", "PATCH", "/registered-models/update", json={"name": "reg"})
    call("update version", "PATCH", "/model-versions/update", json={"name": "reg", "version": "3", "description": "new"})
    call("search", "GET", "/registered-models/search", params={"filter": "name LIKE 'reg%' AND tag.`mlflow.prompt.is_prompt` != 'true'",
                                                               "max_results": 1})
    call("search versions", "GET", "/model-versions/search", params={"filter": "name = 'reg'", "max_results": 2})
    call("set tag", "POST", "/registered-models/set-tag", json={"name": "reg", "key": "owner", "value": "me"})
    call("delete missing tag", "DELETE", "/registered-models/delete-tag", json={"name": "reg", "key": "nope"})
    call("version tag", "POST", "/model-versions/set-tag", json={"name": "reg", "version": "1", "key": "a", "value": "b"})
    call("rename", "POST", "/registered-models/rename", json={"name": "reg", "new_name": "reg2"})
    call("rename taken", "POST", "/registered-models/rename", json={"name": "reg2", "new_name": "reg-bare"})
    call("delete version", "DELETE", "/model-versions/delete", json={"name": "reg2", "version": "3"})
    call("after delete", "POST", "/model-versions/create", json={"name": "reg2", "source": f"models:/{mid}", "model_id": mid})
    call("unknown alias", "GET", "/registered-models/alias", params={"name": "reg2", "alias": "nope"})
    call("reserved alias", "POST", "/registered-models/alias", json={"name": "reg2", "alias": "v1", "version": "1"})
    call("number version", "POST", "/registered-models/alias", json={"name": "reg2", "alias": "x", "version": 1})
    call("bad version", "GET", "/model-versions/get", params={"name": "reg2", "version": "abc"})
    call("unknown version", "GET", "/model-versions/get", params={"name": "reg2", "version": "99"})
    call("bad source", "POST", "/model-versions/create", json={"name": "reg2", "source": "/tmp/x"})
    call("bad stage", "POST", "/model-versions/transition-stage", json={"name": "reg2", "version": "1", "stage": "Bogus",
                                                                        "archive_existing_versions": False})
    call("bad comparator", "GET", "/registered-models/search", params={"filter": "name > 'a'"})
    call("delete", "DELETE", "/registered-models/delete", json={"name": "reg2"})
    call("get deleted", "GET", "/registered-models/get", params={"name": "reg2"})
    return out


def test_registry_answers_match_mlflow(server, mlflow_url):
    ours, theirs = registry_session(server.url), registry_session(mlflow_url)
    assert [s[0] for s in ours] == [s[0] for s in theirs] and len(ours) == 37
    for (name, status, body), (_, want_status, want) in zip(ours, theirs):
        assert status == want_status, (name, body, want)
        assert normalise(name, body) == normalise(name, want), (name, body, want)
        # Values that do not depend on ids or clocks agree too.
        for key in ["registered_model", "model_version"]:
            if isinstance(want, dict) and key in want:
                for f in ["name", "version", "current_stage", "description", "status", "aliases", "tags", "run_link"]:
                    assert body[key].get(f) == want[key].get(f), (name, f, body, want)


def source_session(url):
    """`model-versions/create` with each kind of source MLflow's server checks; returns (name, status, body) per step."""
    out = []
    call = recorder(url, out)
    exp = call("experiment", "POST", "/experiments/create", json={"name": "sources"})["experiment_id"]
    run = call("run", "POST", "/runs/create", json={"experiment_id": exp})["run"]["info"]
    rid, art = run["run_id"], run["artifact_uri"]
    model = call("logged model", "POST", "/logged-models", json={"experiment_id": exp, "source_run_id": rid})["model"]["info"]
    mid, mart = model["model_id"], model["artifact_uri"]
    call("registered", "POST", "/registered-models/create", json={"name": "src"})
    create = lambda name, **fields: call(name, "POST", "/model-versions/create", json={"name": "src", **fields})
    create("object store", source="s3://bucket/models/m")
    create("run's files", source=art + "/model", run_id=rid)
    create("runs uri", source=f"runs:/{rid}/model", run_id=rid)
    create("model uri", source=f"models:/{mid}", model_id=mid)
    create("model's files", source=mart, model_id=mid)
    call("alias", "POST", "/registered-models/alias", json={"name": "src", "alias": "champion", "version": "2"})
    create("another version", source="models:/src/1")
    create("an alias", source="models:/src@champion")
    create("latest", source="models:/src/latest")
    create("prompt", source="dummy-source", tags=[{"key": "mlflow.prompt.is_prompt", "value": "true"}])
    # Refused.
    create("relative object path", source="s3://bucket/a/../b")
    create("encoded relative path", source="s3://bucket/a/%252e%252e/b")
    create("relative path with a model", source="../../etc/passwd", model_id=mid)
    create("local file with a model", source="file:///etc", model_id=mid)
    create("local path alone", source="/tmp/x")
    create("runs uri without run_id", source=f"runs:/{rid}/model")
    create("runs uri with a model", source=f"runs:/{rid}/model", model_id=mid)
    create("model uri without model_id", source=f"models:/{mid}")
    create("run's files without run_id", source=art + "/model")
    create("run's files with a model", source=art + "/model", model_id=mid)
    create("another version, other run", source="models:/src/1", run_id="other")
    create("registry on a host", source="models://host/src/1")
    create("prompt with a path", source="s3://bucket/p", tags=[{"key": "mlflow.prompt.is_prompt", "value": "true"}])
    create("bucket alone", source="s3://bucket")
    create("dot segment", source="s3://b/a/./b")
    create("host-addressed", source="http://evil.example/x")
    create("fragment in a models uri", source="models:/src/1#x")
    create("unknown model", source="s3://bucket/m", model_id="m-00000000000000000000000000000000")
    create("unknown version", source="models:/src/99")
    return out


def test_version_sources_match_mlflow(server, mlflow_url):
    ours, theirs = source_session(server.url), source_session(mlflow_url)
    assert [s[0] for s in ours] == [s[0] for s in theirs] and len(ours) == 33
    assert sum(1 for _, st, _ in theirs if st >= 400) == 19  # the sequence ran, refusals included
    for (name, status, body), (_, want_status, want) in zip(ours, theirs):
        assert status == want_status, (name, body, want)
        if status >= 400:
            assert body["error_code"] == want["error_code"], (name, body, want)
        elif "model_version" in want:
            got_v, want_v = body["model_version"], want["model_version"]
            assert got_v["version"] == want_v["version"], (name, body, want)
            if not got_v["source"].startswith(("mlflow-artifacts:", "runs:", "models:/m-")):
                assert got_v["source"] == want_v["source"], (name, body, want)  # ids differ; these do not hold any
    # The messages too, where they name no id.
    same = ["relative object path", "encoded relative path", "local path alone", "registry on a host", "prompt with a path",
            "another version, other run", "unknown version", "bucket alone", "dot segment", "host-addressed", "fragment in a models uri"]
    got, exp = {n: b for n, _, b in ours}, {n: b for n, _, b in theirs}
    for name in same:
        assert got[name]["message"] == exp[name]["message"], (name, got[name], exp[name])


def model_history_session(url):
    """MLflow 2's `runs/log-model` (the real client's `_record_logged_model`, then raw requests): the run tag
    `mlflow.log-model.history` and the errors."""
    import json
    from mlflow import MlflowClient
    from mlflow.models import Model
    out = []
    call = recorder(url, out)
    c = MlflowClient(url)
    exp = c.create_experiment("history")
    run = c.create_run(exp).info.run_id
    flavors = {"python_function": {"loader_module": "mlflow.sklearn", "env": {"conda": "conda.yaml"}, "config": {"x": 1}},
               "sklearn": {"pickled_model": "model.pkl", "sklearn_version": "1.5.0"}}
    c._record_logged_model(run, Model(artifact_path="model", run_id=run, utc_time_created="2026-12-06 07:00:00.000001", flavors=flavors,
                                      model_uuid="0123456789abcdef0123456789abcdef", signature=None, metadata={"m": "é"}))
    model = {"artifact_path": "second", "run_id": run, "utc_time_created": "2026-12-06 07:00:01", "flavors": {"keras": {"config": 2, "v": [1.5, None]}},
             "extra": {"ignored": True}}
    call("second", "POST", "/runs/log-model", json={"run_id": run, "model_json": json.dumps(model)})
    call("null paths", "POST", "/runs/log-model", json={"run_id": run, "model_json": json.dumps(
        {"artifact_path": None, "run_id": None, "utc_time_created": "t", "flavors": None, "model_uuid": "u"})})
    history = call("history", "GET", "/runs/get", params={"run_id": run})["run"]["data"]["tags"]
    call("malformed", "POST", "/runs/log-model", json={"run_id": run, "model_json": "{not json"})
    call("missing fields", "POST", "/runs/log-model", json={"run_id": run, "model_json": json.dumps({"artifact_path": "a", "run_id": run})})
    call("no model_json", "POST", "/runs/log-model", json={"run_id": run})
    call("no run_id", "POST", "/runs/log-model", json={"model_json": json.dumps(model)})
    call("unknown run", "POST", "/runs/log-model", json={"run_id": "0" * 32, "model_json": json.dumps(model)})
    c.delete_run(run)
    call("deleted run", "POST", "/runs/log-model", json={"run_id": run, "model_json": json.dumps(model)})
    return out, next(t["value"] for t in history if t["key"] == "mlflow.log-model.history").replace(run, "<run>")


def test_model_history_matches_mlflow(server, mlflow_url):
    """The tag is the same text on both servers (json.dumps of MLflow's `get_tags_dict` entries, in order), and the
    same requests fail with the same codes."""
    (ours, our_tag), (theirs, their_tag) = model_history_session(server.url), model_history_session(mlflow_url)
    assert our_tag == their_tag, (our_tag, their_tag)
    for (name, status, body), (_, want_status, want) in zip(ours, theirs):
        assert status == want_status, (name, body, want)
        if status >= 400:
            assert body["error_code"] == want["error_code"], (name, body, want)
    assert [s for _, s, _ in ours] == [200, 200, 200, 400, 400, 400, 400, 404, 400]
