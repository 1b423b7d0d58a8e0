"""`tally server --backend-store-uri postgresql://…` connecting as MLflow's own server (libpq, through psycopg2) would:
the password from `PGPASSWORD` or a password file rather than the command line (where `ps` shows it), and a clear
refusal to start, naming the parameter, for a URI libpq would refuse (an unknown parameter is never ignored: a
misspelt `sslmode` would silently leave TLS optional); a primary and its standby listed as libpq lists them, the
primary's failover followed; and configured, like `mlflow server`, by MLflow's environment variables
(MLFLOW_BACKEND_STORE_URI, …). Runs in the PostgreSQL pass of `make test`."""
import os
import subprocess
import tempfile
import time
import urllib.parse

import pytest
from mlflow import MlflowClient

from conftest import POSTGRES, Server, free_port, postgres_database, refused_start, tally_serving

pytestmark = pytest.mark.skipif(not POSTGRES, reason="needs the PostgreSQL pass (TALLY_INTEROP_BACKEND=postgres)")


def without_password(uri):
    """`uri` with its password taken out, and that password."""
    parts = urllib.parse.urlsplit(uri)
    netloc = f"{parts.username}@{parts.hostname}:{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, parts.query, "")), urllib.parse.unquote(parts.password)


def refused(uri, env=None, port=True):
    """What `tally server` says when it will not start on `uri`; `port`: give `--port`."""
    return refused_start(["-h", "127.0.0.1", *(["-p", str(free_port())] if port else []), "--backend-store-uri", uri], env)


def test_the_password_from_the_environment_or_a_password_file():
    bare, password = without_password(postgres_database())
    home = tempfile.mkdtemp(prefix="tally-pgpass-")
    for env in ({"PGPASSWORD": password}, {"HOME": home}):
        if "HOME" in env:
            path = os.path.join(home, ".pgpass")
            with open(path, "w") as f:
                f.write(f"# the test cluster\n127.0.0.1:*:*:tally:{password}\n")
            os.chmod(path, 0o600)
        s = Server("--backend-store-uri", bare, env=env)
        try:
            c = MlflowClient(s.url)
            exp = c.create_experiment(f"from-{'file' if 'HOME' in env else 'env'}")
            run = c.create_run(exp).info.run_id
            c.log_param(run, "lr", "0.1")
            assert c.get_run(run).data.params == {"lr": "0.1"}
        finally:
            s.stop()
    # A password file others may read is passed over, as libpq does, and the refusal says why.
    os.chmod(os.path.join(home, ".pgpass"), 0o644)
    said = refused(bare, {"HOME": home})
    assert "Cannot reach PostgreSQL at 127.0.0.1" in said and "group or world access" in said, said


def test_a_uri_libpq_would_refuse_stops_the_start_with_its_reason():
    uri = postgres_database()
    said = refused(uri + "?sslmod=require")
    assert "Unknown parameter 'sslmod'" in said, said
    said = refused(uri + "?channel_binding=require")
    assert "channel_binding=require is not supported" in said, said
    said = refused(uri, {"PGSERVICE": "production"})
    assert "service (from PGSERVICE) is not supported" in said, said


def test_mlflow_servers_environment_variables_configure_tally_server():
    """A deployment that configures `mlflow server` through its environment (MLFLOW_BACKEND_STORE_URI in a secret, as
    Kubernetes charts do) configures `tally server` the same way; a command-line option still wins."""
    uri, port = postgres_database(), free_port()
    env = {"MLFLOW_BACKEND_STORE_URI": uri, "MLFLOW_HOST": "127.0.0.1", "MLFLOW_PORT": str(port),
           "MLFLOW_DEFAULT_ARTIFACT_ROOT": "s3://team-bucket/mlflow"}
    with tally_serving([], f"http://127.0.0.1:{port}", env):
        exp = MlflowClient(f"http://127.0.0.1:{port}").create_experiment("configured-by-env")
    # The experiment is in the PostgreSQL database the variable named, with the variable's artifact root.
    other = Server("--backend-store-uri", uri)
    try:
        got = MlflowClient(other.url).get_experiment(exp)
        assert got.name == "configured-by-env" and got.artifact_location == f"s3://team-bucket/mlflow/{exp}"
    finally:
        other.stop()
    # An option given wins over the variable (a database that does not exist would stop the start).
    s = Server("--backend-store-uri", uri, env={"MLFLOW_BACKEND_STORE_URI": uri.rsplit("/", 1)[0] + "/no_such_database"})
    try:
        assert MlflowClient(s.url).get_experiment(exp).name == "configured-by-env"
    finally:
        s.stop()
    said = refused(uri, {"MLFLOW_PORT": "http"}, port=False)
    assert "MLFLOW_PORT is 'http'" in said, said


def test_several_hosts_left_to_any_are_cautioned_about_at_start():
    """Two hosts and libpq's default `target_session_attrs=any`: the server starts (libpq would connect too) and its
    log says that a standby may be chosen, and what to add; with `read-write` it says nothing."""
    parts = urllib.parse.urlsplit(postgres_database())
    host = f"{parts.hostname}:{parts.port}"
    for query, cautioned in (("", True), ("?target_session_attrs=read-write", False)):
        uri = urllib.parse.urlunsplit((parts.scheme, f"{parts.username}:{parts.password}@{host},{host}", parts.path, query.lstrip("?"), ""))
        s = Server("--backend-store-uri", uri)
        try:
            MlflowClient(s.url).create_experiment(f"two-hosts-{cautioned}")
            with open(os.path.join(s.dir, "server.log")) as f:
                log = f.read()
        finally:
            s.stop()
        said = "2 PostgreSQL hosts with target_session_attrs=any" in log and "add target_session_attrs=read-write" in log
        assert said == cautioned, log


def pg_test(*args):
    """scripts/pg-test ARGS; its output."""
    script = os.path.join(os.path.dirname(__file__), "..", "..", "scripts", "pg-test")
    return subprocess.run([script, *args], check=True, capture_output=True, text=True, env={**os.environ, "PG_TEST_TLS": "0"}).stdout.strip()


def sql(port, query, *args):
    """The first row of `query` on the test pair's server at `port` (autocommit)."""
    import psycopg2
    conn = psycopg2.connect(f"postgresql://tally:tally@127.0.0.1:{port}/tally?sslmode=disable")
    try:
        conn.autocommit = True
        cur = conn.cursor()
        cur.execute(query, args)
        return cur.fetchone() if cur.description else None
    finally:
        conn.close()


def test_a_failover_is_followed_with_the_clients_retries(monkeypatch):
    """A primary and its streaming standby of their own, listed in one URI (the standby first) with
    `target_session_attrs=read-write`: the server writes to the primary. Then the primary is fenced (it still answers,
    and takes no writes) and the standby promoted: the client's next requests (its retries of the 503s) go on on the new
    primary, and nothing more reaches the old one. Then the old primary dies, and nothing changes."""
    import uuid
    # The client's retries as a user has them (the suite turns them off: conftest), sooner (the factor is an int).
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "7")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    # Directories the postgres user can reach (pg-test makes and chowns them): not under this run's private TMPDIR.
    base = f"/tmp/tally-failover-{uuid.uuid4().hex[:12]}"
    primary, standby = base + "-primary", base + "-standby"
    p = urllib.parse.urlsplit(pg_test("start", primary)).port
    server = None
    try:
        s = urllib.parse.urlsplit(pg_test("standby", primary, standby)).port
        uri = f"postgresql://tally:tally@127.0.0.1:{s},127.0.0.1:{p}/tally?sslmode=disable&target_session_attrs=read-write"
        server = Server("--backend-store-uri", uri)
        c = MlflowClient(server.url)
        exp = c.create_experiment("before-failover")
        run = c.create_run(exp).info.run_id
        c.log_param(run, "lr", "0.1")
        for step in range(3):
            c.log_metric(run, "loss", 1.0 / (step + 1), step=step)
        # The standby has everything before the failover (replication is asynchronous). The insert position: the test
        # cluster commits without waiting for the WAL's write (synchronous_commit off), so the write position may not
        # include the last commits yet.
        target = sql(p, "SELECT pg_current_wal_insert_lsn()::text")[0]
        for _ in range(1500):
            if sql(s, "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", target)[0]:
                break
            time.sleep(0.02)
        else:
            raise AssertionError("the standby did not catch up with the primary in 30 s")
        # The old primary fenced (still answering, read-only), the standby promoted.
        sql(p, "ALTER SYSTEM SET default_transaction_read_only = on")
        sql(p, "SELECT pg_reload_conf()")
        pg_test("promote", standby)
        c.log_metric(run, "loss", 0.1, step=3)
        after = c.create_experiment("after-failover")
        c.log_param(run, "after", "failover")
        assert sql(s, "SELECT count(*) FROM experiments WHERE name = 'after-failover'")[0] == 1
        assert sql(p, "SELECT count(*) FROM experiments WHERE name = 'after-failover'")[0] == 0
        # The old primary dies: nothing changes for the server.
        pg_test("kill", primary)
        c.set_terminated(run)
        r = c.get_run(run)
        assert r.data.params == {"lr": "0.1", "after": "failover"}
        assert r.data.metrics == {"loss": 0.1} and r.info.status == "FINISHED"
        assert [m.value for m in c.get_metric_history(run, "loss")] == [1.0, 0.5, 1.0 / 3, 0.1]
        assert c.get_experiment_by_name("before-failover").experiment_id == exp
        assert c.get_experiment_by_name("after-failover").experiment_id == after
    finally:
        if server:
            server.stop()
        pg_test("stop", standby)
        pg_test("stop", primary)
