"""`tally import mlflow` (issue #17): a real `mlflow server` (SQLite, from the venv) is filled by the real client with
every kind of data — NaN/±Inf, negative steps, several values per step, a 30k-point history (two of MLflow's history
pages), nested runs, deleted
runs and experiments, datasets, a nested artifact tree — then imported from its database file and artifact root, and
every experiment, run, param, tag, input, history and artifact is compared field by field through MLflow's REST API
on both servers. Also: a rerun imports nothing twice, an import killed mid-run (kill -9) finishes on its rerun, runs
logged later are picked up, and a data directory a server is using is refused."""
import contextlib
import json
import math
import re
import os
import shutil
import signal
import subprocess
import tempfile
import time

import numpy as np
import pytest
import requests
from mlflow import MlflowClient
from mlflow.entities import Metric

from conftest import TALLY, MlflowServer, Server, once_per_suite

pytestmark = once_per_suite()  # imports into a data directory of its own

# The dense history's points: more than one page of MLflow's `metrics/get-history` (25,000), which an import through
# the URL reads page by page.
DENSE_POINTS = 30_000


def populate(url, work, prefix="import", points=DENSE_POINTS):
    """Fills the MLflow server at `url` (experiments `<prefix>-a`, `-b`, `-deleted`, the registered model
    `<prefix>ed-registry`, a history of `points` points); returns the ids of what it made."""
    import mlflow
    mlflow.set_tracking_uri(url)  # the fluent API's runs below go to this server
    c = MlflowClient(url)
    a = c.create_experiment(f"{prefix}-a", tags={"team": "vision", "note": "ünïcode ✓"})
    b = c.create_experiment(f"{prefix}-b")
    gone = c.create_experiment(f"{prefix}-deleted")
    r1 = c.create_run(a, run_name="dense", tags={"mlflow.user": "alice", "kind": "train"}).info.run_id
    c.log_param(r1, "lr", "0.001")
    c.log_param(r1, "layers", "[64, 128]")
    c.set_tag(r1, "long", "x" * 5000)
    now = 1_700_000_000_000
    for i in range(0, points, 1000):
        c.log_batch(r1, metrics=[Metric("loss", float(np.float32(1 / (1 + j / 1000))), now + j, j) for j in range(i, i + 1000)])
    specials = [float("nan"), float("inf"), -float("inf"), -0.0, 5e-324, 1.7976931348623157e308, -2.5]
    c.log_batch(r1, metrics=[Metric("special", v, now + k, -3 + k) for k, v in enumerate(specials)])
    # Several values at one step, timestamps out of step order, a step at both ends of int64.
    c.log_batch(r1, metrics=[Metric("multi", v, now + t, 7) for v, t in [(1.0, 5), (2.0, 3), (1.5, 5), (-1.0, 9)]])
    c.log_batch(r1, metrics=[Metric("extremes", 1.0, now, -(2**63)), Metric("extremes", 2.0, now, 2**63 - 1)])
    c.set_terminated(r1, "FINISHED", end_time=now + 200_000)
    with mlflow.start_run(experiment_id=b, run_name="parent") as parent:
        mlflow.log_metric("acc", 0.5, step=1)
        # The experiment named: a fluent-API experiment left by an earlier test module (on another server) would be used.
        with mlflow.start_run(experiment_id=b, run_name="child", nested=True) as child:
            mlflow.log_metric("acc", 0.75, step=2)
            mlflow.log_param("seed", 7)
        tree = os.path.join(work, "tree")
        os.makedirs(os.path.join(tree, "sub", "deeper"))
        with open(os.path.join(tree, "top.txt"), "w") as f:
            f.write("top\n")
        with open(os.path.join(tree, "sub", "deeper", "blob.bin"), "wb") as f:
            f.write(bytes(range(256)) * 4097)
        mlflow.log_artifacts(tree, "model")
        mlflow.log_text("hello", "notes/readme.md")
        ds = mlflow.data.from_numpy(np.arange(12.0).reshape(4, 3), source="s3://bucket/train.npy", name="train-set")
        mlflow.log_input(ds, context="training")
    # MLflow 3's model lifecycle: a logged model (artifacts, params, tags, a metric, the run's output) registered
    # twice, a version deleted, an alias and tags.
    from sklearn.linear_model import Ridge
    X = np.arange(12.0).reshape(4, 3)
    with mlflow.start_run(experiment_id=a, run_name="trainer") as trainer:
        info = mlflow.sklearn.log_model(Ridge().fit(X, X @ np.array([1.0, 2.0, 3.0])), name="ridge", params={"alpha": "1.0"}, tags={"stage": "dev"})
        mlflow.log_metric("rmse", 0.25, model_id=info.model_id, step=2)
    # A run that used the model (MLflow 3's model inputs), and a model id the run names that no model has.
    from mlflow.entities import LoggedModelInput
    c.log_inputs(parent.info.run_id, models=[LoggedModelInput(info.model_id), LoggedModelInput("m-not-logged-here")])
    reg = f"{prefix}ed-registry"
    c.create_registered_model(reg, tags={"owner": "ml"}, description="the ridge")
    for _ in range(3):
        c.create_model_version(reg, f"models:/{info.model_id}", run_id=trainer.info.run_id, model_id=info.model_id, description="v")
    c.delete_model_version(reg, "2")
    c.set_model_version_tag(reg, "3", "validated", "yes")
    c.set_registered_model_alias(reg, "champion", "3")
    c.transition_model_version_stage(reg, "1", "Staging")
    dead = c.create_run(b, run_name="deleted-run").info.run_id
    c.log_metric(dead, "x", 1.0, step=0)
    c.delete_run(dead)
    g = c.create_run(gone, run_name="in-deleted-experiment").info.run_id
    c.log_param(g, "p", "v")
    c.delete_experiment(gone)
    d = c.create_run("0", run_name="default-run").info.run_id
    c.log_metric(d, "m", 3.0)
    # MLflow 3's evaluation datasets: records merged by their inputs, outputs of every kind, a source, tags (one set
    # again: MLflow keeps its place), linked to two experiments, one of them not imported by --experiments.
    v3 = url + "/api/3.0/mlflow/datasets"
    made = requests.post(v3 + "/create", json={"name": f"{prefix}-qa", "experiment_ids": [a, b],
                                               "tags": json.dumps({"mlflow.user": "alice", "k": "v", "n": "1"})}).json()["dataset"]
    # (Object outputs first: MLflow 3.17 fails on object outputs after others.)
    records = [{"inputs": {"q": "a", "n": 1}, "expectations": {"ans": "A"}, "tags": {"mlflow.user": "bob"}},
               {"inputs": {"n": 1, "q": "a"}, "expectations": {"x": 2.5}}, {"inputs": {"q": "c"}, "outputs": {"o": [1, None]}},
               {"inputs": {"q": "é"}, "outputs": "text", "source": {"source_type": "HUMAN", "source_data": {"source_id": "h1"}}},
               {"inputs": {"q": "d"}, "outputs": None}]
    assert requests.post(v3 + f"/{made['dataset_id']}/records", json={"records": json.dumps(records)}).status_code == 200
    assert requests.patch(v3 + f"/{made['dataset_id']}/tags", json={"tags": json.dumps({"k": "w", "extra": "1"})}).status_code == 200
    # MLflow 3's registered scorers: versions (the first deleted: numbering kept), online scoring off with a filter.
    sc = url + "/api/3.0/mlflow/scorers"
    for exp, name, ser in ((a, "tone", '{"v": 1}'), (a, "tone", '{"v":  2.50}'), (a, "tone", '{"v": 3}'), (b, "safety", "{}")):
        assert requests.post(sc + "/register", json={"experiment_id": exp, "name": name, "serialized_scorer": ser}).status_code == 200
    assert requests.delete(sc + "/delete", json={"experiment_id": a, "name": "tone", "version": 1}).status_code == 200
    assert requests.put(sc + "/online-config", json={"experiment_id": a, "name": "tone", "sample_rate": 0, "filter_string": "tags.k = 'v'"}).status_code == 200
    # MLflow 3's human review: questions of each kind (the default made by a listing), a custom queue of two traces
    # (one completed), a user's own queue.
    rv = url + "/api/3.0/mlflow"
    for i in range(2):
        tinfo = {"trace_id": f"tr-{i + 1:032x}", "trace_location": {"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": a}},
                "request_time": "2024-01-01T00:00:0%d.000Z" % i, "execution_duration": "0.100s", "state": "OK"}
        assert requests.post(rv + "/traces", json={"trace": {"trace_info": tinfo}}).status_code == 200
    made_schemas = [requests.post(rv + "/label-schemas/create", json={"experiment_id": a, "name": n, "type": t, "input": i, "instruction": "why?"})
                    .json()["label_schema"]["schema_id"] for n, t, i in (
                        ("ok?", "FEEDBACK", {"pass_fail": {"positive_label": "yes", "negative_label": "no"}}),
                        ("tone", "FEEDBACK", {"categorical": {"options": ["kind", "rude"], "multi_select": True}}),
                        ("score", "EXPECTATION", {"numeric": {"min_value": 0, "max_value": 5.5}}))]
    assert requests.get(rv + "/label-schemas/list", params={"experiment_id": a}).status_code == 200
    queue = requests.post(rv + "/review-queues/create", json={"experiment_id": a, "name": "Team", "queue_type": "CUSTOM", "users": ["bob", "Ann"],
                                                             "schema_ids": made_schemas[:2]}).json()["review_queue"]["queue_id"]
    assert requests.post(rv + "/review-queues/items/add", json={"queue_id": queue, "item_ids": [f"tr-{1:032x}", f"tr-{2:032x}"]}).status_code == 200
    assert requests.post(rv + "/review-queues/items/set-status",
                         json={"queue_id": queue, "item_id": f"tr-{1:032x}", "status": "COMPLETE", "completed_by": "bob"}).status_code == 200
    assert requests.post(rv + "/review-queues/get-or-create-user", json={"experiment_id": a, "user": "carol"}).status_code == 200
    # MLflow 3's issues: one with every field (found by a run), one changed since, and references from the traces.
    made_issues = [requests.post(rv + "/issues", json={"experiment_id": a, **fields}).json()["issue"]["issue_id"] for fields in (
        {"name": "Slow", "description": "p99 > 2 s", "status": "resolved", "severity": "high", "root_causes": ["cold cache", "é"],
         "categories": ["latency"], "created_by": "alice", "source_run_id": r1},
        {"name": "Wrong", "description": "d"})]
    assert requests.patch(rv + f"/issues/{made_issues[1]}", json={"issue_id": made_issues[1], "severity": "low", "status": "rejected"}).status_code == 200
    for i, issue in ((1, made_issues[0]), (2, made_issues[0]), (2, made_issues[1])):
        ref = {"assessment_name": issue, "trace_id": f"tr-{i:032x}", "issue": {"issue_name": "n"}, "rationale": "seen",
               "source": {"source_type": "LLM_JUDGE", "source_id": "discovery"}}
        assert requests.post(rv + f"/traces/tr-{i:032x}/assessments", json={"assessment": ref}).status_code == 200
    return {"experiments": [a, b, gone], "runs": [r1, parent.info.run_id, child.info.run_id, trainer.info.run_id, dead, g, d],
            "models": [info.model_id], "registry": [reg], "datasets": [made["dataset_id"]], "scorers": [(a, "tone"), (b, "safety")],
            "review": [a], "issues": [a]}


@pytest.fixture(scope="module")
def source():
    m = MlflowServer()
    ids = populate(m.url, m.work)
    yield m, ids
    m.stop()


def api(url, method, path, **kw):
    r = requests.request(method, url + "/api/2.0/mlflow" + path, timeout=60, **kw)
    assert r.status_code == 200, (path, r.status_code, r.text[:500])
    return r.json()


def source_args(m, kind):
    """`--from` and friends for a source kind: MLflow's database file with its artifact root, or the server's URL."""
    if kind == "url":
        return ["--from", m.url]
    return ["--from", "sqlite:///" + os.path.join(m.work, "m.db"), "--artifacts-from", m.artifacts]


def import_into(m, data_dir, *extra, check=True, kind="db"):
    return subprocess.run([TALLY, "import", "mlflow", *source_args(m, kind), "--data-dir", data_dir, *extra],
                          capture_output=True, text=True, timeout=600, check=check)


def experiments(url):
    return {e["experiment_id"]: e for e in api(url, "GET", "/experiments/search", params={"view_type": "ALL", "max_results": 1000})["experiments"]}


def runs(url, experiment_ids):
    out = {}
    for e in experiment_ids:
        for r in api(url, "POST", "/runs/search", json={"experiment_ids": [e], "run_view_type": "ALL", "max_results": 1000}).get("runs", []):
            out[r["info"]["run_id"]] = r
    return out


def history(url, run_id, key, ordered=False):
    """A metric's whole history as (step, timestamp, value repr): sorted, or (`ordered`) in the server's order."""
    points, token = [], None
    while True:
        params = {"run_id": run_id, "metric_key": key, "max_results": 25000}
        if token:
            params["page_token"] = token
        page = api(url, "GET", "/metrics/get-history", params=params)
        points += page.get("metrics", [])
        token = page.get("next_page_token")
        if not token:
            got = [(p["step"], p["timestamp"], repr(float(p["value"]))) for p in points]
            return got if ordered else sorted(got)


def artifact_files(url, run_id, path=""):
    out = {}
    listing = api(url, "GET", "/artifacts/list", params={"run_id": run_id, "path": path})
    for f in listing.get("files", []):
        if f["is_dir"]:
            out.update(artifact_files(url, run_id, f["path"]))
        else:
            out[f["path"]] = int(f["file_size"])
    return out


def artifact_bytes(url, run_id, path):
    r = requests.get(url + "/get-artifact", params={"run_uuid": run_id, "path": path}, timeout=60)
    assert r.status_code == 200, (path, r.status_code)
    return r.content


def expect_same_served(m, d, ids):
    """Starts a Tally server on the directory `d` (kept) and compares it with the MLflow server `m`."""
    s = Server(directory=d)
    try:
        expect_same(m.url, s.url, ids)
    finally:
        s.stop(keep=True)


def by_key(items):
    return sorted((i["key"], i["value"]) for i in items)


def scorer_versions(url, experiment_id, name):
    """A registered scorer's versions as the server lists them."""
    return requests.get(url + "/api/3.0/mlflow/scorers/versions", params={"experiment_id": experiment_id, "name": name}).json()["scorers"]


def expect_same(mlflow_url, tally_url, ids):
    """Every experiment, run, param, tag, latest value, input, history and artifact the same on both servers."""
    me, te = experiments(mlflow_url), experiments(tally_url)
    for eid in ["0", *ids["experiments"]]:
        a, b = me[eid], te[eid]
        assert (a["name"], a["lifecycle_stage"]) == (b["name"], b["lifecycle_stage"]), eid
        if eid != "0":  # Tally's Default is its own; the others keep MLflow's times and tags
            assert by_key(a.get("tags", [])) == by_key(b.get("tags", [])), eid
            assert (a.get("creation_time"), a.get("last_update_time")) == (b.get("creation_time"), b.get("last_update_time")), eid
        assert b["artifact_location"] == "mlflow-artifacts:/" + eid
    mr, tr = runs(mlflow_url, ["0", *ids["experiments"]]), runs(tally_url, ["0", *ids["experiments"]])
    assert set(mr) == set(tr) and set(ids["runs"]) <= set(tr)
    for rid, a in mr.items():
        b = tr[rid]
        ai, bi = a["info"], b["info"]
        for field in ["run_id", "run_name", "experiment_id", "user_id", "status", "start_time", "end_time", "lifecycle_stage"]:
            assert ai.get(field) == bi.get(field), (rid, field)
        assert bi["artifact_uri"] == f"mlflow-artifacts:/{ai['experiment_id']}/{rid}/artifacts"
        ad, bd = a.get("data", {}), b.get("data", {})
        assert by_key(ad.get("params", [])) == by_key(bd.get("params", [])), rid
        assert by_key(ad.get("tags", [])) == by_key(bd.get("tags", [])), rid
        latest = lambda d: sorted((m["key"], m["step"], m["timestamp"], repr(float(m["value"]))) for m in d.get("metrics", []))
        assert latest(ad) == latest(bd), rid
        ins = lambda r: sorted((i["dataset"]["name"], i["dataset"]["digest"], i["dataset"]["source"], i["dataset"].get("schema"),
                                by_key(i.get("tags", []))) for i in r.get("inputs", {}).get("dataset_inputs", []))
        assert ins(a) == ins(b), rid
        for m in ad.get("metrics", []):
            assert history(mlflow_url, rid, m["key"]) == history(tally_url, rid, m["key"]), (rid, m["key"])
        files = artifact_files(mlflow_url, rid)
        assert files == artifact_files(tally_url, rid), rid
        for path in files:
            assert artifact_bytes(mlflow_url, rid, path) == artifact_bytes(tally_url, rid, path), (rid, path)
        model_inputs = lambda url: sorted(i["model_id"] for i in api(url, "GET", "/runs/get", params={"run_id": rid})["run"]["inputs"].get("model_inputs", []))
        assert model_inputs(mlflow_url) == model_inputs(tally_url), rid
        outputs = lambda r: [(o["model_id"], o.get("step")) for o in r.get("outputs", {}).get("model_outputs", [])]
        assert outputs(api(mlflow_url, "GET", "/runs/get", params={"run_id": rid})["run"]) == outputs(api(tally_url, "GET", "/runs/get", params={"run_id": rid})["run"]), rid
    for mid in ids.get("models", []):
        a = api(mlflow_url, "GET", f"/logged-models/{mid}")["model"]
        b = api(tally_url, "GET", f"/logged-models/{mid}")["model"]
        for field in ["model_id", "name", "experiment_id", "status", "source_run_id", "creation_timestamp_ms", "last_updated_timestamp_ms",
                      "model_type", "artifact_uri"]:
            if field == "artifact_uri" and a["info"][field].startswith("s3://"):  # copied into Tally's own store
                assert b["info"][field] == f"mlflow-artifacts:/{a['info']['experiment_id']}/models/{mid}/artifacts", b["info"][field]
                continue
            assert a["info"].get(field) == b["info"].get(field), (mid, field)
        assert by_key(a["info"].get("tags", [])) == by_key(b["info"].get("tags", []))
        assert by_key(a["data"].get("params", [])) == by_key(b["data"].get("params", []))
        metric = lambda m: sorted((x["key"], x["value"], x["step"], x["timestamp"], x.get("run_id")) for x in m["data"].get("metrics", []))
        assert metric(a) == metric(b), mid
        trees = []
        for url in [mlflow_url, tally_url]:
            dst = tempfile.mkdtemp(prefix="tally-import-model-")
            import mlflow.artifacts
            root = mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{mid}", dst_path=dst, tracking_uri=url)
            tree = {}
            for dirpath, _, names in os.walk(root):
                for n in names:
                    full = os.path.join(dirpath, n)
                    tree[os.path.relpath(full, root)] = open(full, "rb").read()
            trees.append(tree)
            shutil.rmtree(dst, ignore_errors=True)
        assert trees[0] == trees[1] and "MLmodel" in trees[0], sorted(trees[1])
    for did in ids.get("datasets", []):
        # The dataset and its records as MLflow answers them, field for field (ids, times, digest, schema, profile
        # kept), with the same experiments.
        got = [requests.get(url + f"/api/3.0/mlflow/datasets/{did}").json()["dataset"] for url in [mlflow_url, tally_url]]
        # Tags in the order of MLflow's rows: SQLite's keeps a tag set again in its place, PostgreSQL's physical order
        # may not, and MLflow's API shows neither reliably there, so they are compared as a dict.
        tags = [json.loads(g.pop("tags")) for g in got]
        assert got[0] == got[1] and tags[0] == tags[1], (got, tags)
        links = [requests.get(url + f"/api/3.0/mlflow/datasets/{did}/experiment-ids").json() for url in [mlflow_url, tally_url]]
        assert links[0] == links[1] and len(links[0]["experiment_ids"]) == 2, links
        listed = [requests.get(url + f"/api/3.0/mlflow/datasets/{did}/records").json()["records"] for url in [mlflow_url, tally_url]]
        assert json.loads(listed[0]) == json.loads(listed[1]) and len(json.loads(listed[0])) == 4, listed
    for exp, name in ids.get("scorers", []):
        # Every version as MLflow lists it (ids, numbers, definitions, times kept), and the online-scoring settings.
        got = [scorer_versions(url, exp, name) for url in [mlflow_url, tally_url]]
        assert got[0] == got[1] and got[0], got
        sid = got[0][0]["scorer_id"]
        configs = [requests.get(url + "/api/3.0/mlflow/scorers/online-configs", params={"scorer_ids": [sid]}).json() for url in [mlflow_url, tally_url]]
        assert configs[0] == configs[1], configs
    for exp in ids.get("review", []):
        # Label schemas, queues and items as MLflow lists them: ids, owners, reviewers, questions, statuses and times kept.
        v3 = "/api/3.0/mlflow"
        listing = lambda url, path, **params: requests.get(url + v3 + path, params=params).json()
        got = [listing(url, "/label-schemas/list", experiment_id=exp) for url in [mlflow_url, tally_url]]
        assert got[0] == got[1] and len(got[0]["label_schemas"]) == 4, got
        got = [listing(url, "/review-queues/list", experiment_id=exp) for url in [mlflow_url, tally_url]]
        assert got[0] == got[1] and len(got[0]["review_queues"]) == 2, got
        for q in got[0]["review_queues"]:
            items = [listing(url, "/review-queues/items/list", queue_id=q["queue_id"]) for url in [mlflow_url, tally_url]]
            assert items[0] == items[1], items
    for exp in ids.get("issues", []):
        # Issues as MLflow lists them (ids, fields, times, trace counts kept), and the traces each one's search finds.
        search = lambda url: requests.post(url + "/api/3.0/mlflow/issues/search", json={"experiment_id": exp, "include_trace_count": True}).json()
        got = [search(url) for url in [mlflow_url, tally_url]]
        assert got[0] == got[1] and [i["trace_count"] for i in got[0]["issues"]] == [2, 1], got
        for i in got[0]["issues"]:
            found = [requests.post(url + "/api/3.0/mlflow/traces/search", json={"locations": [{"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {
                "experiment_id": exp}}], "filter": f"issue.id = '{i['issue_id']}'"}).json() for url in [mlflow_url, tally_url]]
            assert [sorted(t["trace_id"] for t in f["traces"]) for f in found][0] == [sorted(t["trace_id"] for t in f["traces"]) for f in found][1], found
    for name in ids.get("registry", []):
        a = api(mlflow_url, "GET", "/registered-models/get", params={"name": name})["registered_model"]
        b = api(tally_url, "GET", "/registered-models/get", params={"name": name})["registered_model"]
        for field in ["name", "creation_timestamp", "last_updated_timestamp", "description"]:
            assert a.get(field) == b.get(field), (name, field)
        assert by_key(a.get("tags", [])) == by_key(b.get("tags", []))
        assert sorted((x["alias"], x["version"]) for x in a.get("aliases", [])) == sorted((x["alias"], x["version"]) for x in b.get("aliases", []))
        versions = lambda url: {v["version"]: v for v in api(url, "GET", "/model-versions/search", params={"filter": f"name='{name}'"})["model_versions"]}
        va, vb = versions(mlflow_url), versions(tally_url)
        assert set(va) == set(vb), name
        for n, v in va.items():
            for field in ["version", "creation_timestamp", "last_updated_timestamp", "current_stage", "description", "source", "run_id",
                          "run_link", "status"]:
                assert v.get(field) == vb[n].get(field), (name, n, field)
            assert by_key(v.get("tags", [])) == by_key(vb[n].get("tags", []))
            assert sorted(v.get("aliases", [])) == sorted(vb[n].get("aliases", []))


@pytest.mark.parametrize("kind", ["db", "url"])
def test_import_matches_mlflow_field_by_field(source, kind):
    m, ids = source
    d = tempfile.mkdtemp(prefix="tally-import-")
    try:
        started = int(time.time() * 1000)
        out = import_into(m, os.path.join(d, "data"), kind=kind)
        assert "metric points" in out.stdout and "runs" in out.stdout, out.stdout
        assert "warning" not in out.stderr, out.stderr
        # Deleted runs keep the time MLflow deleted them (what `tally gc --older-than` counts from); through the API,
        # which does not show it, they take the import's.
        import sqlite3
        deleted = "SELECT run_uuid, deleted_time FROM runs WHERE lifecycle_stage = 'deleted'"
        with contextlib.closing(sqlite3.connect(os.path.join(d, "data", "metadata.sqlite"))) as db:
            ours = dict(db.execute(deleted).fetchall())
        with contextlib.closing(sqlite3.connect(os.path.join(m.work, "m.db"))) as db:
            theirs = dict(db.execute(deleted).fetchall())
        assert set(ours) == set(theirs) and ours and all(theirs.values()), (ours, theirs)
        assert ours == theirs if kind == "db" else all(t >= started for t in ours.values()), (ours, theirs)
        # Provenance: the source and its generation in the summary and the journal, no tag of the import's own.
        if kind == "db":
            import sqlite3
            revision = sqlite3.connect(os.path.join(m.work, "m.db")).execute("SELECT version_num FROM alembic_version").fetchone()[0]
            provenance = f"MLflow schema {revision}"
            assert f"m.db ({provenance})" in out.stdout, out.stdout
        else:
            import mlflow
            provenance = f"MLflow server {mlflow.__version__}"
            assert f"{m.url} ({provenance})" in out.stdout, out.stdout
        journal = open(os.path.join(d, "data", "imports", os.listdir(os.path.join(d, "data", "imports"))[0])).read()
        assert "\nimported " in journal and int(re.search(r"points=(\d+)", journal).group(1)) > DENSE_POINTS and "from=" + provenance.replace(" ", "_") in journal, journal[-300:]
        s = Server(directory=d)
        try:
            expect_same(m.url, s.url, ids)
            r1 = ids["runs"][0]
            assert len(history(s.url, r1, "loss")) == DENSE_POINTS
            special = {p[0]: p[2] for p in history(s.url, r1, "special")}
            # What MLflow's database holds: NaN, ±Inf stored as ±max double, -0.0 stored as 0.0 by SQLite.
            assert special[-3] == "nan" and special[-2] == repr(1.7976931348623157e308) and special[-1] == repr(-1.7976931348623157e308)
            assert special[0] == "0.0" and special[1] == repr(5e-324)
            # Values sharing a step come back in MLflow's order (timestamp, then value), not sorted by value.
            assert history(s.url, r1, "multi", ordered=True) == history(m.url, r1, "multi", ordered=True)
            assert [p[2] for p in history(s.url, r1, "multi", ordered=True)] == ["2.0", "1.0", "1.5", "-1.0"]
        finally:
            s.stop(keep=True)
        # A second import of the same source changes nothing, and --verify finds every run equal.
        again = import_into(m, os.path.join(d, "data"), "--verify", kind=kind)
        assert "verify: every run matches the source" in again.stdout, again.stdout
        line = next(l for l in again.stdout.splitlines() if l.strip().startswith("runs ") or l.strip().startswith("runs\t"))
        assert line.split()[-1] == "0", again.stdout
        expect_same_served(m, d, ids)
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.mark.parametrize("kind", ["db", "url"])
def test_dry_run_counts_and_writes_nothing(source, kind):
    m, _ = source
    d = tempfile.mkdtemp(prefix="tally-import-dry-")
    try:
        out = import_into(m, os.path.join(d, "data"), "--dry-run", kind=kind)
        assert "dry run" in out.stdout
        points = int(next(l for l in out.stdout.splitlines() if "metric points" in l).split()[-1])
        assert points == DENSE_POINTS + 7 + 4 + 2 + 1 + 1 + 1 + 1 + 1  # the last: the trainer's rmse, logged to its model and its run
        assert not os.path.exists(os.path.join(d, "data", "imports"))
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.mark.parametrize("kind", ["db", "url"])
def test_experiments_and_since_select_what_is_imported(source, kind):
    m, ids = source
    d = tempfile.mkdtemp(prefix="tally-import-select-")
    data = os.path.join(d, "data")
    try:
        c = MlflowClient(m.url)
        b_runs = {r.info.run_id: r.info.start_time for r in c.search_runs([ids["experiments"][1]], run_view_type=3)}
        newest = max(b_runs.values())
        # By name and by id (import-b is experiment ids[1]; Default by id); --since keeps runs started at or after it.
        out = import_into(m, data, "--experiments", f"import-b, 0", "--since", str(newest), kind=kind)
        s = Server(directory=d)
        try:
            got = runs(s.url, ["0", ids["experiments"][1]])
            want = {rid for rid, t in b_runs.items() if t >= newest}
            want |= {r.info.run_id for r in c.search_runs(["0"], run_view_type=3) if r.info.start_time >= newest}
            assert set(got) == want and want, (sorted(got), sorted(want))
            assert ids["experiments"][0] not in experiments(s.url)  # not selected: not created
        finally:
            s.stop(keep=True)
        bad = import_into(m, data, "--experiments", "no-such-experiment", check=False, kind=kind)
        assert bad.returncode != 0 and "No experiment 'no-such-experiment'" in bad.stderr, bad.stderr
        bad = import_into(m, data, "--since", "yesterday", check=False, kind=kind)
        assert bad.returncode != 0 and "--since 'yesterday'" in bad.stderr, bad.stderr
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.mark.parametrize("kind", ["db", "url"])
def test_a_killed_import_finishes_on_rerun_and_later_runs_are_picked_up(source, kind):
    m, ids = source
    d = tempfile.mkdtemp(prefix="tally-import-kill-")
    data = os.path.join(d, "data")
    try:
        cmd = [TALLY, "import", "mlflow", *source_args(m, kind), "--data-dir", data]
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        killed_mid_run = False
        deadline = time.time() + 120
        while p.poll() is None and time.time() < deadline:
            journals = [os.path.join(data, "imports", f) for f in os.listdir(os.path.join(data, "imports"))] if os.path.isdir(os.path.join(data, "imports")) else []
            text = open(journals[0]).read() if journals else ""
            if text.count("\nbegin ") > text.count("\ndone "):
                p.send_signal(signal.SIGKILL)
                killed_mid_run = True
                break
            time.sleep(0.002)
        p.wait()
        import_into(m, data, kind=kind)
        expect_same_served(m, d, ids)
        # A run logged in MLflow after the import: the rerun imports it alone.
        c = MlflowClient(m.url)
        late = c.create_run(ids["experiments"][0], run_name="late").info.run_id
        c.log_metric(late, "loss", 0.25, step=3)
        out = import_into(m, data, kind=kind)
        row = lambda out, name: next(l for l in out.stdout.splitlines() if l.strip().startswith(name + "  ")).split()[-1]
        assert row(out, "runs") == "1" and row(out, "runs updated") == "0", out.stdout
        # It goes on logging and finishes: the next rerun imports it again, whole, and nothing else.
        c.log_metric(late, "loss", 0.125, step=4)
        c.log_param(late, "late-param", "1")
        c.set_terminated(late, "KILLED")
        # The registry and the logged model change in MLflow too: a new version, an alias, a model tag.
        reg, mid = ids["registry"][0], ids["models"][0]
        c.create_model_version(reg, f"models:/{mid}", model_id=mid, description="v4")
        c.set_registered_model_alias(reg, "previous", "1")
        c.set_logged_model_tags(mid, {"reviewed": kind})  # a new value whichever kind runs first
        # A scorer gains a version: the rerun replaces it whole, the other scorer left as it is.
        exp, name = ids["scorers"][0]
        assert requests.post(m.url + "/api/3.0/mlflow/scorers/register",
                             json={"experiment_id": exp, "name": name, "serialized_scorer": json.dumps({"late": kind})}).status_code == 200
        # A review item declined (then, on the other kind's turn, reopened): the rerun replaces the experiment's review.
        queue = requests.get(m.url + "/api/3.0/mlflow/review-queues/get-by-name", params={"experiment_id": ids["review"][0], "name": "team"}).json()
        status = {"status": "DECLINED", "completed_by": "ann"} if kind == "db" else {"status": "PENDING"}
        assert requests.post(m.url + "/api/3.0/mlflow/review-queues/items/set-status",
                             json={"queue_id": queue["review_queue"]["queue_id"], "item_id": f"tr-{1:032x}", **status}).status_code == 200
        out = import_into(m, data, "--verify", kind=kind)
        assert row(out, "runs") == "0" and row(out, "runs updated") == "1" and row(out, "metric points") == "2", out.stdout
        assert row(out, "review queues") == "2" and row(out, "review items") == "2", out.stdout
        assert row(out, "registered models updated") == "1" and row(out, "logged models updated") == "1", out.stdout
        assert row(out, "scorers") == "1" and row(out, "scorer versions") == str(len(scorer_versions(m.url, exp, name))), out.stdout
        s = Server(directory=d)
        try:
            expect_same(m.url, s.url, {**ids, "runs": ids["runs"] + [late]})
            # A point logged to Tally's copy only: --verify reports the difference and exits 1.
            api(s.url, "POST", "/runs/log-metric", json={"run_id": late, "key": "loss", "value": 9.0, "timestamp": 1, "step": 99})
        finally:
            s.stop(keep=True)
        out = import_into(m, data, "--verify", check=False, kind=kind)
        assert out.returncode == 1 and f"verify: run {late}, metric loss: 2 points vs 3" in out.stdout, out.stdout
        print("killed mid-run:", killed_mid_run)
    finally:
        shutil.rmtree(d, ignore_errors=True)


MLFLOW2 = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), ".venv-mlflow2", "bin", "python")

# Run by MLflow 2.9 (`.venv-mlflow2`, made by scripts/bootstrap): its client writes the SQLite file directly.
WRITE_MLFLOW2 = r"""
import json, os, sys
import mlflow
from mlflow import MlflowClient
from mlflow.entities import Metric
work = sys.argv[1]
mlflow.set_tracking_uri("sqlite:///" + os.path.join(work, "old.db"))
c = MlflowClient()
a = c.create_experiment("old-a", artifact_location=os.path.join(work, "art", "a"), tags={"gen": "2.9"})
b = c.create_experiment("old-b", artifact_location=os.path.join(work, "art", "b"))
r = c.create_run(a, run_name="old-run", tags={"k": "v"}).info.run_id
c.log_batch(r, metrics=[Metric("loss", 1.0 / (1 + i), 1_600_000_000_000 + i, i) for i in range(5000)])
c.log_batch(r, metrics=[Metric("special", v, 1_600_000_000_000, k) for k, v in enumerate([float("nan"), float("inf"), -float("inf"), -0.0])])
c.log_batch(r, metrics=[Metric("multi", v, 1_600_000_000_000 + t, 3) for v, t in [(2.0, 1), (1.0, 1), (0.5, 0)]])
c.log_param(r, "opt", "adam")
c.log_text(r, "old text", "dir/file.txt")
c.set_terminated(r, "FAILED")
child = c.create_run(a, run_name="child", tags={"mlflow.parentRunId": r}).info.run_id
c.log_metric(child, "acc", 0.25, step=-5)
gone = c.create_run(b, run_name="gone").info.run_id
c.delete_run(gone)
c.delete_experiment(b)
print(json.dumps({"experiments": [a, b], "runs": [r, child, gone]}))
"""


def test_import_from_an_mlflow_2_database():
    """A database of the previous generation (MLflow 2.9: no logged-model tables, no inputs.step) imports the same
    way; the oracle is MLflow 3.17 serving a copy of it (which it upgrades on start)."""
    import json
    work = tempfile.mkdtemp(prefix="tally-import-m2-")
    try:
        # In `work`: MLflow 2.9's SQL store makes its default artifact root, ./mlruns, wherever it runs.
        made = subprocess.run([MLFLOW2, "-c", WRITE_MLFLOW2, work], capture_output=True, text=True, timeout=300, check=True, cwd=work)
        ids = json.loads(made.stdout.strip().splitlines()[-1])
        db = os.path.join(work, "old.db")
        import sqlite3
        assert sqlite3.connect(db).execute("SELECT version_num FROM alembic_version").fetchone()[0] == "acf3f17fdcc7"
        out = subprocess.run([TALLY, "import", "mlflow", "--from", "sqlite:///" + db, "--data-dir", os.path.join(work, "data")],
                             capture_output=True, text=True, timeout=600, check=True)
        assert "warning" not in out.stderr, out.stderr
        s = Server(directory=work)
        m = MlflowServer(db=db)
        try:
            expect_same(m.url, s.url, ids)
            assert len(history(s.url, ids["runs"][0], "loss")) == 5000
        finally:
            m.stop()
            s.stop(keep=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_a_data_directory_in_use_is_refused(source):
    m, _ = source
    s = Server()
    try:
        out = import_into(m, os.path.join(s.dir, "data"), check=False)
        assert out.returncode != 0
        assert "in use" in out.stderr and "stop the server" in out.stderr, out.stderr
    finally:
        s.stop()


def test_import_from_a_url_behind_mlflow_basic_auth():
    """A server behind MLflow's basic-auth app: refused without credentials (its 401 named), imported with them from
    MLflow's client variables or from the URL, artifacts included (read through the server)."""
    password = "admin-password-1"
    m = MlflowServer("--app-name", "basic-auth", env={"MLFLOW_AUTH_ADMIN_PASSWORD": password, "MLFLOW_FLASK_SERVER_SECRET_KEY": "tally-tests"})
    d = tempfile.mkdtemp(prefix="tally-import-auth-")
    try:
        env = {**os.environ, "MLFLOW_TRACKING_USERNAME": "admin", "MLFLOW_TRACKING_PASSWORD": password}
        old = {k: os.environ.get(k) for k in ["MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"]}
        os.environ.update({"MLFLOW_TRACKING_USERNAME": "admin", "MLFLOW_TRACKING_PASSWORD": password})
        try:
            c = MlflowClient(m.url)
            e = c.create_experiment("secured")
            r = c.create_run(e, run_name="behind-auth").info.run_id
            c.log_batch(r, metrics=[Metric("loss", 1 / (1 + i), 1_700_000_000_000 + i, i) for i in range(3000)])
            c.log_text(r, "secret notes", "notes/n.txt")
        finally:
            for k, v in old.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        clean = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_TRACKING_")}
        cmd = lambda url, data: [TALLY, "import", "mlflow", "--from", url, "--data-dir", os.path.join(d, data, "data")]
        refused = subprocess.run(cmd(m.url, "none"), capture_output=True, text=True, timeout=120, env=clean)
        assert refused.returncode != 0 and "answered 401" in refused.stderr, refused.stderr
        for data, url, run_env in [("by-env", m.url, env), ("by-url", m.url.replace("http://", f"http://admin:{password}@"), clean)]:
            subprocess.run(cmd(url, data), capture_output=True, text=True, timeout=300, env=run_env, check=True)
            s = Server(directory=os.path.join(d, data))
            try:
                assert len(history(s.url, r, "loss")) == 3000
                assert artifact_bytes(s.url, r, "notes/n.txt") == b"secret notes"
            finally:
                s.stop(keep=True)
    finally:
        m.stop()
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def odd_source():
    """An MLflow server of its own (the module's source is compared field by field elsewhere) holding what MLflow
    keeps and Tally cannot: NUL in a run's name, a param and a tag; metric keys that are canonically equivalent
    (`K` and the Kelvin sign), and one whose only spelling is not in NFC (the Angstrom sign)."""
    m = MlflowServer()
    exp = api(m.url, "POST", "/experiments/create", json={"name": "odd"})["experiment_id"]
    nul = api(m.url, "POST", "/runs/create", json={"experiment_id": exp, "run_name": "r\u0000n"})["run"]["info"]["run_id"]
    api(m.url, "POST", "/runs/log-batch", json={"run_id": nul, "params": [{"key": "p", "value": "x\u0000y"}],
                                                 "tags": [{"key": "t", "value": "a\u0000b\u0000"}],
                                                 "metrics": [{"key": "m", "value": 1.5, "timestamp": 1, "step": 0}]})
    assert api(m.url, "GET", "/runs/get", params={"run_id": nul})["run"]["data"]["params"] == [{"key": "p", "value": "x\u0000y"}]
    kelvin = api(m.url, "POST", "/runs/create", json={"experiment_id": exp})["run"]["info"]["run_id"]
    api(m.url, "POST", "/runs/log-batch", json={"run_id": kelvin, "metrics": [
        {"key": "K", "value": 1, "timestamp": 1, "step": 0}, {"key": "\u212a", "value": 2, "timestamp": 1, "step": 0},
        {"key": "\u212a", "value": 3, "timestamp": 1, "step": 1}, {"key": "\u212b", "value": 4, "timestamp": 1, "step": 0}]})
    yield m, nul, kelvin
    m.stop()


def import_and_serve(m, kind):
    """Imports `m` into a fresh directory; (stderr, a server on it)."""
    d = tempfile.mkdtemp(prefix="tally-odd-")
    out = import_into(m, os.path.join(d, "data"), kind=kind)
    return out.stderr, Server(directory=d)


@pytest.mark.parametrize("kind", ["db", "url"])
def test_texts_with_nul_are_imported_with_replacement_characters(odd_source, kind):
    """MLflow on SQLite keeps NUL in a run's name, tags and params; Tally refuses NUL everywhere (PostgreSQL cannot
    hold it). Both source kinds read each NUL as U+FFFD, the import says so, and the run is served whole."""
    m, run, _ = odd_source
    stderr, s = import_and_serve(m, kind)
    try:
        assert "texts of the source held NUL characters" in stderr, stderr
        got = api(s.url, "GET", "/runs/get", params={"run_id": run})["run"]
        assert got["info"]["run_name"] == "r\ufffdn"
        assert got["data"]["params"] == [{"key": "p", "value": "x\ufffdy"}]
        assert {"key": "t", "value": "a\ufffdb\ufffd"} in got["data"]["tags"]
        assert got["data"]["metrics"][0]["value"] == 1.5
    finally:
        s.stop()


@pytest.mark.parametrize("kind", ["db", "url"])
def test_canonically_equivalent_metric_keys_are_never_merged(odd_source, kind):
    """MLflow keeps `K` and the Kelvin sign as two series; Tally's store cannot keep them apart (and takes NFC keys
    only). `K` is imported as it is, the Kelvin series is left out with a warning instead of being merged into it
    (it was, or lost from a URL), and the Angstrom sign, alone, is imported as its NFC form `Å`."""
    m, _, run = odd_source
    stderr, s = import_and_serve(m, kind)
    try:
        assert "metric 'U+212A' not imported" in stderr and "metric 'U+212B' imported as '\u00c5'" in stderr, stderr
        history = lambda key: [(p["step"], p["value"]) for p in api(s.url, "GET", "/metrics/get-history", params={"run_id": run, "metric_key": key}).get("metrics", [])]
        assert history("K") == [(0, 1.0)]
        assert history("\u00c5") == [(0, 4.0)]
        assert sorted((x["key"], x["value"]) for x in api(s.url, "GET", "/runs/get", params={"run_id": run})["run"]["data"]["metrics"]) == [("K", 1.0), ("\u00c5", 4.0)]
    finally:
        s.stop()


def prompt_state(url):
    """Every prompt as the client loads it (its tags; each version's template, commit message, tags, response format
    and aliases), and the plain registered models."""
    c = MlflowClient(url)
    out = {}
    for p in c.search_prompts():
        versions = {}
        for v in c.search_prompt_versions(p.name):
            got = c.load_prompt(p.name, version=v.version, cache_ttl_seconds=0)
            versions[got.version] = (got.template, got.commit_message, dict(got.tags), got.response_format, sorted(got.aliases or []))
        out[p.name] = (dict(c.get_prompt(p.name).tags), versions)
    return out, sorted(m.name for m in c.search_registered_models())


def test_prompts_come_along_from_the_database_and_through_the_url():
    """MLflow 3 keeps prompts in the registry (registered models and versions tagged `mlflow.prompt.is_prompt`),
    hidden from its searches unless they ask for them: imported from the database and through the REST API alike,
    text and chat prompts load through Tally as through MLflow (versions, commit messages, tags, response format,
    aliases), a plain model stays a model; exported back, they load the same through a fresh MLflow."""
    m = MlflowServer()
    work = tempfile.mkdtemp(prefix="tally-import-prompts-")
    try:
        c = MlflowClient(m.url)
        c.register_prompt("summarize", "Summarize: {{text}}", commit_message="first", tags={"team": "nlp"})
        c.register_prompt("summarize", [{"role": "system", "content": "Be brief"}, {"role": "user", "content": "{{text}}"}],
                          commit_message="chat", response_format={"type": "object", "properties": {"summary": {"type": "string"}}})
        c.set_prompt_alias("summarize", "prod", 1)
        c.register_prompt("qa.v2-short", "Q: {{q}}")
        c.create_registered_model("plain-model")
        want = prompt_state(m.url)
        assert set(want[0]) == {"summarize", "qa.v2-short"} and want[1] == ["plain-model"]
        assert want[0]["summarize"][1][1][4] == ["prod"] and want[0]["summarize"][1][2][4] == []
        for kind in ("db", "url"):
            d = os.path.join(work, kind)
            import_into(m, os.path.join(d, "data"), kind=kind)
            s = Server(directory=d)
            try:
                assert prompt_state(s.url) == want, kind
            finally:
                s.stop(keep=True)
        fresh = MlflowServer()
        try:
            subprocess.run([TALLY, "export", "mlflow", "--to", fresh.url, "--data-dir", os.path.join(work, "url", "data")],
                           capture_output=True, text=True, timeout=600, check=True)
            assert prompt_state(fresh.url) == want
        finally:
            fresh.stop()
    finally:
        m.stop()
        shutil.rmtree(work, ignore_errors=True)
