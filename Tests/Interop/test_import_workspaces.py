"""`tally import mlflow --workspace` and `tally export mlflow --workspace`: a real `mlflow server --enable-workspaces`
(SQLite, from the venv), filled by the real client, holds the same experiment name and the same registered model name
in two workspaces (MLflow keeps names unique per workspace). Tally keeps one space, so a workspace comes in, and goes
out, one at a time: an import reads only its workspace's experiments, runs, artifacts and registry, from MLflow's
database as through its API, and names the workspaces it left behind; an unknown or malformed workspace is refused
before anything is written; an export writes into the workspace it names and nowhere else."""
import os
import shutil
import subprocess
import tempfile

import mlflow
import pytest
import requests
from mlflow import MlflowClient
from mlflow.store.workspace.abstract_store import WorkspaceNameValidator

from conftest import TALLY, MlflowServer, Server, once_per_suite

pytestmark = once_per_suite()  # imports into data directories of its own

WORKSPACES = ("default", "team-a")


# Webhooks to a loopback address (never delivered to: created after the model they would announce).
LOCAL = {"MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true", "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https"}


def fill(url):
    """Per workspace: an experiment "shared" with one finished run (a param and metric naming the workspace, an
    artifact), a registered model "model" whose one version comes from that run, a webhook and an evaluation dataset
    linked to "shared", each named after the workspace. Also an empty workspace."""
    client = MlflowClient(url, registry_uri=url)
    client.create_workspace("team-a", description="the vision team")
    client.create_workspace("empty-one")
    client.create_workspace("team-b")  # empty until the export test writes into it
    made = {}
    for ws in WORKSPACES:
        mlflow.set_workspace(ws)
        try:
            c = MlflowClient(url, registry_uri=url)
            e = c.create_experiment("shared")
            r = c.create_run(e, run_name=f"{ws}-run")
            run = r.info.run_id
            c.log_param(run, "workspace", ws)
            c.log_metric(run, "loss", 0.5 if ws == "default" else 0.25, step=1)
            c.log_text(run, f"written in {ws}", "notes/where.txt")
            c.set_terminated(run)
            c.create_registered_model("model", description=f"{ws}'s model")
            c.create_model_version("model", f"runs:/{run}/notes", run_id=run)
            # The registry's other rows, keyed by (workspace, name) in MLflow: a tag, a version tag, an alias.
            c.set_registered_model_tag("model", "owner", ws)
            c.set_model_version_tag("model", "1", "built-in", ws)
            c.set_registered_model_alias("model", f"{ws}-best", "1")
            c.create_webhook(f"{ws}-hook", "http://127.0.0.1:9/hook", ["registered_model.created"])
            made_set = requests.post(url + "/api/3.0/mlflow/datasets/create", headers={"X-MLflow-Workspace": ws},
                                     json={"name": f"{ws}-qa", "experiment_ids": [e]}, timeout=60)
            assert made_set.status_code == 200, made_set.text
            made[ws] = {"experiment": e, "run": run, "dataset": made_set.json()["dataset"]["dataset_id"]}
        finally:
            mlflow.set_workspace(None)
    assert made["default"]["run"] != made["team-a"]["run"]
    return made


@pytest.fixture(scope="module")
def source():
    m = MlflowServer("--enable-workspaces", env=LOCAL)
    made = fill(m.url)
    yield m, made
    m.stop()


def source_args(m, kind):
    if kind == "url":
        return ["--from", m.url]
    return ["--from", "sqlite:///" + os.path.join(m.work, "m.db"), "--artifacts-from", m.artifacts]


def tally_import(m, data, *extra, kind="db", check=True):
    return subprocess.run([TALLY, "import", "mlflow", *source_args(m, kind), "--data-dir", data, *extra],
                          capture_output=True, text=True, timeout=300, check=check)


def count(out, row):
    return int(next(l for l in out.splitlines() if l.strip().startswith(row + "  ")).split()[-1])


def api(url, method, path, workspace=None, **kw):
    headers = {"X-MLflow-Workspace": workspace} if workspace else {}
    r = requests.request(method, url + "/api/2.0/mlflow" + path, headers=headers, timeout=60, **kw)
    assert r.status_code == 200, (path, r.status_code, r.text[:300])
    return r.json()


def served(url, workspace=None):
    """What a server shows of "shared" and "model": the runs' names with their params, metrics and artifact text;
    the model's description with its versions' runs; the webhooks' names; the names of the datasets of "shared"."""
    e = api(url, "GET", "/experiments/get-by-name", workspace, params={"experiment_name": "shared"})["experiment"]
    hooks = sorted(h["name"] for h in api(url, "GET", "/webhooks", workspace).get("webhooks", []))
    found = requests.post(url + "/api/3.0/mlflow/datasets/search", json={"experiment_ids": [e["experiment_id"]]},
                          headers={"X-MLflow-Workspace": workspace} if workspace else {}, timeout=60)
    assert found.status_code == 200, found.text[:300]
    datasets = sorted(d["name"] for d in found.json().get("datasets", []))
    runs = {}
    for r in api(url, "POST", "/runs/search", workspace, json={"experiment_ids": [e["experiment_id"]]}).get("runs", []):
        run = r["info"]["run_id"]
        text = requests.get(url + "/get-artifact", params={"run_uuid": run, "path": "notes/where.txt"},
                            headers={"X-MLflow-Workspace": workspace} if workspace else {}, timeout=60)
        assert text.status_code == 200, text.text[:300]
        runs[r["info"]["run_name"]] = ({p["key"]: p["value"] for p in r["data"].get("params", [])},
                                       {m["key"]: m["value"] for m in r["data"].get("metrics", [])}, text.text)
    model = api(url, "GET", "/registered-models/get", workspace, params={"name": "model"})["registered_model"]
    versions = api(url, "GET", "/model-versions/search", workspace, params={"filter": "name='model'"})["model_versions"]
    registry = ({t["key"]: t["value"] for t in model.get("tags", [])}, sorted(a["alias"] for a in model.get("aliases", [])),
                [{t["key"]: t["value"] for t in v.get("tags", [])} for v in versions])
    return {"runs": runs, "model": model.get("description"), "versions": sorted(v["run_id"] for v in versions),
            "registry": registry, "hooks": hooks, "datasets": datasets}


def expected(ws, made):
    return {"runs": {f"{ws}-run": ({"workspace": ws}, {"loss": 0.5 if ws == "default" else 0.25}, f"written in {ws}")},
            "model": f"{ws}'s model", "versions": [made[ws]["run"]], "registry": ({"owner": ws}, [f"{ws}-best"], [{"built-in": ws}]),
            "hooks": [f"{ws}-hook"], "datasets": [f"{ws}-qa"]}


def shows_only(d, ws, made):
    """A Tally server on `d` shows `ws`'s data and nothing of the other workspace's: its run and dataset ids are
    unknown there."""
    other = next(w for w in WORKSPACES if w != ws)
    s = Server(directory=d)
    try:
        assert served(s.url) == expected(ws, made)
        assert requests.get(s.url + "/api/2.0/mlflow/runs/get", params={"run_id": made[other]["run"]}).status_code == 404
        assert requests.get(s.url + f"/api/3.0/mlflow/datasets/{made[other]['dataset']}").status_code == 404
    finally:
        s.stop(keep=True)


@pytest.mark.parametrize("kind", ["db", "url"])
def test_the_default_workspace_comes_alone_and_the_others_are_named(source, kind):
    m, made = source
    d = tempfile.mkdtemp(prefix="tally-import-ws-")
    try:
        out = tally_import(m, os.path.join(d, "data"), kind=kind)
        # team-a's experiment and model stay behind, named with what they hold; the empty workspace is not named.
        assert ("warning: MLflow workspace 'team-a' (1 experiment, 1 registered model) was not imported: Tally keeps one space; "
                "import it with --workspace team-a") in out.stderr, out.stderr
        assert "empty-one" not in out.stderr
        assert count(out.stdout, "runs") == 1 and count(out.stdout, "registered models") == 1, out.stdout
        shows_only(d, "default", made)
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.mark.parametrize("kind", ["db", "url"])
def test_a_named_workspace_comes_alone(source, kind):
    m, made = source
    d = tempfile.mkdtemp(prefix="tally-import-ws-")
    data = os.path.join(d, "data")
    try:
        out = tally_import(m, data, "--workspace", "team-a", kind=kind)
        assert ", workspace team-a (" in out.stdout, out.stdout
        # The default workspace holds the Default experiment too.
        assert "warning: MLflow workspace 'default' (2 experiments, 1 registered model) was not imported" in out.stderr, out.stderr
        assert count(out.stdout, "runs") == 1 and count(out.stdout, "model versions") == 1, out.stdout
        shows_only(d, "team-a", made)
        # A rerun of the same workspace finds it imported; the default one then comes beside it: its experiment merges
        # by name, its model of the same name is left alone (Tally has one space), each with a warning.
        again = tally_import(m, data, "--workspace", "team-a", "--verify", kind=kind)
        assert count(again.stdout, "runs") == 0 and count(again.stdout, "runs already imported") == 1, again.stdout
        assert "verify: every run matches the source" in again.stdout
        both = tally_import(m, data, kind=kind)
        assert count(both.stdout, "runs") == 1, both.stdout
        assert "registered model 'model' skipped: Tally already has a model of this name" in both.stderr, both.stderr
        assert "experiment 'shared'" in both.stderr and "merged into Tally's experiment" in both.stderr, both.stderr
        s = Server(directory=d)
        try:
            got, a, b = served(s.url), expected("team-a", made), expected("default", made)
            assert got == {**a, "runs": {**a["runs"], **b["runs"]}, "hooks": sorted(a["hooks"] + b["hooks"]),
                           "datasets": sorted(a["datasets"] + b["datasets"])}
        finally:
            s.stop(keep=True)
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.mark.parametrize("kind", ["db", "url"])
def test_an_unknown_or_malformed_workspace_is_refused_before_anything_is_written(source, kind):
    m, _ = source
    d = tempfile.mkdtemp(prefix="tally-import-ws-")
    data = os.path.join(d, "data")
    try:
        out = tally_import(m, data, "--workspace", "nope", kind=kind, check=False)
        assert out.returncode != 0 and "No workspace 'nope' in " in out.stderr, out.stderr
        assert "(its workspaces: default, empty-one, team-a, team-b)" in out.stderr, out.stderr
        # Without --workspace, MLFLOW_WORKSPACE chooses, as MLflow's client takes it.
        out = subprocess.run([TALLY, "import", "mlflow", *source_args(m, kind), "--data-dir", data], capture_output=True, text=True,
                             timeout=300, env={**os.environ, "MLFLOW_WORKSPACE": "elsewhere"})
        assert out.returncode != 0 and "No workspace 'elsewhere' in " in out.stderr, out.stderr
        # MLflow's own rule, with its message, for names it would refuse.
        for bad in ("Team_A", "x", "api"):
            with pytest.raises(Exception) as theirs:
                WorkspaceNameValidator.validate(bad)
            out = tally_import(m, data, "--workspace", bad, kind=kind, check=False)
            assert out.returncode != 0 and str(theirs.value) in out.stderr, (bad, str(theirs.value), out.stderr)
        assert not os.path.exists(data)
        # An experiment of another workspace is not there to select.
        out = tally_import(m, data, "--workspace", "team-a", "--experiments", "Default", kind=kind, check=False)
        assert out.returncode != 0 and "No experiment 'Default' (by id or name) in " in out.stderr and ", workspace team-a" in out.stderr, out.stderr
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_an_mlflow_without_workspaces_has_only_the_default_one():
    m = MlflowServer()
    d = tempfile.mkdtemp(prefix="tally-import-ws-")
    try:
        MlflowClient(m.url).create_experiment("plain")
        for kind in ("db", "url"):
            out = tally_import(m, os.path.join(d, "data"), "--workspace", "team-a", kind=kind, check=False)
            assert out.returncode != 0 and "No workspace 'team-a'" in out.stderr and "(its workspaces: default)" in out.stderr, out.stderr
            out = tally_import(m, os.path.join(d, "data-" + kind), "--workspace", "default", kind=kind)
            assert count(out.stdout, "experiments created") == 1 and "warning" not in out.stderr, (out.stdout, out.stderr)
    finally:
        m.stop()
        shutil.rmtree(d, ignore_errors=True)


def test_an_export_writes_into_the_workspace_it_names(source):
    m, made = source
    d = tempfile.mkdtemp(prefix="tally-export-ws-")
    data = os.path.join(d, "data")
    try:
        tally_import(m, data, "--workspace", "team-a")
        refused = subprocess.run([TALLY, "export", "mlflow", "--to", m.url, "--data-dir", data, "--workspace", "team-c"],
                                 capture_output=True, text=True, timeout=300)
        assert refused.returncode != 0 and "No workspace 'team-c' in " + m.url in refused.stderr, refused.stderr
        # MLFLOW_WORKSPACE names it, as for MLflow's client.
        out = subprocess.run([TALLY, "export", "mlflow", "--to", m.url, "--data-dir", data], capture_output=True, text=True, timeout=300,
                             check=True, env={**os.environ, "MLFLOW_WORKSPACE": "team-b"})
        assert ", workspace team-b" in out.stdout and count(out.stdout, "runs") == 1, out.stdout
        got, want = served(m.url, "team-b"), expected("team-a", made)
        assert list(got["runs"].values()) == list(want["runs"].values()) and len(got["versions"]) == 1
        assert (got["model"], got["hooks"], got["datasets"]) == (want["model"], want["hooks"], want["datasets"])
        assert got["registry"][:2] == want["registry"][:2]
        # The other workspaces are as they were: one run each in their "shared".
        for ws in WORKSPACES:
            assert served(m.url, ws) == expected(ws, made)
    finally:
        shutil.rmtree(d, ignore_errors=True)
