"""MLflow 3 logged models through the unmodified client and scikit-learn: `log_model`, `autolog`, `load_model` by
`runs:/` and `models:/` URIs, model metrics, search, tags, params, finalize and delete, with MLflow's errors."""
import numpy as np
import pytest
import requests
import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from sklearn.linear_model import Ridge


def data():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(40, 3))
    return X, X @ np.array([1.0, -2.0, 0.5]) + 0.1


def test_log_model_and_load_it_back_by_every_uri(server):
    mlflow.set_experiment("logged-models")
    X, y = data()
    model = Ridge(alpha=0.5).fit(X, y)
    with mlflow.start_run() as run:
        mlflow.log_param("alpha", 0.5)
        info = mlflow.sklearn.log_model(model, name="model", input_example=X[:2], params={"fit_intercept": "True"}, tags={"stage": "dev"})
        mlflow.log_metric("rmse", 0.12, model_id=info.model_id)
    rid = run.info.run_id
    assert info.model_id.startswith("m-") and len(info.model_id) == 34
    want = model.predict(X)
    for uri in [f"models:/{info.model_id}", f"runs:/{rid}/model"]:
        np.testing.assert_allclose(mlflow.pyfunc.load_model(uri).predict(X), want)
    np.testing.assert_allclose(mlflow.sklearn.load_model(f"models:/{info.model_id}").predict(X), want)

    m = mlflow.get_logged_model(info.model_id)
    assert m.status == "READY" and m.name == "model" and m.source_run_id == rid
    assert m.artifact_location.endswith(f"/models/{info.model_id}/artifacts")
    assert m.params == {"alpha": "0.5", "fit_intercept": "True"}  # the run's params are copied in
    assert m.tags["stage"] == "dev"
    assert [(x.key, x.value, x.model_id, x.run_id) for x in m.metrics] == [("rmse", 0.12, info.model_id, rid)]
    assert mlflow.last_logged_model().model_id == info.model_id
    # The point is in the run's history too, and the run lists the model among its outputs.
    c = MlflowClient()
    assert [p.value for p in c.get_metric_history(rid, "rmse")] == [0.12]
    assert [o.model_id for o in c.get_run(rid).outputs.model_outputs] == [info.model_id]
    raw = requests.get(server.url + "/api/2.0/mlflow/runs/get", params={"run_id": rid}).json()["run"]
    assert raw["outputs"] == {"model_outputs": [{"model_id": info.model_id, "step": 0}]}
    # The UI's listing of the model's artifacts, and the client's.
    listing = requests.get(server.url + f"/api/2.0/mlflow/logged-models/{info.model_id}/artifacts/directories").json()
    assert listing["root_uri"] == m.artifact_location and {"path": "MLmodel", "is_dir": False} in [
        {k: f[k] for k in ("path", "is_dir")} for f in listing["files"]]
    assert "MLmodel" in [a.path for a in c.list_logged_model_artifacts(info.model_id)]


def test_autolog_stores_the_model_and_its_training_metrics(server):
    mlflow.set_experiment("autolog")
    X, y = data()
    mlflow.sklearn.autolog()
    try:
        with mlflow.start_run() as run:
            model = Ridge(alpha=2.0).fit(X, y)
    finally:
        mlflow.sklearn.autolog(disable=True)
    m = mlflow.last_logged_model()
    assert m.source_run_id == run.info.run_id and m.status == "READY" and m.params["alpha"] == "2.0"
    keys = {x.key for x in m.metrics}
    assert "training_r2_score" in keys and all(x.dataset_name == "dataset" for x in m.metrics)
    np.testing.assert_allclose(mlflow.pyfunc.load_model(f"models:/{m.model_id}").predict(X), model.predict(X))


def test_search_tags_params_finalize_and_delete(server):
    c = MlflowClient()
    exp = c.create_experiment("model-search")
    made = [c.create_logged_model(exp, name=n, tags={"stage": s}, params={"lr": lr}) for n, s, lr in
            [("a", "dev", "0.1"), ("b", "prod", "0.2"), ("a", "prod", "0.3")]]
    ids = [m.model_id for m in made]
    # Newest first by default; filters on attributes, tags and params; order by an attribute.
    assert [m.model_id for m in c.search_logged_models([exp])] == ids[::-1]
    assert [m.model_id for m in c.search_logged_models([exp], filter_string="name = 'a'")] == [ids[2], ids[0]]
    assert [m.model_id for m in c.search_logged_models([exp], filter_string="tags.stage = 'prod' AND params.lr LIKE '0.%'")] == [ids[2], ids[1]]
    assert [m.model_id for m in c.search_logged_models([exp], order_by=[{"field_name": "name", "ascending": True}])] == [ids[2], ids[0], ids[1]]
    # The fluent API: a DataFrame (it follows the page tokens), and a list.
    df = mlflow.search_logged_models(experiment_ids=[exp], filter_string="tags.stage = 'prod'")
    assert sorted(df["model_id"]) == sorted([ids[1], ids[2]])
    assert [m.model_id for m in mlflow.search_logged_models(experiment_ids=[exp], output_format="list", max_results=2)] == [ids[2], ids[1]]
    page = c.search_logged_models([exp], max_results=2)
    assert len(page) == 2 and page.token
    assert [m.model_id for m in c.search_logged_models([exp], max_results=2, page_token=page.token)] == [ids[0]]
    # Tags, params, status.
    c.set_logged_model_tags(ids[0], {"t2": "2"})
    c.delete_logged_model_tag(ids[0], "stage")
    c.log_model_params(ids[0], {"extra": "x"})
    c.finalize_logged_model(ids[0], "READY")
    m = c.get_logged_model(ids[0])
    assert m.tags == {"t2": "2"} and m.params == {"lr": "0.1", "extra": "x"} and m.status == "READY"
    assert [m.model_id for m in c.search_logged_models([exp], filter_string="status = 2")] == [ids[0]]
    # Errors, as MLflow's.
    with pytest.raises(MlflowException, match="No tag with key 'nokey'"):
        c.delete_logged_model_tag(ids[0], "nokey")
    with pytest.raises(MlflowException, match="Invalid entity type: 'tag'"):
        c.search_logged_models([exp], filter_string="tag.stage = 'dev'")
    c.delete_logged_model(ids[1])
    with pytest.raises(MlflowException, match=f"Logged model with ID '{ids[1]}' not found"):
        c.get_logged_model(ids[1])
    assert ids[1] not in [m.model_id for m in c.search_logged_models([exp])]
    r = requests.post(server.url + "/api/2.0/mlflow/logged-models", json={"experiment_id": "9999"})
    assert r.status_code == 404 and r.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    r = requests.post(server.url + "/api/2.0/mlflow/logged-models/search", json={})
    assert r.status_code == 400 and "experiment_ids" in r.json()["message"]


def test_metrics_logged_against_a_model_are_searchable(server):
    c = MlflowClient()
    exp = c.create_experiment("model-metrics")
    run = c.create_run(exp)
    models = [c.create_logged_model(exp, name=f"m{i}", source_run_id=run.info.run_id) for i in range(3)]
    for m, v in zip(models, [0.5, 0.2, 0.9]):
        mlflow.log_metric("loss", v, model_id=m.model_id, run_id=run.info.run_id)
    got = c.search_logged_models([exp], filter_string="metrics.loss < 0.6", order_by=[{"field_name": "metrics.loss", "ascending": True}])
    assert [m.name for m in got] == ["m1", "m0"]
    # The run's own history has the three points (one key, three values).
    assert sorted(p.value for p in c.get_metric_history(run.info.run_id, "loss")) == [0.2, 0.5, 0.9]


def test_runs_record_the_models_they_used(server):
    """MLflow 3's model inputs: `log_inputs(models=…)` (an evaluation run naming the model it used) shows in
    `runs/get` under `inputs.model_inputs`, each model once, beside dataset inputs; `runs/search` lists none, as
    MLflow's does. Tally refuses an empty model id (MLflow stores it)."""
    from mlflow.entities import LoggedModelInput
    mlflow.set_experiment("model-inputs")
    X, y = data()
    with mlflow.start_run() as train:
        model = mlflow.sklearn.log_model(Ridge().fit(X, y), name="m")
    c = MlflowClient()
    with mlflow.start_run() as evaluation:
        mlflow.log_input(mlflow.data.from_numpy(X, name="eval-set"), context="eval")
    c.log_inputs(evaluation.info.run_id, models=[LoggedModelInput(model.model_id)])
    c.log_inputs(evaluation.info.run_id, models=[LoggedModelInput(model.model_id), LoggedModelInput("m-other")])
    run = c.get_run(evaluation.info.run_id)
    assert [m.model_id for m in run.inputs.model_inputs] == [model.model_id, "m-other"]
    assert [d.dataset.name for d in run.inputs.dataset_inputs] == ["eval-set"]
    assert c.get_run(train.info.run_id).inputs.model_inputs == []
    found = requests.post(server.url + "/api/2.0/mlflow/runs/search", json={"experiment_ids": [run.info.experiment_id]}).json()["runs"]
    assert all("model_inputs" not in r.get("inputs", {}) for r in found)
    api = server.url + "/api/2.0/mlflow/runs/log-inputs"
    for body, fragment in [({"run_id": run.info.run_id, "models": [{"model_id": ""}]}, "models[0].model_id"),
                           ({"run_id": run.info.run_id, "models": {"model_id": "x"}}, "models"),
                           ({"run_id": run.info.run_id, "models": [{"model_id": 5}]}, "models[0].model_id")]:
        r = requests.post(api, json=body)
        assert r.status_code == 400 and r.json()["error_code"] == "INVALID_PARAMETER_VALUE" and fragment in r.json()["message"], r.text
    c.delete_run(run.info.run_id)
    with pytest.raises(MlflowException, match="must be in the 'active' state"):
        c.log_inputs(run.info.run_id, models=[LoggedModelInput(model.model_id)])
