"""`tally import mlflow --from postgresql://…` (issue #17): a real `mlflow server` on a PostgreSQL database of the test
cluster, filled by the real client exactly as the SQLite source is (`test_import.populate`), imported into a Tally
whose own metadata is in PostgreSQL too, then compared field by field through both servers' REST APIs. Runs in the
PostgreSQL pass of `make test` (scripts/pg-test), where the cluster exists."""
import os
import shutil
import subprocess
import tempfile

import pytest

from conftest import CLUSTER, POSTGRES, S3, TALLY, MlflowServer, Server, postgres_database, s3_prefix
from test_import import DENSE_POINTS, expect_same, history, populate

pytestmark = [pytest.mark.skipif(not POSTGRES, reason="needs the PostgreSQL test cluster (the PostgreSQL pass of make test)"),
              pytest.mark.skipif(CLUSTER, reason="imports into one server's store, which a cluster server refuses (test_cluster.py checks that)")]


def test_import_from_mlflow_on_postgresql():
    m = MlflowServer(backend=postgres_database().replace("postgresql://", "postgresql+psycopg2://"))  # MLflow's spelling, as teams have it
    d = tempfile.mkdtemp(prefix="tally-import-pg-")
    try:
        ids = populate(m.url, m.work)
        tally_db = postgres_database()
        with open(os.path.join(d, "backend-store-uri"), "w") as f:
            f.write(tally_db)  # the Server below finds Tally's metadata database here
        store = []
        if S3:  # MLflow's artifacts in S3, read from there; Tally's put in S3 too, where the Server below finds them
            store = ["--artifacts-destination", s3_prefix("tally")]
            with open(os.path.join(d, "artifacts-destination"), "w") as f:
                f.write(store[1])
        source = m.backend_uri
        out = subprocess.run([TALLY, "import", "mlflow", "--from", source, "--artifacts-from", m.artifacts,
                              "--data-dir", os.path.join(d, "data"), "--backend-store-uri", tally_db, "--verify", *store],
                             capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, out.stdout + out.stderr
        assert "verify: every run matches the source" in out.stdout and "password" not in out.stdout + out.stderr
        s = Server(directory=d)
        try:
            expect_same(m.url, s.url, ids)
            assert len(history(s.url, ids["runs"][0], "loss")) == DENSE_POINTS
        finally:
            s.stop(keep=True)
    finally:
        m.stop()
        shutil.rmtree(d, ignore_errors=True)


def test_a_workspace_is_imported_from_mlflow_on_postgresql():
    """The workspace columns of MLflow's PostgreSQL schema select the rows, as its SQLite schema's do
    (test_import_workspaces.py): team-a's experiment, run, artifact and model come, the default workspace's stay."""
    from test_import_workspaces import LOCAL, expected, fill, served
    m = MlflowServer("--enable-workspaces", env=LOCAL, backend=postgres_database().replace("postgresql://", "postgresql+psycopg2://"))
    d = tempfile.mkdtemp(prefix="tally-import-pg-ws-")
    try:
        made = fill(m.url)
        out = subprocess.run([TALLY, "import", "mlflow", "--from", m.backend_uri, "--artifacts-from", m.artifacts,
                              "--data-dir", os.path.join(d, "data"), "--workspace", "team-a"], capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, out.stdout + out.stderr
        assert "MLflow workspace 'default' (2 experiments, 1 registered model) was not imported" in out.stderr, out.stderr
        s = Server(directory=d, embedded=True)
        try:
            assert served(s.url) == expected("team-a", made)
        finally:
            s.stop(keep=True)
    finally:
        m.stop()
        shutil.rmtree(d, ignore_errors=True)
