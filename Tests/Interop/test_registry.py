"""The Model Registry through the unmodified client: register_model, log_model(registered_model_name=), every
MlflowClient registry call (models, versions, tags, aliases, stages, latest versions, download URI, search with
filters and paging), load_model by name/version, alias and latest, and MLflow's errors."""
import json
import os
import tempfile

import numpy as np
import pytest
import requests
import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from sklearn.linear_model import Ridge

import mlflow_oracle


def fitted(alpha):
    rng = np.random.default_rng(7)
    X = rng.normal(size=(30, 2))
    return X, Ridge(alpha=alpha).fit(X, X @ np.array([2.0, -1.0]))


def test_register_and_load_by_version_alias_and_latest(server):
    mlflow.set_experiment("registry")
    X, m1 = fitted(0.1)
    _, m2 = fitted(5.0)
    with mlflow.start_run() as run:
        mlflow.sklearn.log_model(m1, name="model")
    v1 = mlflow.register_model(f"runs:/{run.info.run_id}/model", "reg-a")
    assert v1.version == "1" and v1.run_id == run.info.run_id and v1.status == "READY"
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(m2, name="model", registered_model_name="reg-a")
    c = MlflowClient()
    v2 = c.get_model_version("reg-a", "2")
    assert v2.source == f"models:/{info.model_id}" and v2.current_stage == "None"
    c.set_registered_model_alias("reg-a", "champion", "1")
    for uri, model in [("models:/reg-a/1", m1), ("models:/reg-a/2", m2), ("models:/reg-a@champion", m1), ("models:/reg-a/latest", m2)]:
        np.testing.assert_allclose(mlflow.pyfunc.load_model(uri).predict(X), model.predict(X), err_msg=uri)
    assert c.get_model_version_by_alias("reg-a", "champion").version == "1"
    assert c.get_model_version_download_uri("reg-a", "2").endswith(f"/models/{info.model_id}/artifacts")
    m = c.get_registered_model("reg-a")
    assert m.aliases == {"champion": "1"} and [v.version for v in m.latest_versions] == ["2"]
    # mlflow's CLI where it reaches the server: download a version's files, predict with it (`python -m mlflow`,
    # forked from the oracles' fork server).
    with tempfile.TemporaryDirectory() as d:
        r = mlflow_oracle.run(["artifacts", "download", "--artifact-uri", "models:/reg-a/2", "--dst-path", d], os.environ, timeout=300)
        assert r.returncode == 0, r.stderr
        assert "MLmodel" in os.listdir(d)
        with open(os.path.join(d, "input.json"), "w") as f:
            json.dump({"inputs": X[:2].tolist()}, f)
        r = mlflow_oracle.run(["models", "predict", "-m", "models:/reg-a@champion", "-i", os.path.join(d, "input.json"),
                               "-t", "json", "--env-manager", "local"], os.environ, timeout=300)
        assert r.returncode == 0, r.stderr
        out = r.stdout
        np.testing.assert_allclose(json.loads(out.strip().splitlines()[-1])["predictions"], m1.predict(X[:2]))


def test_models_versions_tags_stages_and_search(server):
    c = MlflowClient()
    exp = c.create_experiment("registry-calls")
    run = c.create_run(exp)
    lm = c.create_logged_model(exp, name="m", source_run_id=run.info.run_id)
    c.create_registered_model("reg-b", tags={"team": "ml"}, description="first")
    for _ in range(3):
        c.create_model_version("reg-b", f"models:/{lm.model_id}", model_id=lm.model_id)
    assert [v.version for v in c.search_model_versions("name = 'reg-b'")] == ["3", "2", "1"]
    assert [v.version for v in c.search_model_versions("name = 'reg-b' AND version_number >= 2", order_by=["version_number ASC"])] == ["2", "3"]
    first = c.search_model_versions("name = 'reg-b'", max_results=2, order_by=["version_number ASC"])
    assert [v.version for v in first] == ["1", "2"] and first.token
    assert [v.version for v in c.search_model_versions("name = 'reg-b'", max_results=2, order_by=["version_number ASC"], page_token=first.token)] == ["3"]
    assert c.get_model_version("reg-b", "1").run_id == run.info.run_id  # taken from the logged model
    # Stages: archive the existing Production version when moving another one there.
    c.transition_model_version_stage("reg-b", "1", "production")
    v2 = c.transition_model_version_stage("reg-b", "2", "Production", archive_existing_versions=True)
    assert v2.current_stage == "Production" and c.get_model_version("reg-b", "1").current_stage == "Archived"
    assert sorted((v.current_stage, v.version) for v in c.get_latest_versions("reg-b")) == [("Archived", "1"), ("None", "3"), ("Production", "2")]
    assert [v.version for v in c.get_latest_versions("reg-b", stages=["Production"])] == ["2"]
    # Tags, descriptions, rename, delete; a deleted version's number is not given again.
    c.set_model_version_tag("reg-b", "3", "k", "v")
    c.delete_model_version_tag("reg-b", "3", "k")
    c.update_model_version("reg-b", "3", description="three")
    assert c.get_model_version("reg-b", "3").description == "three" and c.get_model_version("reg-b", "3").tags == {}
    c.set_registered_model_tag("reg-b", "owner", "me")
    c.delete_registered_model_tag("reg-b", "team")
    c.delete_registered_model_tag("reg-b", "missing")  # not an error
    c.update_registered_model("reg-b", description="second")
    c.set_registered_model_alias("reg-b", "best", "3")
    c.delete_model_version("reg-b", "3")
    assert c.create_model_version("reg-b", f"models:/{lm.model_id}", model_id=lm.model_id).version == "4"
    copy = c.copy_model_version("models:/reg-b/2", "reg-copy")
    assert copy.version == "1" and copy.source == "models:/reg-b/2" and copy.run_id == run.info.run_id
    assert c.get_model_version_download_uri("reg-copy", "1") == c.get_model_version_download_uri("reg-b", "2")
    c.rename_registered_model("reg-b", "reg-c")
    m = c.get_registered_model("reg-c")
    assert m.tags == {"owner": "me"} and m.description == "second" and m.aliases == {}
    assert [v.version for v in c.search_model_versions("name = 'reg-c'")] == ["4", "2", "1"]
    # Search registered models: the client's prompt clause does not hide untagged models; paging.
    for n in ["p-1", "p-2", "p-3"]:
        c.create_registered_model(n)
    assert [r.name for r in c.search_registered_models(filter_string="name LIKE 'p-%'")] == ["p-1", "p-2", "p-3"]
    page = c.search_registered_models(filter_string="name LIKE 'p-%'", max_results=2)
    assert [r.name for r in page] == ["p-1", "p-2"] and page.token
    assert [r.name for r in c.search_registered_models(filter_string="name LIKE 'p-%'", max_results=2, page_token=page.token)] == ["p-3"]
    assert [r.name for r in c.search_registered_models(filter_string="tags.owner = 'me'")] == ["reg-c"]
    assert [r.name for r in c.search_registered_models(filter_string="name ILIKE 'P-%'", order_by=["name DESC"])] == ["p-3", "p-2", "p-1"]
    c.delete_registered_model("reg-c")
    with pytest.raises(MlflowException, match="Registered Model with name=reg-c not found"):
        c.get_registered_model("reg-c")


def test_registry_errors_are_mlflows(server):
    c = MlflowClient()
    c.create_registered_model("err-a")
    api = server.url + "/api/2.0/mlflow"
    cases = [
        ("POST", "/registered-models/create", {"name": "err-a"}, 400, "RESOURCE_ALREADY_EXISTS", "Registered Model (name=err-a) already exists."),
        ("POST", "/registered-models/create", {"name": "a/b"}, 400, "INVALID_PARAMETER_VALUE", "Names cannot contain '/' or ':'"),
        ("POST", "/registered-models/create", {}, 400, "INVALID_PARAMETER_VALUE", "Missing value for required parameter 'name'"),
        ("GET", "/registered-models/get?name=nope", None, 404, "RESOURCE_DOES_NOT_EXIST", "Registered Model with name=nope not found"),
        ("GET", "/model-versions/get?name=err-a&version=99", None, 404, "RESOURCE_DOES_NOT_EXIST", "Model Version (name=err-a, version=99) not found"),
        ("GET", "/model-versions/get?name=err-a&version=abc", None, 400, "INVALID_PARAMETER_VALUE", "Parameter 'version' must be an integer, got 'abc'."),
        ("POST", "/model-versions/create", {"name": "err-a", "source": "/tmp/x"}, 400, "INVALID_PARAMETER_VALUE", "To use a local path as a model version source"),
        ("POST", "/model-versions/create", {"name": "err-a", "source": "models:/m-0"}, 400, "INVALID_PARAMETER_VALUE", "The model_id request parameter"),
        ("POST", "/model-versions/create", {"name": "err-a"}, 400, "INVALID_PARAMETER_VALUE", "Missing value for required parameter 'source'"),
        ("POST", "/registered-models/alias", {"name": "err-a", "alias": "v1", "version": "1"}, 400, "INVALID_PARAMETER_VALUE", "Version alias name 'v1' is reserved."),
        ("POST", "/registered-models/alias", {"name": "err-a", "alias": "Latest", "version": "1"}, 400, "INVALID_PARAMETER_VALUE", "'latest' alias name"),
        ("POST", "/registered-models/alias", {"name": "err-a", "alias": "ok", "version": 1}, 400, "INVALID_PARAMETER_VALUE", "Invalid value 1 for parameter 'version'"),
        ("POST", "/registered-models/alias", {"name": "err-a", "alias": "ok", "version": "9"}, 404, "RESOURCE_DOES_NOT_EXIST", "Model Version (name=err-a, version=9) not found"),
        ("GET", "/registered-models/alias?name=err-a&alias=nope", None, 400, "INVALID_PARAMETER_VALUE", "Registered model alias nope not found."),
        ("GET", "/registered-models/search?filter=name+%3E+'a'", None, 400, "INVALID_PARAMETER_VALUE", "Invalid comparator for attribute: >"),
        ("GET", "/registered-models/search?filter=attributes.name+%3D+'a'", None, 400, "INVALID_PARAMETER_VALUE", "Invalid entity type 'attributes'"),
        ("GET", "/registered-models/search?order_by=creation_timestamp", None, 400, "INVALID_PARAMETER_VALUE", "Invalid order by key 'creation_timestamp'"),
        ("GET", "/registered-models/search?max_results=1001", None, 400, "INVALID_PARAMETER_VALUE", "max_results"),
        ("GET", "/model-versions/search?filter=current_stage+%3D+'None'", None, 400, "INVALID_PARAMETER_VALUE", "Invalid attribute key 'current_stage'"),
        ("GET", "/model-versions/search?max_results=0", None, 400, "INVALID_PARAMETER_VALUE", "It must be a positive integer, but got 0"),
        ("POST", "/model-versions/transition-stage", {"name": "err-a", "version": "1", "stage": "Bogus"}, 404, "RESOURCE_DOES_NOT_EXIST", "not found"),
    ]
    for method, path, body, status, code, fragment in cases:
        r = requests.request(method, api + path, json=body)
        assert r.status_code == status and r.json()["error_code"] == code and fragment in r.json()["message"], (path, body, r.text)
    # max_results=0 is an empty page whose token asks again from the start, as MLflow answers it.
    empty = requests.get(api + "/registered-models/search", params={"max_results": 0}).json()
    assert "registered_models" not in empty and empty["next_page_token"], empty
    again = requests.get(api + "/registered-models/search", params={"max_results": 1, "page_token": empty["next_page_token"]}).json()
    assert again["registered_models"] == requests.get(api + "/registered-models/search", params={"max_results": 1}).json()["registered_models"]
    assert requests.get(api + "/registered-models/search", params={"max_results": -1}).status_code == 400
    assert requests.get(api + "/registered-models/search", params={"filter": "name = 'err-a' AND tag.`mlflow.prompt.is_prompt` != 'true'"}).json()[
        "registered_models"][0]["name"] == "err-a"
    with pytest.raises(MlflowException, match="already exists"):
        c.create_registered_model("err-a")


def test_compare_champion_and_challenger_by_their_registered_versions(server):
    """Lineage: a version leads to its source run's curves; compare takes `name@alias` and `name/N`."""
    c = MlflowClient()
    exp = c.create_experiment("lineage")
    runs = []
    for r in range(2):
        rid = c.create_run(exp).info.run_id
        for step in range(50):
            c.log_metric(rid, "loss", 1.0 / (step + 1 + r), step=step)
        lm = c.create_logged_model(exp, name="m", source_run_id=rid)
        runs.append((rid, lm.model_id))
    c.create_registered_model("lineage")
    for _, mid in runs:
        c.create_model_version("lineage", f"models:/{mid}", model_id=mid)
    c.set_registered_model_alias("lineage", "champion", "1")
    c.set_registered_model_alias("lineage", "challenger", "2")
    url = server.url + "/api/tally/v1/compare"
    b = requests.post(url, json={"models": ["lineage@champion", "models:/lineage/2"], "metric_keys": ["loss"], "buckets": 10}).json()
    assert [s["run_id"] for s in b["series"]] == [runs[0][0], runs[1][0]]
    assert b["series"][0]["summary"]["count"] == 50
    r = requests.post(url, json={"models": ["lineage@nope"], "metric_keys": ["loss"]})
    assert r.status_code == 400 and "alias nope not found" in r.json()["message"]
    r = requests.post(url, json={"models": ["lineage"], "metric_keys": ["loss"]})
    assert r.status_code == 400 and "name@alias or name/version" in r.json()["message"]
