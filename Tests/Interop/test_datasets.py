"""MLflow 3's evaluation datasets (`mlflow.genai.datasets`, `/api/3.0/mlflow/datasets/…`): the unmodified client's
round trip (create, get by id and by name, search, records merged from dicts, a DataFrame and traces, read back whole
through pages by `to_df`, tags, experiments, deletes) with no warning; `mlflow.genai.evaluate` on a dataset, logged as
the run's `mlflow_evaluation_dataset` input; the same raw requests to Tally and to a real `mlflow server` (3.17, from
the venv), answers compared once ids, clocks and digests are reduced to tokens (the JSON held in strings compared both
parsed and as text, Python's `json.dumps` being what both write); where MLflow answers 500 (or differs on purpose),
Tally's own answer; and the permissions of MLflow's auth app under --auth basic, side by side with MLflow's."""
import base64
import hashlib
import json
import logging
import math
import re
import time

import pytest
import requests
import mlflow
from mlflow import MlflowClient

from conftest import MlflowServer, Server, module_server

V3 = "/api/3.0/mlflow"
DS = V3 + "/datasets"
API = "/api/2.0/mlflow"
ADMIN_PASSWORD = "admin-password-1"
ADMIN = ("admin", ADMIN_PASSWORD)


@pytest.fixture(scope="module")
def local():
    yield from module_server()


@pytest.fixture(scope="module")
def oracle():
    """One real MLflow for the module, with its auth app (which lets its admin through unchecked: the differential
    test sends every request as the admin, the permissions test as its users)."""
    m = MlflowServer("--app-name", "basic-auth",
                     env={"MLFLOW_AUTH_ADMIN_PASSWORD": ADMIN_PASSWORD, "MLFLOW_FLASK_SERVER_SECRET_KEY": "tally-tests"})
    yield m
    m.stop()


@pytest.fixture
def no_warnings(caplog):
    """Fails the test if the client logged a warning."""
    caplog.set_level(logging.WARNING, logger="mlflow")
    yield
    bad = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and r.name.startswith("mlflow")]
    assert not bad, bad


def digest(name, ms):
    """MLflow's dataset digest."""
    return hashlib.sha256(f"{name}:{ms}".encode()).hexdigest()[:8]


def python_json(text):
    """Whether `text` is exactly what Python's `json.dumps` writes for the value it holds (as MLflow writes it)."""
    return json.dumps(json.loads(text)) == text


# ---------------------------------------------------------------------------------------------------------------------
# 1. The client


def test_datasets_round_trip_through_the_client(local, no_warnings):
    import pandas as pd
    from mlflow.exceptions import MlflowException
    from mlflow.genai import datasets
    from mlflow.tracking.context.registry import resolve_tags

    user = resolve_tags()["mlflow.user"]  # what the client puts in the mlflow.user tag of datasets and records
    c = MlflowClient()
    exp = mlflow.set_experiment("datasets-client").experiment_id
    other = c.create_experiment("datasets-client-other")

    ds = datasets.create_dataset(name="qa", tags={"team": "x"})  # in the active experiment
    assert ds.dataset_id.startswith("d-") and len(ds.dataset_id) == 34
    assert ds.tags == {"team": "x", "mlflow.user": user} and ds.created_by == ds.last_updated_by == user
    assert ds.schema is None and ds.profile is None and ds.digest == digest("qa", ds.created_time)
    assert ds.experiment_ids == [exp]
    assert ds.to_df().empty
    created = ds.digest

    # Dicts: the same inputs in another key order are one record, its expectations and tags merged.
    ds.merge_records([{"inputs": {"q": "a", "n": 1}, "expectations": {"ans": "A"}},
                      {"inputs": {"q": "b"}},
                      {"inputs": {"n": 1, "q": "a"}, "expectations": {"x": 2}, "tags": {"t": "1"}}])
    ds.merge_records([{"inputs": {"q": "b"}, "outputs": {"o": 1.5}, "tags": {"t": "2"}}])
    got = datasets.get_dataset(dataset_id=ds.dataset_id)
    assert got.profile == json.dumps({"num_records": 2}) and got.digest != created
    assert got.digest == digest("qa", got.last_update_time) and got.last_update_time >= ds.created_time
    assert json.loads(got.schema) == {"inputs": {"q": "string", "n": "integer"}, "outputs": {"o": "float"},
                                      "expectations": {"ans": "string", "x": "integer"}, "version": "1.0"}
    df = got.to_df()
    assert list(df.columns) == ["inputs", "outputs", "expectations", "tags", "source_type", "source_id", "source",
                                "created_time", "dataset_record_id"]
    rows = {r["inputs"]["q"]: r for r in df.to_dict("records")}
    assert set(rows) == {"a", "b"} and len(df) == 2
    assert rows["a"]["inputs"] == {"q": "a", "n": 1} and rows["a"]["expectations"] == {"ans": "A", "x": 2}
    assert rows["a"]["tags"] == {"mlflow.user": user, "t": "1"} and rows["a"]["source_type"] == "HUMAN"
    assert rows["b"]["expectations"] is None and rows["b"]["source_type"] == "CODE" and rows["b"]["outputs"] == {"o": 1.5}
    assert rows["b"]["tags"] == {"mlflow.user": user, "t": "2"}

    # A DataFrame, one of whose rows has no expectations: pandas sends the missing cell as NaN, which Tally takes for
    # absent (MLflow 3.17 answers 500 to it, "Attribute 'expectations' does not accept objects of type float").
    frame = pd.DataFrame([{"inputs": {"q": "c"}, "expectations": {"ans": "C"}}, {"inputs": {"q": "d"}}])
    assert math.isnan(frame.to_dict("records")[1]["expectations"])
    got.merge_records(frame)
    rows = {r["inputs"]["q"]: r for r in got.to_df().to_dict("records")}
    assert set(rows) == {"a", "b", "c", "d"}
    assert rows["c"]["expectations"] == {"ans": "C"} and rows["d"]["expectations"] is None

    # More records than a page (1,000): to_df follows the pages; merged again, they are updates.
    many = [{"inputs": {"i": i}, "expectations": {"twice": 2 * i}} for i in range(1100)]
    got.merge_records(many)
    again = datasets.get_dataset(name="qa")
    assert again.dataset_id == ds.dataset_id and again.profile == json.dumps({"num_records": 1104})
    df = again.to_df()
    assert len(df) == 1104 and df["dataset_record_id"].is_unique
    assert sorted(r["i"] for r in df["inputs"] if "i" in r) == list(range(1100))
    assert df["created_time"].is_monotonic_increasing

    # Tags: set (a None value leaves the tag as it is; other values are stored as Python's str), delete.
    datasets.set_dataset_tags(ds.dataset_id, {"team": "y", "version": 2, "ok": True, "team2": None})
    assert datasets.get_dataset(dataset_id=ds.dataset_id).tags == {"team": "y", "mlflow.user": user, "version": "2", "ok": "True"}
    datasets.delete_dataset_tag(ds.dataset_id, "team")
    datasets.delete_dataset_tag(ds.dataset_id, "team")  # again: no error
    assert datasets.get_dataset(dataset_id=ds.dataset_id).tags == {"mlflow.user": user, "version": "2", "ok": "True"}

    # Experiments.
    linked = c.add_dataset_to_experiments(ds.dataset_id, [other])
    assert linked.dataset_id == ds.dataset_id and linked.experiment_ids == [exp, other]
    assert datasets.remove_dataset_from_experiments(ds.dataset_id, [exp]).experiment_ids == [other]
    with pytest.raises(MlflowException, match="No Experiment with id=424242"):
        datasets.add_dataset_to_experiments(ds.dataset_id, ["424242"])

    # Search: by name, tag, experiment; ordered; in pages.
    second = datasets.create_dataset(name="qa-second", experiment_id=[exp, other], tags={"team": "z"})
    assert [d.dataset_id for d in datasets.search_datasets(filter_string="name = 'qa'")] == [ds.dataset_id]
    assert [d.name for d in datasets.search_datasets(filter_string="name LIKE 'qa%'", order_by=["name DESC"])] == ["qa-second", "qa"]
    assert [d.name for d in datasets.search_datasets(filter_string="tags.team = 'z'")] == ["qa-second"]
    assert [d.name for d in datasets.search_datasets(experiment_ids=exp)] == ["qa-second"]
    assert [d.name for d in datasets.search_datasets(experiment_ids=[other], order_by=["created_time ASC"])] == ["qa", "qa-second"]
    page = c.search_datasets(experiment_ids=[other], max_results=1, order_by=["name ASC"])
    assert [d.name for d in page] == ["qa"] and page.token
    rest = c.search_datasets(experiment_ids=[other], max_results=1, order_by=["name ASC"], page_token=page.token)
    assert [d.name for d in rest] == ["qa-second"] and not rest.token
    twin = datasets.create_dataset(name="qa", experiment_id=exp)  # names need not be unique, but get by name fails then
    with pytest.raises(MlflowException, match="Multiple datasets found"):
        datasets.get_dataset(name="qa")
    datasets.delete_dataset(dataset_id=twin.dataset_id)

    # Records deleted: the profile counts those left; the digest stays.
    before = datasets.get_dataset(dataset_id=ds.dataset_id)
    drop = [r["dataset_record_id"] for r in before.to_df().to_dict("records") if r["inputs"].get("q") in ("c", "d")]
    assert len(drop) == 2 and before.delete_records(drop + ["dr-" + "0" * 32]) == 2
    after = datasets.get_dataset(dataset_id=ds.dataset_id)
    assert after.profile == json.dumps({"num_records": 1102}) and after.digest == before.digest and len(after.to_df()) == 1102

    datasets.delete_dataset(dataset_id=second.dataset_id)
    datasets.delete_dataset(dataset_id=ds.dataset_id)
    with pytest.raises(MlflowException, match="not found") as e:
        datasets.get_dataset(dataset_id=ds.dataset_id)
    assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    datasets.delete_dataset(dataset_id=ds.dataset_id)  # again: no error, as in MLflow


# ---------------------------------------------------------------------------------------------------------------------
# 2. genai.evaluate on a dataset, and records from traces


@mlflow.trace
def answer(question):
    return question.upper()


def test_evaluate_on_a_dataset(local, no_warnings):
    from mlflow.genai import datasets
    from mlflow.genai.scorers import scorer

    @scorer
    def exact(outputs, expectations):
        return outputs == expectations["expected"]

    mlflow.set_experiment("datasets-evaluate")
    made = datasets.create_dataset(name="eval-ds")
    made.merge_records([{"inputs": {"question": "hi"}, "expectations": {"expected": "HI"}},
                        {"inputs": {"question": "yo"}, "expectations": {"expected": "nope"}}])
    ds = datasets.get_dataset(dataset_id=made.dataset_id)  # the digest of its last merge
    result = mlflow.genai.evaluate(data=ds, predict_fn=lambda question: question.upper(), scorers=[exact])
    assert result.metrics["exact/mean"] == 0.5
    run = MlflowClient().get_run(result.run_id)
    assert run.data.metrics["exact/mean"] == 0.5
    inputs = [i.dataset for i in run.inputs.dataset_inputs]
    assert [(d.name, d.digest, d.source_type) for d in inputs] == [("eval-ds", ds.digest, "mlflow_evaluation_dataset")]
    assert json.loads(inputs[0].source) == {"dataset_id": ds.dataset_id}
    assert inputs[0].schema == ds.schema and inputs[0].profile == ds.profile
    assert len(mlflow.search_traces(run_id=result.run_id, return_type="list")) == 2
    # Evaluating writes nothing back to the dataset.
    assert datasets.get_dataset(dataset_id=ds.dataset_id).last_update_time == ds.last_update_time

    # Records from traces: the root span's inputs and outputs, the trace's expectations, the trace as their source.
    mlflow.set_experiment("datasets-from-traces")
    ids = []
    for q in ("one", "two"):
        answer(q)
        mlflow.flush_trace_async_logging()
        ids.append(mlflow.get_last_active_trace_id())
    mlflow.log_expectation(trace_id=ids[0], name="expected", value="ONE")
    traces = mlflow.search_traces(return_type="list")
    assert {t.info.trace_id for t in traces} == set(ids)
    from_traces = datasets.create_dataset(name="from-traces")
    from_traces.merge_records(traces)
    rows = {r["source_id"]: r for r in from_traces.to_df().to_dict("records")}
    assert set(rows) == set(ids)
    for tid, q in zip(ids, ("one", "two")):
        r = rows[tid]
        assert r["source_type"] == "TRACE" and r["source"].source_data["trace_id"] == tid
        assert r["inputs"] == {"question": q} and r["outputs"] == q.upper()
    assert rows[ids[0]]["expectations"] == {"expected": "ONE"} and rows[ids[1]]["expectations"] == {}
    # The same traces again (now as search_traces' DataFrame): merged into the same records.
    from_traces.merge_records(mlflow.search_traces())
    assert len(from_traces.to_df()) == 2
    assert json.loads(datasets.get_dataset(dataset_id=from_traces.dataset_id).schema)["outputs"] == "string"
