"""MLflow 3's evaluation datasets (`mlflow.genai.datasets`, `/api/3.0/mlflow/datasets/…`) through the unmodified
client: create, get (by id and by name), search, records merged from dicts, from a DataFrame (a missing cell sent as
NaN) and from traces, read back by `to_df` through pages of 1,000, tags, experiments, deletes, with no warning; and
`mlflow.genai.evaluate` on a dataset, logged as the run's `mlflow_evaluation_dataset` input.

Side by side with a real `mlflow server` (3.17, SQLite, from the venv): the same raw requests to both (creates,
upserts that merge, schema evolution, record pages, searches' filters, orders and pages, tags, experiments, deletes,
bad requests), the answers compared once ids, clocks and digests are reduced to tokens: the same status, error_code
and body, key order included; the JSON held in strings (tags, schema, profile, records) compared both parsed and as
text, and Tally's checked to be what Python's `json.dumps` writes. Messages of refusals that differ are printed, not
failed on (MLflow's messages are not an API). Where MLflow answers 500, and where Tally differs on purpose (experiment
ids checked on create, an upsert without `mlflow.user` keeping `last_updated_by`, profiles recounted, …), Tally's own
answers. Then the permissions of MLflow's auth app under --auth basic, the same requests as its users to
`mlflow server --app-name basic-auth` and to Tally: the same statuses (except searches, which Tally filters).

The two MLflow servers start side by side in threads, once per module, when a test first needs one."""
import base64
import hashlib
import json
import math
import re
import threading

import pytest
import requests
import mlflow
from mlflow import MlflowClient

from conftest import ORACLE_ADMIN_PASSWORD as ADMIN_PASSWORD, RawSession as Session, Server, compare_steps, module_server, status_problems

V3 = "/api/3.0/mlflow"
DS = V3 + "/datasets"
API = "/api/2.0/mlflow"
ADMIN = ("admin", ADMIN_PASSWORD)


@pytest.fixture(scope="module")
def local():
    yield from module_server()


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
    got.merge_records([{"inputs": {"i": i}, "expectations": {"thrice": 3 * i}} for i in range(5)])
    df = datasets.get_dataset(dataset_id=ds.dataset_id).to_df()
    assert len(df) == 1104 and {r["i"]: e for r, e in zip(df["inputs"], df["expectations"]) if r.get("i", 9) < 5} == {
        i: {"twice": 2 * i, "thrice": 3 * i} for i in range(5)}

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


# ---------------------------------------------------------------------------------------------------------------------
# 3. The same raw requests to Tally and to MLflow


def records(*items):
    return {"records": json.dumps(items)}


ORDERS = [[], ["name ASC"], ["name DESC"], ["created_time"], ["last_update_time DESC"], ["`name` desc"], ["created_time ASC", "name DESC"]]


def scenario(s):
    """The differential scenario: the same requests whatever the server (its own experiment ids put in); the answers
    in `s.steps`. Returns the server's experiment ids, in the order made."""
    exps = []
    for i in range(4):
        exps.append(s(f"experiment {i}", "POST", API + "/experiments/create", json={"name": f"datasets-diff-{i}"})["experiment_id"])
    e1, e2, e3, gone = exps
    s("delete an experiment", "POST", API + "/experiments/delete", json={"experiment_id": gone})

    def create(name, **body):
        return s("create " + name, "POST", DS + "/create", json={"name": name, **body})["dataset"]["dataset_id"]

    alpha = create("alpha", experiment_ids=[e1, e2], tags=json.dumps({"mlflow.user": "alice", "env": "prod", "n": "1", "z": None}))
    beta = create("beta", experiment_ids=[e2], tags=json.dumps({"mlflow.user": "bob", "env": "dev"}))
    gamma = create("Gamma", experiment_ids=[e3], tags="null")
    cafe = create("caf\u00e9 \u2615")
    # Fields the proto has but create ignores.
    delta = create("delta", experiment_ids=[e1], tags="{}", source_type="HUMAN", source="x", schema="{}", profile="{}", created_by="mallory")
    for d in (alpha, beta, gamma, cafe, delta):
        s("get", "GET", f"{DS}/{d}")
    s("experiment-ids of alpha", "GET", f"{DS}/{alpha}/experiment-ids")
    s("experiment-ids of cafe", "GET", f"{DS}/{cafe}/experiment-ids")
    s("ajax-api get", "GET", f"/ajax-api/3.0/mlflow/datasets/{alpha}")

    # Upserts: one record per inputs (as Python's json.dumps(sort_keys=True) writes them), the same inputs in one
    # request or a later one merge; the types of every field go into the schema (first type wins).
    s("upsert alpha", "POST", f"{DS}/{alpha}/records", json=records(
        {"inputs": {"q": "a", "n": 1}, "expectations": {"ans": "A"}, "tags": {"t": "1"}},
        {"inputs": {"n": 1, "q": "a"}, "expectations": {"x": 2}},
        {"inputs": {"q": "c", "f": 1.5, "b": True, "l": [1, "x", None], "none": None, "obj": {"k": [1.0]}},
         "outputs": {"o": [1, 2], "s": "t", "i": 3, "fl": 0.5, "bo": False, "nu": None},
         "expectations": {"e_int": 1, "e_float": 2.5, "e_bool": True, "e_list": [1], "e_none": None, "e_obj": {"a": 1}},
         "tags": {"mlflow.user": "bob"}, "source": {"source_type": "HUMAN", "source_data": {"source_id": "h1"}}},
        {"inputs": {"q": "d"}, "outputs": None, "source": {"source_type": "trace", "source_data": {"trace_id": "tr-1", "session_id": "s1"}}},
        {"inputs": {"q": "e"}, "expectations": {}, "source": {"source_type": "DOCUMENT"}, "tags": {"mlflow.user": "carol", "k": 1}},
        {"inputs": {"q": "\u00e9\u2615", "big": 1e20, "small": 1e-7, "neg": -2, "zero": 0.0}, "tags": None},
        {"source_id": "ignored", "inputs": {"q": "f"}, "source": {"source_type": "CODE", "source_data": {"source_id": "code-1", "more": [1]}}},
        {"expectations": {"only": "expectations"}}))
    s("records of alpha", "GET", f"{DS}/{alpha}/records")
    s("get alpha", "GET", f"{DS}/{alpha}")
    s("upsert alpha again", "POST", f"{DS}/{alpha}/records", json=records(
        {"inputs": {"n": 1, "q": "a"}, "expectations": {"ans": "A2", "y": [3]}, "tags": {"t2": "2", "mlflow.user": "dave"}, "outputs": "now text"},
        {"inputs": {"obj": {"k": [1.0]}, "none": None, "l": [1, "x", None], "b": True, "f": 1.5, "q": "c"}, "outputs": None, "expectations": {}},
        {"inputs": {"q": "d"}, "expectations": {"new": 1}, "tags": {}, "source": {"source_type": "HUMAN"}},
        {"inputs": {"q": "g", "extra_in": 2}, "expectations": {"ans": 7}, "tags": {"mlflow.user": "erin"}},
        {"inputs": {"q": 5}, "outputs": {"o": "not an array"}},
        {"inputs": {}, "outputs": [1]}))
    s("records of alpha again", "GET", f"{DS}/{alpha}/records")
    s("get alpha again", "GET", f"{DS}/{alpha}")

    # beta: one record per request (each its own time, so pages are the same on both servers); outputs that are not
    # an object make the schema's outputs one type.
    for i, out in enumerate([None, "text", 7, [1, 2], {}, True, "missing", 2.5]):
        rec = {"inputs": {"i": i, "s": str(i)}, "tags": {"mlflow.user": f"u{i}"}}
        if out != "missing":
            rec["outputs"] = out
        if i % 3 == 0:
            rec["expectations"] = {"e": i}
        s(f"upsert beta {i}", "POST", f"{DS}/{beta}/records", json=records(rec))
    s("get beta", "GET", f"{DS}/{beta}")
    token, n = None, 0
    while True:
        more = {"page_token": token} if token else {}
        page = s(f"records of beta, page {n}", "GET", f"{DS}/{beta}/records", params={"max_results": 3, **more})
        token, n = page.get("next_page_token"), n + 1
        if not token or n > 5:
            break
    s("records of beta, max_results 0", "GET", f"{DS}/{beta}/records", params={"max_results": 0})
    s("records of beta, offset token", "GET", f"{DS}/{beta}/records", params={"max_results": 2, "page_token": "3"})
    s("records of an unknown dataset", "GET", f"{DS}/d-{'0' * 32}/records")

    # Searches: filters, orders, experiments, pages.
    alpha_created = next(b for st, _, b in s.steps if st == "create alpha")["dataset"]["created_time"]
    for f in [None, "name = 'alpha'", "name = \"alpha\"", "name LIKE 'a%'", "name LIKE '%A%'", "name ILIKE '%A%'",
              "name IN ('alpha', 'Gamma', 'nope')", "name != 'alpha'", "name > 'beta'", "tags.env = 'prod'", "tags.env != 'prod'",
              "tags.env LIKE 'd%'", "tags.env ILIKE 'PROD'",
              "tags.mlflow.user = 'bob'", "created_time > {alpha}", "created_time >= {alpha}",
              "last_update_time > {alpha}", "last_updated_by = 'erin'", "created_by = 'alice'", "created_by LIKE 'b%'",
              "name != 'alpha' AND tags.env ILIKE 'DEV'", "name = 'nope'", ""]:
        orders = ORDERS if f in (None, "tags.env != 'prod'") else ORDERS[:2]
        for order in orders:
            body = {"order_by": order, **({"filter_string": f.format(alpha=alpha_created)} if f is not None else {})}
            s(f"search {f!r} {order}", "POST", DS + "/search", json=body)
    for label, ids in (("the second", [e2]), ("the first two", [e1, e2]), ("the third", [e3]), ("the deleted", [gone]),
                       ("an unknown", ["999999"]), ("the first and an unknown", [e1, "999999"])):
        s(f"search in {label}", "POST", DS + "/search", json={"experiment_ids": ids, "order_by": ["name"]})
    token, n = None, 0
    while True:
        more = {"page_token": token} if token else {}
        page = s(f"search page {n}", "POST", DS + "/search", json={"max_results": 2, "order_by": ["name ASC"], **more})
        token, n = page.get("next_page_token"), n + 1
        if not token or n > 5:
            break
    s("search with GET", "GET", DS + "/search", params={"max_results": 1, "order_by": "name DESC", "experiment_ids": [e1, e2]})
    s("search with GET, filter", "GET", DS + "/search", params={"filter_string": "name LIKE '%a'", "order_by": ["name"]})
    s("search with max_results as a string", "POST", DS + "/search", json={"max_results": "1", "order_by": ["name"]})
    s("search past the end", "POST", DS + "/search", json={"page_token": base64.b64encode(b'{"offset": 40}').decode()})
    s("search with max_results 50000", "POST", DS + "/search", json={"max_results": 50000, "filter_string": "name = 'beta'"})

    # Tags: a null value leaves the tag as it is; others are stored as Python's str() prints them.
    s("set tags", "PATCH", f"{DS}/{alpha}/tags", json={"tags": json.dumps({"env": "staging", "new": 5, "flag": True, "f": 1.5, "z": None,
                                                                            "n": None, "a b": "spaced", "mlflow.user": "zed"})})
    s("get after set tags", "GET", f"{DS}/{alpha}")
    s("set no tags", "PATCH", f"{DS}/{alpha}/tags", json={"tags": "{}"})
    s("delete tag", "DELETE", f"{DS}/{alpha}/tags/n")
    s("delete tag again", "DELETE", f"{DS}/{alpha}/tags/n")
    s("delete a tag with a space", "DELETE", f"{DS}/{alpha}/tags/a%20b")
    s("delete a tag of an unknown dataset", "DELETE", f"{DS}/d-{'0' * 32}/tags/n")
    s("get after delete tags", "GET", f"{DS}/{alpha}")
    s("search by a set tag", "POST", DS + "/search", json={"filter_string": "tags.new = '5' AND tags.flag = 'True'"})
    # A dataset of its own (deleted before the searches that follow) for an upsert of no records, inputs that differ
    # only by the sign of a zero (Python's json.dumps writes -0.0: two records), and tag values that are an object or
    # a list (Python's str() of a dict prints its repr).
    scratch = create("scratch")
    s("upsert nothing", "POST", f"{DS}/{scratch}/records", json={"records": "[]"})
    s("get after upserting nothing", "GET", f"{DS}/{scratch}")
    s("upsert signed zeros", "POST", f"{DS}/{scratch}/records", json=records({"inputs": {"m": -0.0}}, {"inputs": {"m": 0.0}}, {"inputs": {"m": 0}}))
    s("records of signed zeros", "GET", f"{DS}/{scratch}/records")
    s("delete scratch", "DELETE", f"{DS}/{scratch}")

    # Experiments.
    s("add experiments", "POST", f"{DS}/{alpha}/add-experiments", json={"experiment_ids": [e3, e1]})
    s("add a deleted experiment", "POST", f"{DS}/{alpha}/add-experiments", json={"experiment_ids": [gone]})
    s("add no experiments", "POST", f"{DS}/{gamma}/add-experiments", json={"experiment_ids": []})
    s("add an unknown experiment", "POST", f"{DS}/{alpha}/add-experiments", json={"experiment_ids": [e2, "999999"]})
    s("experiment-ids after add", "GET", f"{DS}/{alpha}/experiment-ids")
    before = s("get before remove", "GET", f"{DS}/{alpha}")["dataset"]
    s("remove experiments", "POST", f"{DS}/{alpha}/remove-experiments", json={"experiment_ids": [e2, "999999", gone]})
    s("experiment-ids after remove", "GET", f"{DS}/{alpha}/experiment-ids")
    removed = s("get after remove", "GET", f"{DS}/{alpha}")["dataset"]
    s.note("remove renews last_update_time", removed["last_update_time"] > before["last_update_time"])
    s("remove experiments not linked", "POST", f"{DS}/{alpha}/remove-experiments", json={"experiment_ids": ["999999"]})
    s.note("remove of nothing keeps last_update_time", s("get", "GET", f"{DS}/{alpha}")["dataset"]["last_update_time"] == removed["last_update_time"])
    s("search in a linked experiment", "POST", DS + "/search", json={"experiment_ids": [e3], "order_by": ["name"]})
    s("experiment-ids of an unknown dataset", "GET", f"{DS}/d-{'0' * 32}/experiment-ids")

    # Records deleted (the profile counts those left).
    listed = json.loads(s("records before delete", "GET", f"{DS}/{alpha}/records")["records"])
    drop = [r["dataset_record_id"] for r in listed if r["inputs"].get("q") in ("a", "d")]
    beta_one = json.loads(s("records of beta", "GET", f"{DS}/{beta}/records", params={"max_results": 1})["records"])[0]["dataset_record_id"]
    s("delete records", "DELETE", f"{DS}/{alpha}/records", json={"dataset_record_ids": drop + drop[:1] + ["dr-" + "0" * 32, beta_one]})
    s("get after delete records", "GET", f"{DS}/{alpha}")
    s("records after delete", "GET", f"{DS}/{alpha}/records")
    s("delete no records", "DELETE", f"{DS}/{alpha}/records", json={})
    s("delete records, no body", "DELETE", f"{DS}/{alpha}/records")
    s("delete records of an unknown dataset", "DELETE", f"{DS}/d-{'0' * 32}/records", json={"dataset_record_ids": drop})

    # Deleting a dataset.
    s("delete beta", "DELETE", f"{DS}/{beta}")
    s("delete beta again", "DELETE", f"{DS}/{beta}")
    s("get deleted", "GET", f"{DS}/{beta}")
    s("experiment-ids of deleted", "GET", f"{DS}/{beta}/experiment-ids")
    s("records of deleted", "GET", f"{DS}/{beta}/records")
    s("delete records of deleted", "DELETE", f"{DS}/{beta}/records", json={"dataset_record_ids": [beta_one]})
    s("set tags of deleted", "PATCH", f"{DS}/{beta}/tags", json={"tags": '{"a": "b"}'})
    s("delete tag of deleted", "DELETE", f"{DS}/{beta}/tags/env")
    s("add experiments to deleted", "POST", f"{DS}/{beta}/add-experiments", json={"experiment_ids": [e1]})
    s("remove experiments from deleted", "POST", f"{DS}/{beta}/remove-experiments", json={"experiment_ids": [e2]})
    s("search after delete", "POST", DS + "/search", json={"order_by": ["name"]})

    # Bad requests.
    nope = "/d-nope"
    for step, method, path, kw in [
            ("create without a name", "POST", "/create", {"json": {}}),
            ("create with an empty name", "POST", "/create", {"json": {"name": ""}}),
            ("create with tags as an object", "POST", "/create", {"json": {"name": "x", "tags": {"a": "b"}}}),
            ("create with experiment_ids not a list", "POST", "/create", {"json": {"name": "x", "experiment_ids": "1"}}),
            ("create without a content type", "POST", "/create", {"data": json.dumps({"name": "x"})}),
            ("create as text", "POST", "/create", {"data": json.dumps({"name": "x"}), "headers": {"Content-Type": "text/plain"}}),
            ("upsert without records", "POST", f"/{alpha}/records", {"json": {}}),
            ("upsert with empty records", "POST", f"/{alpha}/records", {"json": {"records": ""}}),
            ("upsert records not a string", "POST", f"/{alpha}/records", {"json": {"records": [{"inputs": {"q": "z"}}]}}),
            ("upsert a bad source type", "POST", f"/{alpha}/records",
             {"json": records({"inputs": {"q": "z"}}, {"inputs": {"q": "y"}, "source": {"source_type": "bogus"}})}),
            ("get unknown", "GET", nope, {}),
            ("add experiments to unknown", "POST", nope + "/add-experiments", {"json": {"experiment_ids": [e1]}}),
            ("remove experiments from unknown", "POST", nope + "/remove-experiments", {"json": {"experiment_ids": [e1]}}),
            ("add experiments not a list", "POST", f"/{alpha}/add-experiments", {"json": {"experiment_ids": e1}}),
            ("set tags of unknown", "PATCH", nope + "/tags", {"json": {"tags": '{"a": "b"}'}}),
            ("set tags without tags", "PATCH", f"/{alpha}/tags", {"json": {}}),
            ("set tags as an object", "PATCH", f"/{alpha}/tags", {"json": {"tags": {"a": "b"}}}),
            ("delete records not a list", "DELETE", f"/{alpha}/records", {"json": {"dataset_record_ids": "dr-1"}}),
            ("search max_results 0", "POST", "/search", {"json": {"max_results": 0}}),
            ("search max_results -1", "POST", "/search", {"json": {"max_results": -1}}),
            ("search max_results 50001", "POST", "/search", {"json": {"max_results": 50001}}),
            ("search by created_by order", "POST", "/search", {"json": {"order_by": ["created_by"]}}),
            ("search by a tag order", "POST", "/search", {"json": {"order_by": ["tags.env"]}}),
            ("search sideways", "POST", "/search", {"json": {"order_by": ["name sideways"]}}),
            ("search with a long order", "POST", "/search", {"json": {"order_by": ["name asc extra"]}}),
            ("search by an unknown attribute", "POST", "/search", {"json": {"filter_string": "foo = 'x'"}}),
            ("search by dataset_id", "POST", "/search", {"json": {"filter_string": "dataset_id = 'x'"}}),
            ("search with OR", "POST", "/search", {"json": {"filter_string": "name = 'a' OR name = 'b'"}}),
            ("search by params", "POST", "/search", {"json": {"filter_string": "params.x = '1'"}}),
            ("search unquoted", "POST", "/search", {"json": {"filter_string": "name = alpha"}}),
            ("search a number for a string", "POST", "/search", {"json": {"filter_string": "name = 5"}}),
            ("search a number for a tag", "POST", "/search", {"json": {"filter_string": "tags.env = 5"}}),
            ("search a quoted time", "POST", "/search", {"json": {"filter_string": "created_time > 'abc'"}}),
            ("search a float time", "POST", "/search", {"json": {"filter_string": "created_time > 1.5"}}),
            ("search LIKE on a time", "POST", "/search", {"json": {"filter_string": "created_time LIKE '1%'"}}),
            ("search IN on created_by", "POST", "/search", {"json": {"filter_string": "created_by IN ('a')"}}),
            ("search NOT IN", "POST", "/search", {"json": {"filter_string": "name NOT IN ('a')"}}),
            ("search > on a tag", "POST", "/search", {"json": {"filter_string": "tags.env > 'a'"}}),
            ("search IS NULL on a tag", "POST", "/search", {"json": {"filter_string": "tags.env IS NULL"}}),
            ("search IN on a tag", "POST", "/search", {"json": {"filter_string": "tags.env IN ('e1')"}}),
            ("search two statements", "POST", "/search", {"json": {"filter_string": "name = 's1'; name = 's2'"}}),
            ("search a bad page token", "POST", "/search", {"json": {"page_token": "garbage!!"}}),
            ("search a page token not JSON", "POST", "/search", {"json": {"page_token": base64.b64encode(b"notjson").decode()}}),
            ("search experiment_ids not a list", "POST", "/search", {"json": {"experiment_ids": "1"}}),
            ("an API 2.0 path", "GET", f"/{alpha}", {"api": "/api/2.0/mlflow/datasets"})]:
        base = kw.pop("api", DS)
        s(step, method, base + path, **kw)
    s("delete alpha", "DELETE", f"{DS}/{alpha}")
    s("search at the end", "POST", DS + "/search", json={"order_by": ["name"]})
    return exps


ID = re.compile(r"\b(dr|d)-[0-9a-f]{32}\b")
TIME = re.compile(r'"(created_time|last_update_time)": -?\d+')
IN_STRINGS = ("tags", "schema", "profile", "records")  # the fields that hold the text of JSON


def walk(v, key=None):
    """Every (key, value) in a JSON value, depth first."""
    yield key, v
    if isinstance(v, dict):
        for k, x in v.items():
            yield from walk(x, k)
    elif isinstance(v, list):
        for x in v:
            yield from walk(x, key)


class Records:
    """A `records` field: the records (sorted by time, then inputs: those of one time come in the order of their
    random ids), and the text, compared too when both servers' records are in that order."""

    def __init__(self, parsed, text, ordered):
        self.parsed, self.text, self.ordered = parsed, text, ordered

    def __eq__(self, other):
        return self.parsed == other.parsed and (not (self.ordered and other.ordered) or self.text == other.text)

    def __repr__(self):
        return f"Records({self.parsed!r}, text={self.text if self.ordered else '(unordered)'!r})"


class Tokens:
    """One server's answers reduced to what the other server's must equal: a dataset id becomes its name, a record id
    its inputs, an experiment id its place among the scenario's, a digest its place among its dataset's digests,
    times `<time>`, a records page token the record it names; dicts keep their keys' order."""

    def __init__(self, steps, exps):
        self.exps = {e: f"<E{i}>" for i, e in enumerate(exps, 1)}
        self.ids, self.digests = {}, {}
        seen = {}
        for _, _, body in steps:
            for k, v in walk(body):
                if isinstance(v, dict) and "dataset_id" in v and "name" in v:
                    self.ids[v["dataset_id"]] = f"<dataset {v['name']}>"
                    if "digest" in v and v["digest"] not in self.digests:
                        seen[v["name"]] = seen.get(v["name"], 0) + 1
                        self.digests[v["digest"]] = f"<digest {v['name']} #{seen[v['name']]}>"
                if k == "records" and isinstance(v, str):
                    for r in json.loads(v):
                        self.ids[r["dataset_record_id"]] = f"<record {json.dumps(r['inputs'], sort_keys=True)}>"

    def text(self, s):
        return TIME.sub(r'"\1": <time>', ID.sub(lambda m: self.ids.get(m.group(0), m.group(0)), s))

    def value(self, v, key=None):
        from collections import OrderedDict
        if isinstance(v, dict):
            return OrderedDict((k, self.value(x, k)) for k, x in v.items())
        if isinstance(v, list):
            return [self.exps.get(x, x) if key == "experiment_ids" else self.value(x) for x in v]
        if key == "experiment_id":
            return self.exps.get(v, v)
        if key in ("created_time", "last_update_time") and isinstance(v, int):
            return "<time>"
        if key == "digest":
            return self.digests.get(v, v)
        if not isinstance(v, str):
            return v
        if key == "next_page_token":
            try:
                t, rid = base64.b64decode(v).decode().split(":", 1)
                int(t)
                return f"<page after {self.ids.get(rid, rid)}>"
            except ValueError:
                return v  # a search's token: compared as it is
        if key in IN_STRINGS:
            parsed = json.loads(v)
            if key == "records":
                order = sorted(parsed, key=lambda r: (r["created_time"], json.dumps(r["inputs"], sort_keys=True)))
                return Records(self.value(order), self.text(v), order == parsed)
            return {"json": self.value(parsed), "text": self.text(v)}
        return self.text(v)


def unset(message):
    """A message with the Python sets it prints (`{'b', 'a'}`: an order of each process's own) sorted."""
    return re.sub(r"\{'[^{}]*'\}", lambda m: "{" + ", ".join(sorted(m.group(0)[1:-1].split(", "))) + "}", message)


def differences(theirs, ours, their_exps, our_exps, notes):
    """Where Tally's answers differ from MLflow's: the same status; for an error the same error_code; for a success
    the same body once reduced (`Tokens`). Messages that differ (once ids are reduced) go to `notes`, not a failure:
    MLflow's messages are not an API."""
    problems, found = compare_steps(theirs, ours, Tokens(theirs, their_exps), Tokens(ours, our_exps),
                                    message=lambda tokens, text: unset(tokens.text(text)), unequal=unequal)
    notes += found
    return problems


def unequal(a, b, where=""):
    """Where two reduced answers differ: (path, one's part, the other's), the first few."""
    if isinstance(a, Records) and isinstance(b, Records):
        if a.parsed != b.parsed:
            return unequal(a.parsed, b.parsed, where)
        return [] if a == b else [(where + " (text)", a.text, b.text)]
    if isinstance(a, dict) and isinstance(b, dict):
        if list(a) != list(b):
            return [(where + " keys", list(a), list(b))]
        return [d for k in a for d in unequal(a[k], b[k], f"{where}.{k}")][:5]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in unequal(x, y, f"{where}[{i}]")][:5]
    return [] if a == b else [(where, a, b)]


def test_answers_match_mlflow(oracles):
    oracle = oracles["plain"].get()
    tally = Server()
    try:
        theirs, ours = Session(oracle.url), Session(tally.url)
        notes = []
        problems = differences(theirs.steps, ours.steps, scenario(theirs), scenario(ours), notes)
        print("\n".join(["messages that differ from MLflow's:"] + notes))
        for step, status, body in ours.steps:  # Tally's JSON in strings is what Python's json.dumps writes
            for k, v in walk(body):
                if k in IN_STRINGS and isinstance(v, str) and not python_json(v):
                    problems.append(f"{step}: {k} is not as json.dumps writes it: {v!r}")
        assert not problems, "\n".join(problems)
        assert tally.proc.poll() is None
    finally:
        tally.stop()


def tally_answers(base):
    """Where MLflow 3.17 answers 500 (a bug of its server) or differs from Tally on purpose: Tally's own answers."""
    def call(method, path, status, code=None, **kw):
        r = requests.request(method, base + path, **kw)
        assert r.status_code == status, (method, path, kw, r.status_code, r.text)
        body = r.json()
        assert code is None or body["error_code"] == code, (method, path, kw, r.text)
        return body

    def one(d):
        return call("GET", f"{DS}/{d}", 200)["dataset"]

    def listed(d):
        return json.loads(call("GET", f"{DS}/{d}/records", 200)["records"])

    exp = call("POST", API + "/experiments/create", 200, json={"name": "datasets-tally"})["experiment_id"]
    # Differences on purpose, without a 500 on MLflow's side:
    # - GET on the create path is 405 (MLflow takes "create" for a dataset id: 404);
    call("GET", DS + "/create", 405, "BAD_REQUEST")
    # - a GET's parameters come from its query string only (MLflow reads a JSON body when there is no query string);
    # - a search's page token of offset 0 is the first page (MLflow refuses a token it never gives);
    # - a tag key in backquotes is the key (MLflow's dataset grammar keeps the backquotes and finds nothing);
    # - a tag value that is an object or a list is stored as its JSON (MLflow stores Python's str(), a repr).
    first = call("POST", DS + "/create", 200, json={"name": "diff", "experiment_ids": [exp], "tags": json.dumps({"mlflow.user": "bob"})})["dataset"]
    call("POST", f"{DS}/{first['dataset_id']}/records", 200, json=records({"inputs": {"q": 1}}, {"inputs": {"q": 2}}))
    assert len(json.loads(call("GET", f"{DS}/{first['dataset_id']}/records", 200, json={"max_results": 1})["records"])) == 2
    zero = call("POST", DS + "/search", 200, json={"experiment_ids": [exp], "page_token": base64.b64encode(b'{"offset": 0}').decode()})
    assert [x["name"] for x in zero["datasets"]] == ["diff"]
    quoted = call("POST", DS + "/search", 200, json={"experiment_ids": [exp], "filter_string": "tags.`mlflow.user` = 'bob'"})
    assert [x["name"] for x in quoted["datasets"]] == ["diff"]
    call("PATCH", f"{DS}/{first['dataset_id']}/tags", 200, json={"tags": json.dumps({"obj": {"a": 1}, "list": ["x", 2]})})
    assert json.loads(one(first["dataset_id"])["tags"]) == {"mlflow.user": "bob", "obj": '{"a": 1}', "list": '["x", 2]'}
    # Experiments are checked on create (MLflow links ids it does not check), and each linked once (MLflow: 400,
    # the IntegrityError of its primary key).
    call("POST", DS + "/create", 404, "RESOURCE_DOES_NOT_EXIST", json={"name": "t", "experiment_ids": [exp, "999999"]})
    assert call("POST", DS + "/search", 200, json={"filter_string": "name = 't'"}) == {}
    made = call("POST", DS + "/create", 200, json={"name": "t", "experiment_ids": [exp, exp], "tags": json.dumps({"mlflow.user": "ann"})})
    d = made["dataset"]["dataset_id"]
    assert made["dataset"]["experiment_ids"] == [exp] and call("GET", f"{DS}/{d}/experiment-ids", 200) == {"experiment_ids": [exp]}
    # Tags that are not the text of a JSON object: MLflow answers an HTML 500 (not JSON) or a 500 ("'list' object has
    # no attribute 'items'"); Tally 400. "null" to set-tags: MLflow 500 ('NoneType' …), Tally sets nothing.
    for bad in ("{not json", '["a"]', '"s"', "1"):
        call("POST", DS + "/create", 400, "INVALID_PARAMETER_VALUE", json={"name": "t", "tags": bad})
        call("PATCH", f"{DS}/{d}/tags", 400, "INVALID_PARAMETER_VALUE", json={"tags": bad})
    assert call("PATCH", f"{DS}/{d}/tags", 200, json={"tags": "null"}) == {} and one(d)["tags"] == '{"mlflow.user": "ann"}'
    # Records that are not the text of a JSON list of objects, inputs or a source that is not an object: MLflow answers
    # an HTML 500 (not JSON) or a 500 (AttributeError); Tally 400, and nothing is written.
    for bad in ("[{", '{"a": 1}', "[1]", json.dumps([{"inputs": {"q": "ok"}}, {"inputs": "q"}]),
                json.dumps([{"inputs": {"q": 1}, "source": "HUMAN"}])):
        call("POST", f"{DS}/{d}/records", 400, "INVALID_PARAMETER_VALUE", json={"records": bad})
    assert listed(d) == []
    # NaN for expectations or outputs (a DataFrame's missing cell, as the client sends it): MLflow 500 ("Attribute
    # 'expectations' does not accept objects of type <class 'float'>"); Tally takes it for absent. NaN and Infinity
    # as values are kept, as Python's json writes them.
    nan = '[{"inputs": {"q": "nan", "x": NaN, "y": -Infinity}, "expectations": NaN, "outputs": NaN, "tags": {"mlflow.user": "bob"}}]'
    assert call("POST", f"{DS}/{d}/records", 200, json={"records": nan}) == {"inserted_count": 1, "updated_count": 0}
    text = call("GET", f"{DS}/{d}/records", 200)["records"]
    assert '"inputs": {"q": "nan", "x": NaN, "y": -Infinity}' in text and python_json(text)
    (r,) = json.loads(text)
    assert "expectations" not in r and r["outputs"] == {} and r["created_by"] == "bob"
    schema = {"inputs": {"q": "string", "x": "float", "y": "float"}, "outputs": {}, "expectations": {}, "version": "1.0"}
    assert json.loads(one(d)["schema"]) == schema
    # An upsert without an mlflow.user tag keeps the dataset's last_updated_by (MLflow clears it).
    call("POST", f"{DS}/{d}/records", 200, json=records({"inputs": {"q": "anon"}}))
    assert one(d)["last_updated_by"] == "bob"
    # Object outputs after outputs of another type: MLflow 500 ("'str' object does not support item assignment");
    # Tally stores them, the schema's outputs staying the first type.
    call("POST", f"{DS}/{d}/records", 200, json=records({"inputs": {"q": "s"}, "outputs": "text"}))
    call("POST", f"{DS}/{d}/records", 200, json=records({"inputs": {"q": "o"}, "outputs": {"k": 1}}, {"inputs": {"q": "s"}, "outputs": {"k": 2}}))
    assert json.loads(one(d)["schema"])["outputs"] == "string"
    assert {r["inputs"]["q"]: r["outputs"] for r in listed(d)} == {"nan": {}, "anon": {}, "s": {"k": 2}, "o": {"k": 1}}
    # A source key MLflow's DatasetRecordSource does not take: MLflow 500 (unexpected keyword argument).
    source = call("POST", f"{DS}/{d}/records", 200, json=records({"inputs": {"q": "src"}, "source": {"source_type": "HUMAN", "extra": 1}}))
    assert source == {"inserted_count": 1, "updated_count": 0}
    # A records page token that is not one, a negative or non-numeric max_results: MLflow answers an HTML 500 (its
    # handler has no error wrapper); Tally 400.
    for params in ({"page_token": "garbage!!"}, {"max_results": -1}, {"max_results": "abc"}):
        call("GET", f"{DS}/{d}/records", 400, "INVALID_PARAMETER_VALUE", params=params)
    # Upserts into an unknown dataset: MLflow answers 400 (its FOREIGN KEY's IntegrityError) with records, 200 with none.
    for body in (records({"inputs": {"q": 1}}), {"records": "[]"}):
        call("POST", f"{DS}/d-{'0' * 32}/records", 404, "RESOURCE_DOES_NOT_EXIST", json=body)
    # Deleting records recounts the profile (MLflow decrements the stored count, and writes "null" at 0).
    ids = [r["dataset_record_id"] for r in listed(d)]
    assert call("DELETE", f"{DS}/{d}/records", 200, json={"dataset_record_ids": ids}) == {"deleted_count": 5}
    assert one(d)["profile"] == '{"num_records": 0}' and listed(d) == []
    # Concurrent upserts of the same inputs, and tags set meanwhile: each answered, one record per inputs.
    def write(i):
        for j in range(5):
            statuses.append(requests.post(f"{base}{DS}/{d}/records", json=records({"inputs": {"k": j}, "tags": {"w": i}})).status_code)
            statuses.append(requests.patch(f"{base}{DS}/{d}/tags", json={"tags": json.dumps({f"t{j}": i})}).status_code)
    statuses = []
    writers = [threading.Thread(target=write, args=(i,)) for i in range(4)]
    for w in writers:
        w.start()
    for w in writers:
        w.join()
    assert statuses == [200] * 40 and sorted(r["inputs"]["k"] for r in listed(d)) == list(range(5))
    assert one(d)["profile"] == '{"num_records": 5}'
    # A non-string mlflow.user at create: MLflow stores the dataset, then answers an HTML 500.
    odd = call("POST", DS + "/create", 200, json={"name": "odd", "experiment_ids": [exp], "tags": json.dumps({"mlflow.user": 5})})["dataset"]
    assert odd["created_by"] == "5" and json.loads(odd["tags"]) == {"mlflow.user": "5"}


def test_answers_where_mlflow_fails(local):
    """Requests MLflow 3.17 answers with a 500 (often Flask's HTML page), and the differences Tally makes on purpose:
    Tally's own answers."""
    tally_answers(local.url)


# ---------------------------------------------------------------------------------------------------------------------
# 4. Permissions under basic auth


def acl_scenario(s, tally):
    """Permissions of datasets, the same requests to either server (its own experiment ids put in; the searches
    marked `filtered:` to Tally only): the answers in `s.steps`, as `Session` keeps them. Few requests: MLflow's auth
    app checks the password of each, a quarter of a second."""
    users = {u: (u, u + "-password") for u in ("alice", "bob", "carol", "dave")}
    alice, bob, carol, dave = users.values()
    e1, e2 = (s(f"experiment {i}", "POST", API + "/experiments/create", json={"name": f"datasets-acl-{i}"})["experiment_id"] for i in (1, 2))
    for (u, _), e, level in ((alice, e1, "READ"), (bob, e1, "EDIT"), (carol, e1, "MANAGE"), (carol, e2, "MANAGE"), (dave, e2, "DENY")):
        if not any(st == "user " + u for st, _, _ in s.steps):
            s("user " + u, "POST", API + "/users/create", json={"username": u, "password": u + "-password"})
        s(f"grant {u} {level} on {e == e1 and 'the first' or 'the second'}", "POST", V3 + "/users/permissions/grant",
          json={"username": u, "resource_type": "experiment", "resource_id": e, "permission": level})

    def create(step, ids, who=ADMIN):
        return s(step, "POST", DS + "/create", auth=who, json={"name": step, "experiment_ids": ids}).get("dataset", {}).get("dataset_id")

    first, both, none = create("in the first", [e1]), create("in both", [e1, e2]), create("in none", [])
    unknown = "d-" + "0" * 32
    rec = records({"inputs": {"q": "a"}})
    # READ (alice's default on the second, her grant on the first): read, nothing else.
    s("alice gets the first", "GET", f"{DS}/{first}", auth=alice)
    s("alice reads its records", "GET", f"{DS}/{first}/records", auth=alice)
    s("alice reads its experiments", "GET", f"{DS}/{first}/experiment-ids", auth=alice)
    s("alice gets both", "GET", f"{DS}/{both}", auth=alice)
    s("alice on the ajax-api", "GET", f"/ajax-api/3.0/mlflow/datasets/{first}", auth=alice)
    s("alice tags the first", "PATCH", f"{DS}/{first}/tags", auth=alice, json={"tags": '{"a": "1"}'})
    s("alice upserts into the first", "POST", f"{DS}/{first}/records", auth=alice, json=rec)
    s("alice adds the first to the first", "POST", f"{DS}/{first}/add-experiments", auth=alice, json={"experiment_ids": [e1]})
    s("alice deletes the first", "DELETE", f"{DS}/{first}", auth=alice)
    # EDIT on the first (READ on the second): edits what is only in the first; adds only the first.
    s("bob tags the first", "PATCH", f"{DS}/{first}/tags", auth=bob, json={"tags": '{"b": "1"}'})
    s("bob deletes a tag of the first", "DELETE", f"{DS}/{first}/tags/b", auth=bob)
    s("bob upserts into the first", "POST", f"{DS}/{first}/records", auth=bob, json=rec)
    s("bob deletes records of the first", "DELETE", f"{DS}/{first}/records", auth=bob, json={"dataset_record_ids": ["dr-" + "1" * 32]})
    s("bob removes an experiment from the first", "POST", f"{DS}/{first}/remove-experiments", auth=bob, json={"experiment_ids": ["999999"]})
    s("bob adds the first to the first", "POST", f"{DS}/{first}/add-experiments", auth=bob, json={"experiment_ids": [e1]})
    s("bob adds the second to the first", "POST", f"{DS}/{first}/add-experiments", auth=bob, json={"experiment_ids": [e2]})
    s("bob adds none to the first", "POST", f"{DS}/{first}/add-experiments", auth=bob, json={"experiment_ids": []})
    s("bob deletes the first", "DELETE", f"{DS}/{first}", auth=bob)
    s("bob gets both", "GET", f"{DS}/{both}", auth=bob)
    s("bob tags both", "PATCH", f"{DS}/{both}/tags", auth=bob, json={"tags": '{"b": "1"}'})
    s("bob upserts into both", "POST", f"{DS}/{both}/records", auth=bob, json=rec)
    # Creating needs EDIT on every experiment named, and one at least.
    create("bob creates in the first", [e1], bob)
    create("bob creates in both", [e1, e2], bob)
    create("bob creates in none", [], bob)
    s("bob creates without experiment_ids", "POST", DS + "/create", auth=bob, json={"name": "x"})
    create("alice creates in the first", [e1], alice)
    create("carol creates in both", [e1, e2], carol)
    # MANAGE on both (carol): everything, on both.
    s("carol tags both", "PATCH", f"{DS}/{both}/tags", auth=carol, json={"tags": '{"c": "1"}'})
    s("carol adds the second to the first", "POST", f"{DS}/{first}/add-experiments", auth=carol, json={"experiment_ids": [e2]})
    s("bob tags the first, now in both", "PATCH", f"{DS}/{first}/tags", auth=bob, json={"tags": '{"b": "2"}'})
    # DENY on the second (dave): what is in the second is closed to him.
    s("dave gets both", "GET", f"{DS}/{both}", auth=dave)
    s("dave gets bob's", "GET", DS + "/" + next(b["dataset"]["dataset_id"] for st, c, b in s.steps if st == "bob creates in the first"), auth=dave)
    # A dataset in no experiment, or none at all: closed to all but the admin.
    s("alice gets none", "GET", f"{DS}/{none}", auth=alice)
    s("carol tags none", "PATCH", f"{DS}/{none}/tags", auth=carol, json={"tags": '{"c": "1"}'})
    s("alice gets an unknown", "GET", f"{DS}/{unknown}", auth=alice)
    s("carol tags an unknown", "PATCH", f"{DS}/{unknown}/tags", auth=carol, json={"tags": '{"c": "1"}'})
    s("admin gets none", "GET", f"{DS}/{none}")
    s("admin gets an unknown", "GET", f"{DS}/{unknown}")
    s("anonymous gets the first", "GET", f"{DS}/{first}", auth=None)
    s("alice searches the second", "POST", DS + "/search", auth=alice, json={"experiment_ids": [e2], "order_by": ["name"]})
    if tally:  # MLflow's auth app checks these by the experiments asked for (and refuses when none are) only
        for who, where, ids in ((dave, "the first", [e1]), (dave, "everywhere", []), (dave, "the second", [e2]), (alice, "everywhere", [])):
            s(f"filtered: {who[0]} searches {where}", "POST", DS + "/search", auth=who, json={"experiment_ids": ids, "order_by": ["name"]})
        s("filtered: dave searches with GET", "GET", DS + "/search", auth=dave, params={"experiment_ids": [e1], "order_by": "name"})
    s("carol deletes both", "DELETE", f"{DS}/{both}", auth=carol)
    s("carol deletes the first", "DELETE", f"{DS}/{first}", auth=carol)
    return e1, e2


def test_permissions_under_basic_auth(oracles):
    oracle = oracles["auth"].get()
    tally = Server("--auth", "basic", env={"MLFLOW_AUTH_ADMIN_PASSWORD": ADMIN_PASSWORD})
    theirs, ours = Session(oracle.url, auth=ADMIN), Session(tally.url, auth=ADMIN)
    try:
        their_exps, our_exps = acl_scenario(theirs, False), acl_scenario(ours, True)
        # Searches show only the datasets every experiment of which the caller may read.
        found = {step: [d["name"] for d in body.get("datasets", [])] for step, status, body in ours.steps if step.startswith("filtered:")}
        bobs = ["bob creates in the first"]  # in the first experiment only: the one dave may read
        assert found == {"filtered: dave searches the first": bobs, "filtered: dave searches everywhere": bobs,
                         "filtered: dave searches the second": [], "filtered: dave searches with GET": bobs,
                         "filtered: alice searches everywhere": ["bob creates in the first", "carol creates in both", "in both", "in the first"]}
        ours.steps = [x for x in ours.steps if not x[0].startswith("filtered:")]
        t, o = Tokens(theirs.steps, their_exps), Tokens(ours.steps, our_exps)
        problems = status_problems(theirs, ours)  # (MLflow's auth app answers refusals in plain text; Tally MLflow's error JSON)
        for (step, s1, b1), (_, s2, b2) in zip(theirs.steps, ours.steps):
            if s1 != s2 or s2 in (401, 403):
                continue
            if s1 == 200:
                problems += [f"{step}: {w}: mlflow {x!r}, tally {y!r}" for w, x, y in unequal(t.value(b1), o.value(b2))]
            elif isinstance(b1, dict) and b1.get("error_code") != (b2 or {}).get("error_code"):
                problems.append(f"{step}: mlflow {b1}, tally {b2}")
        assert not problems, "\n".join(problems)
        assert tally.proc.poll() is None
    finally:
        tally.stop()
