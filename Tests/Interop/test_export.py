"""`tally export mlflow` (issue #17): MLflow → `tally import` → Tally → `tally export` → a fresh MLflow, then every
experiment, run, param, tag, latest value, input, history and artifact compared field by field between the two
MLflow servers through MLflow's REST API (run ids are MLflow's new ones: runs are matched by experiment and name,
parent tags by the parents' new ids). Also: an export killed mid-run (kill -9) finishes on its rerun without
duplicating anything, and a rerun sends only what Tally gained since."""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time

import pytest
import requests

from conftest import TALLY, MlflowServer, Server, once_per_suite
from test_import import api, artifact_bytes, artifact_files, by_key, experiments, history, populate, runs

pytestmark = once_per_suite(shifted=True)  # exports a data directory of its own


@pytest.fixture(scope="module")
def tally_copy():
    """An MLflow server filled by the client, and a Tally data directory imported from it."""
    m = MlflowServer()
    populate(m.url, m.work, prefix="export", points=30_000)
    d = tempfile.mkdtemp(prefix="tally-export-")
    subprocess.run([TALLY, "import", "mlflow", "--from", m.url, "--data-dir", os.path.join(d, "data")], capture_output=True, text=True,
                   timeout=600, check=True)
    shutil.copytree(os.path.join(d, "data"), os.path.join(d, "as-imported"))  # for tests that need it unchanged
    yield m, d
    m.stop()
    shutil.rmtree(d, ignore_errors=True)


def export(d, url, *extra, check=True):
    out = subprocess.run([TALLY, "export", "mlflow", "--to", url, "--data-dir", os.path.join(d, "data"), *extra],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0 or not check, (out.stdout, out.stderr)
    return out


def named_runs(url):
    """Every run by (experiment name, run name)."""
    names = {e["experiment_id"]: e["name"] for e in experiments(url).values()}
    out = {}
    for rid, r in runs(url, list(names)).items():
        key = (names[r["info"]["experiment_id"]], r["info"]["run_name"])
        assert key not in out, key
        out[key] = r
    return out


def expect_same_by_name(a_url, b_url):
    ea = {e["name"]: e for e in experiments(a_url).values()}
    eb = {e["name"]: e for e in experiments(b_url).values()}
    assert set(ea) == set(eb)
    for name, e in ea.items():
        assert e["lifecycle_stage"] == eb[name]["lifecycle_stage"], name
        assert by_key(e.get("tags", [])) == by_key(eb[name].get("tags", [])), name
    ra, rb = named_runs(a_url), named_runs(b_url)
    assert set(ra) == set(rb), (sorted(ra), sorted(rb))
    new_id = {ra[k]["info"]["run_id"]: rb[k]["info"]["run_id"] for k in ra}
    for k, a in ra.items():
        b = rb[k]
        ai, bi = a["info"], b["info"]
        for field in ["run_name", "user_id", "status", "start_time", "end_time", "lifecycle_stage"]:
            assert ai.get(field) == bi.get(field), (k, field)
        ad, bd = a.get("data", {}), b.get("data", {})
        assert by_key(ad.get("params", [])) == by_key(bd.get("params", [])), k
        tags_a = [(t["key"], new_id.get(t["value"], t["value"]) if t["key"] == "mlflow.parentRunId" else t["value"]) for t in ad.get("tags", [])]
        assert sorted(tags_a) == by_key(bd.get("tags", [])), k
        latest = lambda d: sorted((m["key"], m["step"], m["timestamp"], repr(float(m["value"]))) for m in d.get("metrics", []))
        assert latest(ad) == latest(bd), k
        ins = lambda r: sorted((i["dataset"]["name"], i["dataset"]["digest"], i["dataset"]["source"], i["dataset"].get("schema"),
                                by_key(i.get("tags", []))) for i in r.get("inputs", {}).get("dataset_inputs", []))
        assert ins(a) == ins(b), k
        for m in ad.get("metrics", []):
            assert history(a_url, ai["run_id"], m["key"], ordered=True) == history(b_url, bi["run_id"], m["key"], ordered=True), (k, m["key"])
        files = artifact_files(a_url, ai["run_id"])
        assert files == artifact_files(b_url, bi["run_id"]), k
        for path in files:
            assert artifact_bytes(a_url, ai["run_id"], path) == artifact_bytes(b_url, bi["run_id"], path), (k, path)
    expect_same_models(a_url, b_url, ra, rb, new_id)
    return ra, rb


def models_by_name(url):
    out = {}
    for eid, e in experiments(url).items():
        if e["lifecycle_stage"] != "active":
            continue
        for m in api(url, "POST", "/logged-models/search", json={"experiment_ids": [eid]}).get("models", []):
            out[(e["name"], m["info"]["name"])] = m
    return out


def expect_same_models(a_url, b_url, ra, rb, new_run_id):
    """Logged models (by experiment and name), their metrics, artifacts and the runs' outputs; the registry with
    version numbers, stages, tags, aliases, sources and runs following the new ids."""
    import mlflow
    import mlflow.artifacts
    ma, mb = models_by_name(a_url), models_by_name(b_url)
    assert set(ma) == set(mb) and ma, (sorted(ma), sorted(mb))
    new_model_id = {ma[k]["info"]["model_id"]: mb[k]["info"]["model_id"] for k in ma}
    for k, a in ma.items():
        b = mb[k]
        for field in ["name", "status", "model_type"]:
            assert a["info"].get(field) == b["info"].get(field), (k, field)
        assert new_run_id.get(a["info"].get("source_run_id"), "") == b["info"].get("source_run_id", ""), k
        assert by_key(a["info"].get("tags", [])) == by_key(b["info"].get("tags", [])), k
        assert by_key(a["data"].get("params", [])) == by_key(b["data"].get("params", [])), k
        metric = lambda m, ids: sorted((x["key"], x["value"], x["step"], x["timestamp"], ids.get(x.get("run_id"), x.get("run_id"))) for x in m["data"].get("metrics", []))
        assert metric(a, new_run_id) == metric(b, {}), k
        trees = []
        for url, m in [(a_url, a), (b_url, b)]:
            dst = tempfile.mkdtemp(prefix="tally-export-model-")
            mlflow.set_tracking_uri(url)  # `models:/` resolves through the default tracking URI, whatever tracking_uri says
            root = mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{m['info']['model_id']}", dst_path=dst, tracking_uri=url)
            trees.append({os.path.relpath(os.path.join(p, n), root): open(os.path.join(p, n), "rb").read() for p, _, ns in os.walk(root) for n in ns})
            shutil.rmtree(dst, ignore_errors=True)
        assert trees[0] == trees[1] and "MLmodel" in trees[0], sorted(trees[1])
    for key, a in ra.items():
        outs = lambda url, rid: [(o["model_id"], o.get("step")) for o in api(url, "GET", "/runs/get", params={"run_id": rid})["run"].get("outputs", {}).get("model_outputs", [])]
        assert [(new_model_id.get(m, m), s) for m, s in outs(a_url, a["info"]["run_id"])] == outs(b_url, rb[key]["info"]["run_id"]), key
        ins = lambda url, rid: sorted(i["model_id"] for i in api(url, "GET", "/runs/get", params={"run_id": rid})["run"]["inputs"].get("model_inputs", []))
        assert sorted(new_model_id.get(m, m) for m in ins(a_url, a["info"]["run_id"])) == ins(b_url, rb[key]["info"]["run_id"]), key
    names = lambda url: {m["name"] for m in api(url, "GET", "/registered-models/search").get("registered_models", [])}
    assert names(a_url) == names(b_url) and names(a_url)
    for name in names(a_url):
        a = api(a_url, "GET", "/registered-models/get", params={"name": name})["registered_model"]
        b = api(b_url, "GET", "/registered-models/get", params={"name": name})["registered_model"]
        assert a.get("description") == b.get("description") and by_key(a.get("tags", [])) == by_key(b.get("tags", [])), name
        assert sorted((x["alias"], x["version"]) for x in a.get("aliases", [])) == sorted((x["alias"], x["version"]) for x in b.get("aliases", []))
        versions = lambda url: {v["version"]: v for v in api(url, "GET", "/model-versions/search", params={"filter": f"name='{name}'"})["model_versions"]}
        va, vb = versions(a_url), versions(b_url)
        assert set(va) == set(vb), (name, sorted(va), sorted(vb))
        for n, v in va.items():
            for field in ["version", "current_stage", "description", "status"]:
                assert v.get(field) == vb[n].get(field), (name, n, field)
            assert new_run_id.get(v.get("run_id"), v.get("run_id")) == vb[n].get("run_id"), (name, n)
            source = v["source"]
            for old, new in new_model_id.items():
                source = source.replace(old, new)
            assert source == vb[n]["source"], (name, n)
            assert new_model_id.get(v.get("model_id"), v.get("model_id")) == vb[n].get("model_id"), (name, n)
            assert by_key(v.get("tags", [])) == by_key(vb[n].get("tags", [])), (name, n)


def test_export_round_trips_field_by_field(tally_copy):
    m, d = tally_copy
    b = MlflowServer()
    try:
        out = export(d, b.url)
        assert "metric points" in out.stdout and "warning" not in out.stderr, (out.stdout, out.stderr)
        ra, rb = expect_same_by_name(m.url, b.url)
        assert len(history(b.url, rb[("export-a", "dense")]["info"]["run_id"], "loss")) == 30_000
        expect_same_datasets(m.url, b.url)
        expect_same_scorers(m.url, b.url)
        expect_same_review(m.url, b.url)
        expect_same_issues(m.url, b.url)
        # A rerun sends nothing; after Tally gains a point and a run, only those go.
        again = export(d, b.url)
        row = lambda out, name: next(l for l in out.stdout.splitlines() if l.strip().startswith(name + "  ")).split()[-1]
        assert row(again, "runs") == "0" and row(again, "metric points") == "0", again.stdout
        s = Server(directory=d, embedded=True)
        try:
            child = ra[("export-b", "child")]["info"]["run_id"]
            api(s.url, "POST", "/runs/log-metric", json={"run_id": child, "key": "acc", "value": 0.875, "timestamp": 1_800_000_000_000, "step": 3})
            exp_a = [e for e in experiments(s.url).values() if e["name"] == "export-a"][0]["experiment_id"]
            extra = api(s.url, "POST", "/runs/create", json={"experiment_id": exp_a, "run_name": "added-in-tally", "start_time": 1_800_000_000_000})
            api(s.url, "POST", "/runs/log-metric", json={"run_id": extra["run"]["info"]["run_id"], "key": "z", "value": 1, "timestamp": 1, "step": 0})
        finally:
            s.stop(keep=True)
        later = export(d, b.url)
        assert row(later, "runs") == "1" and row(later, "runs updated") == "1" and row(later, "runs already exported") == str(len(ra) - 1), later.stdout
        got = history(b.url, rb[("export-b", "child")]["info"]["run_id"], "acc")
        assert [p[0] for p in got] == [2, 3], got
        assert ("export-a", "added-in-tally") in named_runs(b.url)
    finally:
        b.stop()


def expect_same_datasets(a_url, b_url):
    """Every evaluation dataset the same by name: tags, the names of its experiments, and its records' contents
    (MLflow gives new ids and times)."""
    def datasets(url):
        names = {e["experiment_id"]: e["name"] for e in experiments(url).values()}
        out = {}
        for d in requests.post(url + "/api/3.0/mlflow/datasets/search", json={"max_results": 1000}).json().get("datasets", []):
            links = requests.get(url + f"/api/3.0/mlflow/datasets/{d['dataset_id']}/experiment-ids").json().get("experiment_ids", [])
            records = json.loads(requests.get(url + f"/api/3.0/mlflow/datasets/{d['dataset_id']}/records").json()["records"])
            contents = sorted(json.dumps({k: r.get(k) for k in ["inputs", "outputs", "expectations", "tags", "source", "source_id", "source_type"]},
                                         sort_keys=True) for r in records)
            out[d["name"]] = (json.loads(d["tags"]), sorted(names[e] for e in links), contents, d.get("schema"), d.get("profile"))
        return out
    a, b = datasets(a_url), datasets(b_url)
    assert a == b and len(a) == 1, (a, b)


def expect_same_scorers(a_url, b_url):
    """Every registered scorer the same by experiment name and scorer name: its definitions in version order (MLflow
    numbers the versions it is sent from 1) and its online-scoring settings."""
    def scorers(url):
        out = {}
        for e in experiments(url).values():
            if e["lifecycle_stage"] != "active":
                continue
            for sc in requests.get(url + "/api/3.0/mlflow/scorers/list", params={"experiment_id": e["experiment_id"]}).json().get("scorers", []):
                versions = requests.get(url + "/api/3.0/mlflow/scorers/versions",
                                        params={"experiment_id": e["experiment_id"], "name": sc["scorer_name"]}).json()["scorers"]
                configs = requests.get(url + "/api/3.0/mlflow/scorers/online-configs", params={"scorer_ids": [sc["scorer_id"]]}).json()["configs"]
                out[(e["name"], sc["scorer_name"])] = ([v["serialized_scorer"] for v in versions],
                                                       [(c["sample_rate"], c.get("filter_string")) for c in configs])
        return out
    a, b = scorers(a_url), scorers(b_url)
    assert a == b and len(a) == 2, (a, b)


def expect_same_review(a_url, b_url):
    """Every label schema and review queue the same by experiment name and name: the questions' fields, the queues'
    kind, owner, reviewers and questions (by name: MLflow gives new ids), their items with statuses and completers."""
    def review(url):
        out = {}
        v3 = url + "/api/3.0/mlflow"
        for e in experiments(url).values():
            if e["lifecycle_stage"] != "active":
                continue
            schemas = requests.get(v3 + "/label-schemas/list", params={"experiment_id": e["experiment_id"]}).json().get("label_schemas", [])
            names = {x["schema_id"]: x["name"] for x in schemas}
            for x in schemas:
                out[(e["name"], "schema", x["name"])] = [x.get(k) for k in ("type", "input", "instruction", "enable_comment", "is_default")]
            for q in requests.get(v3 + "/review-queues/list", params={"experiment_id": e["experiment_id"]}).json().get("review_queues", []):
                items = requests.get(v3 + "/review-queues/items/list", params={"queue_id": q["queue_id"]}).json().get("items", [])
                out[(e["name"], "queue", q["name"])] = (q["queue_type"], q.get("created_by"), q.get("users", []),
                                                        sorted(names[i] for i in q.get("schema_ids", [])),
                                                        sorted((i["item_id"], i["status"], i.get("completed_by")) for i in items))
        return out  # (listing makes each experiment's default question, on either side alike)
    a, b = review(a_url), review(b_url)
    assert a == b and len([k for k in a if k[1] == "queue"]) == 2, (a, b)


def expect_same_issues(a_url, b_url):
    """Every issue the same by experiment name and issue name: its fields, its source run's name, how many traces
    refer to it, and those traces (MLflow gives each issue a new id, which the exported references name)."""
    def issues(url):
        out = {}
        v3 = url + "/api/3.0/mlflow"
        for e in experiments(url).values():
            found = requests.post(v3 + "/issues/search", json={"experiment_id": e["experiment_id"], "include_trace_count": True}).json()
            for i in found.get("issues", []):
                traces = requests.post(v3 + "/traces/search", json={"locations": [{"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {
                    "experiment_id": e["experiment_id"]}}], "filter": f"issue.id = '{i['issue_id']}'"}).json().get("traces", [])
                run = requests.get(url + "/api/2.0/mlflow/runs/get", params={"run_id": i["source_run_id"]}).json()["run"]["info"]["run_name"] \
                    if i.get("source_run_id") else None
                out[(e["name"], i["name"])] = ([i.get(k) for k in ("description", "status", "severity", "root_causes", "categories", "created_by",
                                                                     "trace_count")], run, sorted(t["trace_id"] for t in traces))
        return out
    a, b = issues(a_url), issues(b_url)
    assert a == b and len(a) == 2 and a[("export-a", "Slow")][0][-1] == 2, (a, b)


def journal_size(directory):
    """The bytes of the export journals in `directory` (-1 before there is one)."""
    if not os.path.isdir(directory):
        return -1
    return sum(os.path.getsize(os.path.join(directory, f)) for f in os.listdir(directory))


def test_a_killed_export_finishes_on_rerun_without_duplicates(tally_copy):
    """Killed (kill -9) again and again at different moments — between a create request and its journal line, inside
    a run's batches, in the models and the registry — then finished: every run, model, version and point once."""
    m, d = tally_copy
    b = MlflowServer()
    work = tempfile.mkdtemp(prefix="tally-export-kill-")
    try:
        # The data directory as imported (the other test adds to its own).
        shutil.copytree(os.path.join(d, "as-imported"), os.path.join(work, "data"))
        journal_dir = os.path.join(work, "data", "exports")
        kills = 0
        for delay in [0.4, 0.7, 1.0, 1.3, 1.6, 2.0, 2.5, 3.0, 0.5, 0.8, 1.1, 1.4, 1.7]:
            p = subprocess.Popen([TALLY, "export", "mlflow", "--to", b.url, "--data-dir", os.path.join(work, "data")],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            # The delays count from this attempt's first new journal line: on a loaded machine opening the data
            # directory alone took over 3 s, and every kill then came before the export had started (once the
            # journal existed, later attempts were killed while still opening the store, CI 2026-12-03).
            before = journal_size(journal_dir)
            deadline = time.time() + 120
            while journal_size(journal_dir) == before and p.poll() is None and time.time() < deadline:
                time.sleep(0.05)
            time.sleep(delay)
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
                kills += 1
            p.wait()
        assert kills >= 3, kills
        journal = open(os.path.join(journal_dir, os.listdir(journal_dir)[0])).read()
        assert "\nmap " in journal  # the kills came after it started writing
        out = export(work, b.url)
        ra, rb = expect_same_by_name(m.url, b.url)
        assert len(rb) == len(ra)  # no run created twice
        dense = rb[("export-a", "dense")]["info"]["run_id"]
        assert len(history(b.url, dense, "loss")) == 30_000  # no point twice
        expect_same_datasets(m.url, b.url)  # the dataset once, whole, without the export's marker tag
        expect_same_scorers(m.url, b.url)  # each version once, in order
        expect_same_review(m.url, b.url)  # each question, queue and item once
        expect_same_issues(m.url, b.url)  # each issue once, its references naming it
        assert "warning" not in out.stderr, out.stderr
        print("kills:", kills)
    finally:
        b.stop()
        shutil.rmtree(work, ignore_errors=True)
