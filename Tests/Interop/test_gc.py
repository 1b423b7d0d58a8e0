"""`tally gc` against `mlflow gc`: the same soft deletes through the real client on a Tally server and on a real
`mlflow server`, then each side's gc with the same options. The same lines (ids named by what they are), the same
refusals (the message MLflow's traceback ends with, exit 1), the same runs, logged models and experiments left
afterwards; Tally's purged runs lose their points and artifacts too. Through the running server's admin socket, then
on the stopped server's directory (opened by the command itself). A cluster's database is refused."""
import os
import re
import signal
import subprocess

import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric
from mlflow.exceptions import MlflowException

from conftest import CLUSTER, S3, TALLY, MlflowServer, Server


def populate(c):
    """Soft deletes through the client: names → ids. Experiment `a` keeps `keep` and `model` and loses `gone` and
    `gone_model`; experiment `b` is deleted with its run `in_b` and its logged model `model_b`."""
    ids = {"a": c.create_experiment("gc-a"), "b": c.create_experiment("gc-b")}
    for name, exp in [("gone", "a"), ("keep", "a"), ("in_b", "b")]:
        r = c.create_run(ids[exp]).info.run_id
        c.log_metric(r, "loss", 0.5, step=1)
        c.log_param(r, "p", name)
        c.log_text(r, "notes", "notes.txt")
        ids[name] = r
    for name, exp in [("gone_model", "a"), ("model", "a"), ("model_b", "b")]:
        ids[name] = c.create_logged_model(ids[exp], name=name).model_id
    c.delete_run(ids["gone"])
    c.delete_logged_model(ids["gone_model"])
    c.delete_experiment(ids["b"])
    return ids


def named(text, ids):
    """`text` with every id replaced by its name (`<gone>`), longest ids first; experiment ids only where MLflow
    prints them (`ID 2 `, `['2']`, `id=2 `)."""
    for name, i in sorted(ids.items(), key=lambda kv: -len(kv[1])):
        if name in ("a", "b"):
            text = re.sub(rf"(ID |id=|\[|, )'?{i}'?(?=[\] ,.]|$)", lambda m: m.group(1) + f"<{name}>", text)
        else:
            text = text.replace(i, f"<{name}>")
    return text


def outcome(p, ids):
    """What `tally gc` printed: its exit code, its lines (names for ids, in a set: MLflow goes through its runs in a
    set's order), and its error (the message of its last line, `Error: CODE: message`)."""
    lines = {named(line, ids) for line in p.stdout.splitlines() if line.strip()}
    error = None
    if p.returncode != 0:
        last = [line for line in p.stderr.splitlines() if line.strip()][-1]
        error = named(re.sub(r"^Error: ([A-Z_]+: )?", "", last), ids)
    return p.returncode, lines, error


def mlflow_gc(m, ids, *args):
    """MLflow's own `mlflow gc` command, run in this process (click's runner: a new Python would spend ~2 s importing
    mlflow for each case); an exception it raises is its error, as the last line of its traceback would say it."""
    from click.testing import CliRunner
    import mlflow
    from mlflow.cli import gc
    before = mlflow.get_tracking_uri()
    try:
        r = CliRunner().invoke(gc, ["--backend-store-uri", m.backend_uri, "--tracking-uri", m.url, *args])
    finally:
        mlflow.set_tracking_uri(before)  # the command sets it for the whole process
    error = None
    if r.exit_code != 0:
        assert r.exception is not None and not isinstance(r.exception, SystemExit), r.output
        error = named(str(r.exception), ids)
    return r.exit_code, {named(line, ids) for line in r.stdout.splitlines() if line.strip()}, error


def tally_gc(s, ids, *args, offline=False):
    p = subprocess.run(gc_command(s, offline) + list(args), capture_output=True, text=True, timeout=300)
    return outcome(p, ids)


def left(c, ids):
    """What the client still finds of each name: its stage (a logged model's status), or `gone` (a deleted logged
    model is not found either)."""
    out = {}
    for name, i in ids.items():
        try:
            if name in ("a", "b"):
                out[name] = c.get_experiment(i).lifecycle_stage
            elif "model" in name:
                out[name] = c.get_logged_model(i).status.name
            else:
                out[name] = c.get_run(i).info.lifecycle_stage
        except MlflowException as e:
            assert e.error_code == "RESOURCE_DOES_NOT_EXIST", (name, e)
            out[name] = "gone"
    return out


@pytest.fixture(scope="module")
def sides():
    s = Server()
    m = MlflowServer()
    yield s, m
    s.stop()
    m.stop()


@pytest.mark.skipif(CLUSTER, reason="a cluster's database is refused: test_cluster_refused")
def test_gc_as_mlflow_does(sides):
    s, m = sides
    ours, theirs = MlflowClient(s.url), MlflowClient(m.url)
    o_ids, t_ids = populate(ours), populate(theirs)
    # Refusals (nothing purged), then what is too young, then everything, then refusals once nothing deleted is left
    # (before, MLflow goes through the named runs and the deleted experiments' runs in a set's order: it may purge one
    # of those before it refuses).
    cases = [["--experiment-ids", "a"], ["--experiment-ids", "b,a"], ["--older-than", "1x"], ["--older-than", "1.2.3d"],
             ["--experiment-ids", "424242"], ["--older-than", "1d"], ["--older-than", "1d", "--run-ids", "gone"],
             ["--older-than", "1d", "--experiment-ids", "b"], [], ["--run-ids", "keep"], ["--run-ids", "nope"],
             ["--logged-model-ids", "model"], ["--logged-model-ids", "m-nope"], []]
    results = []
    for case in cases:
        o_args = [",".join(o_ids.get(x, x) for x in a.split(",")) for a in case]
        t_args = [",".join(t_ids.get(x, x) for x in a.split(",")) for a in case]
        o, t = tally_gc(s, o_ids, *o_args), mlflow_gc(m, t_ids, *t_args)
        results.append(o)
        if case == ["--older-than", "1.2.3d"]:
            # MLflow's float() fails with a ValueError's traceback: Tally says the string does not parse.
            assert t[0] == 1 and "could not convert string to float" in t[2], t
            assert o == (1, set(), "Could not parse any time information from '1.2.3d'. Examples of valid strings: '8h', '2d8h5m20s', '2m4s'"), o
            continue
        assert o == t, (case, o, t)
    assert results[8][1] == {"Run with ID <gone> has been permanently deleted.", "Run with ID <in_b> has been permanently deleted.",
                             "Logged model with ID <gone_model> has been permanently deleted.",
                             "Experiment with ID <b> has been permanently deleted."}, results[8]
    assert results[-1] == (0, set(), None)
    assert left(ours, o_ids) == left(theirs, t_ids) == {"a": "active", "b": "gone", "gone": "gone", "keep": "active", "in_b": "gone",
                                                        "gone_model": "gone", "model": "PENDING", "model_b": "gone"}
    # What MLflow's gc leaves behind goes too: the purged runs' points and artifacts.
    assert [m.value for m in ours.get_metric_history(o_ids["keep"], "loss")] == [0.5]
    assert [a.path for a in ours.list_artifacts(o_ids["keep"])] == ["notes.txt"]
    if not S3:
        found = [os.path.join(d, f) for d, _, files in os.walk(os.path.join(s.dir, "data", "artifacts")) for f in files]
        assert not any(o_ids[n] in f for f in found for n in ("gone", "in_b", "gone_model", "model_b")), found
        assert any(o_ids["keep"] in f for f in found), found
    # A run deleted now, collected with the server stopped: the command opens the directory itself.
    late = ours.create_run(o_ids["a"]).info.run_id
    ours.log_metric(late, "loss", 1.0)
    ours.delete_run(late)
    o_ids["late"] = late
    s.stop(keep=True)
    stats = subprocess.run([TALLY, "store", "stats", os.path.join(s.dir, "data", "metrics")], capture_output=True, text=True, check=True).stdout
    assert late in stats and o_ids["keep"] in stats and o_ids["gone"] not in stats, stats
    assert tally_gc(s, o_ids, "--run-ids", late, offline=True) == (0, {"Run with ID <late> has been permanently deleted."}, None)
    stats = subprocess.run([TALLY, "store", "stats", os.path.join(s.dir, "data", "metrics")], capture_output=True, text=True, check=True).stdout
    assert late not in stats and o_ids["keep"] in stats, stats
    again = Server(*s.metadata_args, directory=s.dir)
    try:
        c = MlflowClient(again.url)
        with pytest.raises(MlflowException, match="not found"):
            c.get_run(late)
        assert c.get_run(o_ids["keep"]).data.params == {"p": "keep"}
    finally:
        again.stop()


def gc_command(s, offline):
    """`tally gc` for the server `s`: through its socket, or (`offline`) on its stopped directory."""
    artifacts = open(os.path.join(s.dir, "artifacts-destination")).read() if offline and S3 else None
    return [TALLY, "gc", "--data-dir", os.path.join(s.dir, "data"), *(s.metadata_args if offline else []),
            *(["--artifacts-destination", artifacts] if artifacts else [])]


@pytest.mark.skipif(CLUSTER, reason="a cluster's database is refused: test_cluster_refused")
def test_a_killed_gc_is_finished_by_the_next():
    """kill -9 of a gc working on a stopped server's directory, after a quarter of its lines: the next gc finishes,
    and nothing of the deleted runs is left (rows, points, artifacts), while the run kept is whole."""
    s = Server()
    try:
        c = MlflowClient(s.url)
        e = c.create_experiment("gc-kill")
        runs = []
        for i in range(81):
            r = c.create_run(e).info.run_id
            c.log_batch(r, metrics=[Metric("loss", k / 10, 1000 + k, k) for k in range(300)])
            c.log_text(r, "notes %d" % i, "notes.txt")
            runs.append(r)
        keep = runs.pop()
        for r in runs:
            c.delete_run(r)
        s.stop(keep=True)
        p = subprocess.Popen(gc_command(s, offline=True), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        said = []
        for line in p.stdout:
            said.append(line)
            if len(said) == 20:
                os.kill(p.pid, signal.SIGKILL)
                break
        p.wait(timeout=60)
        assert p.returncode == -signal.SIGKILL and len(said) == 20, said
        rest = subprocess.run(gc_command(s, offline=True), capture_output=True, text=True, timeout=300)
        assert rest.returncode == 0, rest.stderr
        assert 20 + len(rest.stdout.splitlines()) in (len(runs), len(runs) - 1), rest.stdout  # one may have been cut after its commit
        stats = subprocess.run([TALLY, "store", "stats", os.path.join(s.dir, "data", "metrics")], capture_output=True, text=True, check=True).stdout
        assert keep in stats and not any(r in stats for r in runs), stats
        if not S3:
            found = [d for d, _, files in os.walk(os.path.join(s.dir, "data", "artifacts")) if files]
            assert len(found) == 1 and keep in found[0], found
        assert open(os.path.join(s.dir, "data", "gc.journal")).read() == ""
        again = Server(directory=s.dir)
        try:
            c = MlflowClient(again.url)
            assert [m.step for m in c.get_metric_history(keep, "loss")] == list(range(300))
            assert [r.info.run_id for r in c.search_runs([e], run_view_type=3)] == [keep]
        finally:
            again.stop(keep=True)
    finally:
        s.stop()


@pytest.mark.skipif(not CLUSTER, reason="the cluster pass")
def test_cluster_refused():
    s = Server()
    try:
        c = MlflowClient(s.url)
        r = c.create_run(c.create_experiment("gc-cluster")).info.run_id
        c.delete_run(r)
        code, lines, error = tally_gc(s, {})
        assert code == 1 and not lines and error.startswith("tally gc cannot purge a cluster's runs yet"), error
        assert c.get_run(r).info.lifecycle_stage == "deleted"
        # Offline too: the server's directory is a cluster's copy (refused when opened).
        s.stop(keep=True)
        code, lines, error = tally_gc(s, {}, offline=True)
        assert code == 1 and "is a cluster server's copy of the shared log" in error, error
    finally:
        s.stop()
