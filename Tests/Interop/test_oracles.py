"""The oracles themselves (mlflow_oracle.py): forked from the fork server when their settings allow it, and a plain
`mlflow server` when a setting read on import differs. A silently failing preload would only make every oracle slow,
so it is checked here rather than left to the suite's time."""

import contextlib
import json
import os
import sqlite3
import urllib.request

from conftest import MlflowServer, once_per_suite
import mlflow_oracle


@once_per_suite()
def test_an_oracle_is_forked_and_serves_as_mlflow():
    m = MlflowServer()
    try:
        assert isinstance(m.proc, mlflow_oracle.Oracle), open(os.path.join(m.work, "log")).read()[-2000:]
        with urllib.request.urlopen(m.url + "/version") as r:
            version = r.read().decode()
        import mlflow
        assert version == mlflow.__version__
        body = json.dumps({"name": "forked"}).encode()
        request = urllib.request.Request(m.url + "/api/2.0/mlflow/experiments/create", body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(request) as r:
            assert json.load(r)["experiment_id"] == "1"
        # on the database it was given: the experiment is there
        with contextlib.closing(sqlite3.connect(m.backend_uri.removeprefix("sqlite:///"))) as db:
            assert ("forked",) in db.execute("SELECT name FROM experiments").fetchall()
    finally:
        m.stop()


@once_per_suite()
def test_a_setting_read_on_import_is_told_apart():
    """Asked of a forked process, as the command does before it runs: the fork server imported the preload, which read
    the webhook secrets' key (as the registry's models were defined), so another key makes an oracle stale; the test's
    name does not."""
    preloaded, (same, other_key, other_test) = mlflow_oracle.probe(
        dict(os.environ), {**os.environ, "MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY": "another"},
        {**os.environ, "PYTEST_CURRENT_TEST": "another test"})
    assert preloaded, "the fork server did not import mlflow_oracle_preload"
    assert same == []
    assert other_key == ["MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY"]
    assert other_test == []
