"""`tally backup` of a server the real MLflow client is writing to: the copy, started as a server of its own, answers
the client as the original did at the backup's instant (runs, params, histories, artifacts, registered models); a
run logged during the backup is there up to a prefix of its points. Then the same command on the stopped server's
data directory (no server: it opens the stores itself). On PostgreSQL, the backup's dump restored with pg_restore
into a new database serves the copy the same way."""
import os
import shutil
import subprocess
import tempfile
import threading
import time

from mlflow import MlflowClient
from mlflow.entities import Metric

import pytest

from conftest import CLUSTER, POSTGRES, TALLY, Server, once_per_suite, postgres_database


def state(c, exp, run_ids):
    """What the client reads of the runs: params, latest metrics, each history, artifact names and the model."""
    out = {}
    for r in run_ids:
        run = c.get_run(r)
        out[r] = (run.data.params, run.data.metrics, [(m.step, m.value) for m in c.get_metric_history(r, "loss")],
                  sorted(a.path for a in c.list_artifacts(r)))
    out["model"] = [(v.version, v.run_id, v.source) for v in c.search_model_versions("name = 'backed-up-model'")]
    out["experiment"] = c.get_experiment(exp).name
    return out


def write_and_back_up(s, target):
    """Runs, artifacts and a registered model written through the real client, then `tally backup` into `target` while
    a run is logged without pause: (client, experiment, the runs, the busy run, points acknowledged before the backup,
    the command's result)."""
    c = MlflowClient(s.url)
    exp = c.create_experiment("backed-up")
    runs = []
    for i in range(3):
        r = c.create_run(exp).info.run_id
        c.log_param(r, "i", str(i))
        c.log_batch(r, metrics=[Metric("loss", 1 / (k + 1) + i, 1000 + k, k) for k in range(300)])
        c.log_text(r, "notes %d" % i, "notes.txt")
        c.set_terminated(r)
        runs.append(r)
    # Artifacts written long ago (one written in the last seconds is copied again by the next backup: a file
    # replaced within one tick of the clock keeps its time).
    for root, _, files in os.walk(os.path.join(s.dir, "data", "artifacts")):
        for f in files:
            os.utime(os.path.join(root, f), (1_600_000_000, 1_600_000_000))
    c.create_registered_model("backed-up-model")
    c.create_model_version("backed-up-model", "runs:/%s/model" % runs[0], run_id=runs[0])
    busy = c.create_run(exp).info.run_id
    stop, logged = threading.Event(), []

    def log():
        step = 0
        while not stop.is_set():
            c.log_batch(busy, metrics=[Metric("loss", step / 2, 1000 + step, step)])
            logged.append(step)
            step += 1

    writer = threading.Thread(target=log)
    writer.start()
    while len(logged) < 20:
        time.sleep(0.01)
    acknowledged = len(logged)  # before the backup: the copy holds at least these
    made = subprocess.run([TALLY, "backup", target, "--data-dir", os.path.join(s.dir, "data")], capture_output=True, text=True, timeout=120)
    time.sleep(0.2)
    stop.set()
    writer.join()
    assert made.returncode == 0, made.stderr
    return c, exp, runs, busy, acknowledged, made


def check_busy_run(cc, busy, acknowledged):
    """The run logged during the backup: a prefix of its points, at least those acknowledged before it, and a latest
    value that is the prefix's last point (the metadata and the points from one instant)."""
    history = [(m.step, m.value) for m in cc.get_metric_history(busy, "loss")]
    assert history == [(k, k / 2) for k in range(len(history))] and len(history) >= acknowledged, (len(history), acknowledged)
    latest = cc.get_run(busy).data.metrics["loss"]
    assert latest == history[-1][1], "the copy's latest value is its history's last point"


@pytest.mark.skipif(not POSTGRES or CLUSTER, reason="a PostgreSQL-backed server's backup (a cluster server's is refused)")
def test_backup_of_a_postgres_server_restores_with_pg_restore():
    s = Server()
    copy_dir = tempfile.mkdtemp(prefix="tally-backup-pg-")
    copy = None
    try:
        target = os.path.join(copy_dir, "data")
        c, exp, runs, busy, acknowledged, made = write_and_back_up(s, target)
        assert "(metadata.pgdump)" in made.stdout, made.stdout
        dump = os.path.join(target, "metadata.pgdump")
        verified = subprocess.run([TALLY, "backup", os.path.join(copy_dir, "unused"), "--data-dir", os.path.join(s.dir, "data"), "--verify"],
                                  capture_output=True, text=True, timeout=120)
        assert verified.returncode == 0 and "metadata ok" in verified.stdout, verified.stdout + verified.stderr
        expected = state(c, exp, runs)
        # The copy's directory alone holds a PostgreSQL dump: a server will not start on it with an empty embedded database.
        alone = subprocess.run([TALLY, "server", "--port", "0", "--data-dir", target], capture_output=True, text=True, timeout=60)
        assert alone.returncode != 0 and "pg_restore" in alone.stderr + alone.stdout, alone.stderr
        restored = postgres_database()
        r = subprocess.run(["pg_restore", "--no-owner", "--no-privileges", "--exit-on-error", "--dbname=" + restored, dump],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        for name in ("artifacts-destination",):  # the same artifact store, when the pass has one
            if os.path.exists(os.path.join(s.dir, name)):
                shutil.copy(os.path.join(s.dir, name), os.path.join(copy_dir, name))
        copy = Server("--backend-store-uri", restored, directory=copy_dir)
        cc = MlflowClient(copy.url)
        assert state(cc, exp, runs) == expected
        check_busy_run(cc, busy, acknowledged)
        cc.log_param(busy, "after", "restore")
    finally:
        if copy:
            copy.stop()
        s.stop()
        shutil.rmtree(copy_dir, ignore_errors=True)


@once_per_suite()
def test_backup_of_a_server_being_written_starts_a_server_with_the_same_answers():
    s = Server(embedded=True)
    copy_dir = tempfile.mkdtemp(prefix="tally-backup-")
    offline_dir = tempfile.mkdtemp(prefix="tally-backup-offline-")
    copy = None
    try:
        target = os.path.join(copy_dir, "data")
        c, exp, runs, busy, acknowledged, made = write_and_back_up(s, target)
        assert "writes waited" in made.stdout and "metadata:" in made.stdout and "artifacts: 3 files" in made.stdout, made.stdout
        expected = state(c, exp, runs)
        copy = Server(directory=copy_dir, embedded=True)
        cc = MlflowClient(copy.url)
        assert state(cc, exp, runs) == expected
        assert open(cc.download_artifacts(runs[1], "notes.txt", tempfile.mkdtemp())).read() == "notes 1"
        check_busy_run(cc, busy, acknowledged)
        # The copy is a server like any other: it takes writes.
        cc.log_param(busy, "after", "restore")
        # An incremental backup of the original links what the first one holds unchanged (the artifacts at least).
        second = os.path.join(offline_dir, "second")
        inc = subprocess.run([TALLY, "backup", second, "--data-dir", os.path.join(s.dir, "data"), "--incremental-from", target],
                             capture_output=True, text=True, timeout=120)
        assert inc.returncode == 0 and "linked from the earlier backup: " in inc.stdout, inc.stdout + inc.stderr
        assert os.stat(os.path.join(second, "artifacts")).st_ino != os.stat(os.path.join(target, "artifacts")).st_ino
        notes = [os.path.join(root, "notes.txt") for root, _, files in os.walk(os.path.join(second, "artifacts")) if "notes.txt" in files]
        assert len(notes) == 3 and all(os.stat(n).st_nlink == 2 for n in notes), notes
        # No server on the directory: the command opens the stores itself.
        s.stop(keep=True)
        alone = subprocess.run([TALLY, "backup", os.path.join(offline_dir, "data"), "--data-dir", os.path.join(s.dir, "data"), "--verify"],
                               capture_output=True, text=True, timeout=120)
        assert alone.returncode == 0 and "artifacts: 3 files" in alone.stdout, alone.stderr
        assert "verified: " in alone.stdout and "metadata ok" in alone.stdout, alone.stdout
        again = subprocess.run([TALLY, "backup", os.path.join(offline_dir, "data"), "--data-dir", os.path.join(s.dir, "data")],
                               capture_output=True, text=True, timeout=120)
        assert again.returncode != 0 and "not empty" in again.stderr, again.stderr
    finally:
        if copy:
            copy.stop()
        s.stop()
        shutil.rmtree(copy_dir, ignore_errors=True)
        shutil.rmtree(offline_dir, ignore_errors=True)
