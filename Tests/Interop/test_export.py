"""`tally export mlflow` (issue #17): MLflow → `tally import` → Tally → `tally export` → a fresh MLflow, then every
experiment, run, param, tag, latest value, input, history and artifact compared field by field between the two
MLflow servers through MLflow's REST API (run ids are MLflow's new ones: runs are matched by experiment and name,
parent tags by the parents' new ids). Also: an export killed mid-run (kill -9) finishes on its rerun without
duplicating anything, and a rerun sends only what Tally gained since."""
import os
import shutil
import signal
import subprocess
import tempfile
import time

import numpy as np
import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric

from conftest import POSTGRES, TALLY, MlflowServer, Server
from test_import import api, artifact_bytes, artifact_files, by_key, experiments, history, runs

pytestmark = pytest.mark.skipif(POSTGRES, reason="exports the embedded data directory; run once, in the SQLite pass")


def populate(url, work):
    import mlflow
    mlflow.set_tracking_uri(url)
    c = MlflowClient(url)
    a = c.create_experiment("export-a", tags={"team": "vision", "note": "ünïcode ✓"})
    gone = c.create_experiment("export-deleted")
    r1 = c.create_run(a, run_name="dense", tags={"kind": "train"}).info.run_id
    c.log_param(r1, "lr", "0.001")
    c.set_tag(r1, "long", "x" * 5000)
    now = 1_700_000_000_000
    for i in range(0, 30_000, 1000):
        c.log_batch(r1, metrics=[Metric("loss", float(np.float32(1 / (1 + j / 1000))), now + j, j) for j in range(i, i + 1000)])
    specials = [float("nan"), float("inf"), -float("inf"), -0.0, 5e-324, 1.7976931348623157e308, -2.5]
    c.log_batch(r1, metrics=[Metric("special", v, now + k, -3 + k) for k, v in enumerate(specials)])
    c.log_batch(r1, metrics=[Metric("multi", v, now + t, 7) for v, t in [(1.0, 5), (2.0, 3), (1.5, 5), (-1.0, 9)]])
    c.log_batch(r1, metrics=[Metric("extremes", 1.0, now, -(2**63)), Metric("extremes", 2.0, now, 2**63 - 1)])
    c.set_terminated(r1, "FINISHED", end_time=now + 200_000)
    with mlflow.start_run(experiment_id=a, run_name="parent"):
        mlflow.log_metric("acc", 0.5, step=1)
        with mlflow.start_run(run_name="child", nested=True):  # in Default: its parent is in another experiment
            mlflow.log_metric("acc", 0.75, step=2)
            mlflow.log_param("seed", 7)
        tree = os.path.join(work, "tree")
        os.makedirs(os.path.join(tree, "sub", "deeper"))
        with open(os.path.join(tree, "top.txt"), "w") as f:
            f.write("top\n")
        with open(os.path.join(tree, "sub", "deeper", "blob.bin"), "wb") as f:
            f.write(bytes(range(256)) * 4097)
        mlflow.log_artifacts(tree, "model")
        ds = mlflow.data.from_numpy(np.arange(12.0).reshape(4, 3), source="s3://bucket/train.npy", name="train-set")
        mlflow.log_input(ds, context="training")
    dead = c.create_run(a, run_name="deleted-run").info.run_id
    c.log_metric(dead, "x", 1.0, step=0)
    c.delete_run(dead)
    g = c.create_run(gone, run_name="in-deleted-experiment").info.run_id
    c.log_param(g, "p", "v")
    c.delete_experiment(gone)
    d = c.create_run("0", run_name="default-run").info.run_id
    c.log_metric(d, "m", 3.0)


@pytest.fixture(scope="module")
def tally_copy():
    """An MLflow server filled by the client, and a Tally data directory imported from it."""
    m = MlflowServer()
    populate(m.url, m.work)
    d = tempfile.mkdtemp(prefix="tally-export-")
    subprocess.run([TALLY, "import", "mlflow", "--from", m.url, "--data-dir", os.path.join(d, "data")], capture_output=True, text=True,
                   timeout=600, check=True)
    shutil.copytree(os.path.join(d, "data"), os.path.join(d, "as-imported"))  # for tests that need it unchanged
    yield m, d
    m.stop()
    shutil.rmtree(d, ignore_errors=True)


def export(d, url, *extra, check=True):
    return subprocess.run([TALLY, "export", "mlflow", "--to", url, "--data-dir", os.path.join(d, "data"), *extra],
                          capture_output=True, text=True, timeout=600, check=check)


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
    return ra, rb


def test_export_round_trips_field_by_field(tally_copy):
    m, d = tally_copy
    b = MlflowServer()
    try:
        out = export(d, b.url)
        assert "metric points" in out.stdout and "warning" not in out.stderr, (out.stdout, out.stderr)
        ra, rb = expect_same_by_name(m.url, b.url)
        assert len(history(b.url, rb[("export-a", "dense")]["info"]["run_id"], "loss")) == 30_000
        # A rerun sends nothing; after Tally gains a point and a run, only those go.
        again = export(d, b.url)
        row = lambda out, name: next(l for l in out.stdout.splitlines() if l.strip().startswith(name + "  ")).split()[-1]
        assert row(again, "runs") == "0" and row(again, "metric points") == "0", again.stdout
        s = Server(directory=d)
        try:
            child = ra[("Default", "child")]["info"]["run_id"]
            api(s.url, "POST", "/runs/log-metric", json={"run_id": child, "key": "acc", "value": 0.875, "timestamp": 1_800_000_000_000, "step": 3})
            exp_a = [e for e in experiments(s.url).values() if e["name"] == "export-a"][0]["experiment_id"]
            extra = api(s.url, "POST", "/runs/create", json={"experiment_id": exp_a, "run_name": "added-in-tally", "start_time": 1_800_000_000_000})
            api(s.url, "POST", "/runs/log-metric", json={"run_id": extra["run"]["info"]["run_id"], "key": "z", "value": 1, "timestamp": 1, "step": 0})
        finally:
            s.stop(keep=True)
        later = export(d, b.url)
        assert row(later, "runs") == "1" and row(later, "runs updated") == "1" and row(later, "runs already exported") == str(len(ra) - 1), later.stdout
        got = history(b.url, rb[("Default", "child")]["info"]["run_id"], "acc")
        assert [p[0] for p in got] == [2, 3], got
        assert ("export-a", "added-in-tally") in named_runs(b.url)
    finally:
        b.stop()


def test_a_killed_export_finishes_on_rerun_without_duplicates(tally_copy):
    m, d = tally_copy
    b = MlflowServer()
    work = tempfile.mkdtemp(prefix="tally-export-kill-")
    try:
        # The data directory as imported (the other test adds to its own).
        shutil.copytree(os.path.join(d, "as-imported"), os.path.join(work, "data"))
        p = subprocess.Popen([TALLY, "export", "mlflow", "--to", b.url, "--data-dir", os.path.join(work, "data")],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        journal_dir = os.path.join(work, "data", "exports")
        killed = False
        deadline = time.time() + 120
        while p.poll() is None and time.time() < deadline:
            names = os.listdir(journal_dir) if os.path.isdir(journal_dir) else []
            text = open(os.path.join(journal_dir, names[0])).read() if names else ""
            if text.count("\nbegin ") > text.count("\ndone ") and "\nbegin " in text:
                time.sleep(0.3)  # inside the run: some of its batches are in MLflow
                p.send_signal(signal.SIGKILL)
                killed = True
                break
            time.sleep(0.005)
        p.wait()
        assert killed, "the export finished before it could be killed"
        export(work, b.url)
        ra, rb = expect_same_by_name(m.url, b.url)
        assert len(rb) == len(ra)  # no run created twice
        dense = rb[("export-a", "dense")]["info"]["run_id"]
        assert len(history(b.url, dense, "loss")) == 30_000  # no point twice
    finally:
        b.stop()
        shutil.rmtree(work, ignore_errors=True)
