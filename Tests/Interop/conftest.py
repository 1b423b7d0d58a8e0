"""Starts a fresh `tally server` per test module on a free loopback port and points the real mlflow client at it.

With TALLY_INTEROP_BACKEND=postgres (and the test cluster's URI in TALLY_TEST_POSTGRES_URI, as `scripts/pg-test run`
sets it), every server keeps its metadata in a PostgreSQL database of its own (made here, kept with the server's
directory so a restarted server finds it): `make test` runs the whole suite once that way.

With TALLY_INTEROP_ARTIFACTS=s3 (and the SeaweedFS of `scripts/s3-test run`: TALLY_TEST_S3_ENDPOINT and the AWS_*
credentials), every server — Tally's and the MLflow oracle — keeps its proxied artifacts in the bucket `tally` under a
prefix of its own (`--artifacts-destination s3://tally/…`): `make test` runs the PostgreSQL pass that way, the
deployment MLflow documents for teams (PostgreSQL + S3)."""
import contextlib
import logging
import os
import threading
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request

import pytest

import mlflow_oracle

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TALLY = os.environ.get("TALLY_BIN", os.path.join(ROOT, ".build", "debug", "tally"))

# Every temporary file of a pytest run under one directory: this suite's directories (its servers', imports',
# exports'), and what the servers, clients, `mlflow server`s and browsers put in TMPDIR. Removed when the run passes,
# kept (and named) when it fails, for the servers' logs. Each pass of scripts/interop has its own; scripts that import
# this module outside pytest make none.
RUN_TMP = None


def pytest_configure(config):
    global RUN_TMP
    RUN_TMP = tempfile.mkdtemp(prefix="tally-interop-run-")
    tempfile.tempdir = RUN_TMP
    os.environ["TMPDIR"] = RUN_TMP


def pytest_sessionfinish(session, exitstatus):
    if RUN_TMP is None:
        return
    if exitstatus == 0:
        shutil.rmtree(RUN_TMP, ignore_errors=True)
    else:
        print(f"\ninterop: the run's temporary files (servers' logs) are kept in {RUN_TMP}")


os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = "60"
# The oracle prices spans from the model catalog MLflow bundles, not one it would fetch from GitHub (offline here).
os.environ["MLFLOW_MODEL_CATALOG_URI"] = ""


POSTGRES = os.environ.get("TALLY_INTEROP_BACKEND") == "postgres"
# With TALLY_INTEROP_POOLER=1 (and the PostgreSQL pass) every server reaches its database through the PgBouncer of
# scripts/pg-test run (transaction mode, two server connections per database), with pool_mode=transaction.
POOLER = POSTGRES and os.environ.get("TALLY_INTEROP_POOLER") == "1"
if POSTGRES and not os.environ.get("TALLY_TEST_POSTGRES_URI"):
    raise RuntimeError("TALLY_INTEROP_BACKEND=postgres needs TALLY_TEST_POSTGRES_URI: run through scripts/pg-test run")
S3 = os.environ.get("TALLY_INTEROP_ARTIFACTS") == "s3"
# Every server a one-server cluster (docs/scale-out.md): PostgreSQL metadata, S3 artifacts and metrics destination,
# writes through the shared log. A server restarted on its directory keeps its node id (it owns its runs again).
CLUSTER = os.environ.get("TALLY_INTEROP_CLUSTER") == "1"
if CLUSTER and not (POSTGRES and S3):
    raise RuntimeError("TALLY_INTEROP_CLUSTER=1 needs TALLY_INTEROP_BACKEND=postgres and TALLY_INTEROP_ARTIFACTS=s3")
if S3:
    if not os.environ.get("TALLY_TEST_S3_ENDPOINT"):
        raise RuntimeError("TALLY_INTEROP_ARTIFACTS=s3 needs TALLY_TEST_S3_ENDPOINT: run through scripts/s3-test run")
    os.environ["MLFLOW_S3_ENDPOINT_URL"] = os.environ["TALLY_TEST_S3_ENDPOINT"]


# scripts/interop runs the suite twice side by side, on SQLite and on PostgreSQL, and takes as long as the longer pass.
# Tests that do not use the servers' backend (an import or export into a data directory of their own) run in one pass
# only (`once_per_suite()`): the SQLite one, unless marked `shifted` and scripts/interop asks (TALLY_INTEROP_SHIFT=1)
# for those to run in the PostgreSQL pass, which is the shorter one. Run alone, without it, every test runs somewhere.
SHIFTED = os.environ.get("TALLY_INTEROP_SHIFT") == "1"


def once_per_suite(shifted=False):
    """The mark of a test that runs in one pass of scripts/interop (see SHIFTED)."""
    in_postgres = shifted and SHIFTED
    return pytest.mark.skipif(POOLER or POSTGRES != in_postgres, reason="independent of the servers' backend: run once, in the "
                              + ("PostgreSQL" if in_postgres else "SQLite") + " pass")


def s3_prefix(kind):
    """A fresh `s3://tally/…` artifact destination."""
    import uuid
    return f"s3://tally/{kind}-{uuid.uuid4().hex[:12]}"


def postgres_database():
    """A fresh database in the test cluster; its URI."""
    import uuid
    admin = os.environ["TALLY_TEST_POSTGRES_URI"]
    name = "i_" + uuid.uuid4().hex[:16]
    subprocess.run(["psql", admin, "-q", "-v", "ON_ERROR_STOP=1", "-c", f"CREATE DATABASE {name}"], check=True, capture_output=True)
    return admin.rsplit("/", 1)[0] + "/" + name


def through_pooler(uri):
    """`uri`'s database through the test cluster's PgBouncer, told so (pool_mode=transaction)."""
    bouncer = os.environ["TALLY_TEST_PGBOUNCER_URI"]
    assert bouncer, "TALLY_INTEROP_POOLER needs scripts/pg-test run with Debian's pgbouncer installed (scripts/bootstrap)"
    return bouncer.rsplit("/", 1)[0] + "/" + uri.rsplit("/", 1)[1] + "?pool_mode=transaction"


def server_database():
    """A fresh database for servers (shared by giving each the URI): through the pooler in the pooler pass."""
    uri = postgres_database()
    return through_pooler(uri) if POOLER else uri


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, *extra, env=None, directory=None, embedded=False):
        """`env`: extra environment variables; `directory`: reuse an earlier server's directory (its data survives);
        `embedded`: serve the directory's own stores (a data directory a test imported into), whatever the pass."""
        self.dir = directory or tempfile.mkdtemp(prefix="tally-interop-")
        self.port = free_port()
        self.tls = "--tls-cert" in extra
        self.url = f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"
        self.log = open(os.path.join(self.dir, "server.log"), "a")
        if POSTGRES and not embedded and "--backend-store-uri" not in extra:
            saved = os.path.join(self.dir, "backend-store-uri")
            if not os.path.exists(saved):
                with open(saved, "w") as f:
                    f.write(server_database())
            extra = ("--backend-store-uri", open(saved).read(), *extra)
        if S3 and not embedded and "--artifacts-destination" not in extra:
            saved = os.path.join(self.dir, "artifacts-destination")
            if not os.path.exists(saved):
                with open(saved, "w") as f:
                    f.write(s3_prefix("tally"))
            extra = (*extra, "--artifacts-destination", open(saved).read())
        if CLUSTER and "--metrics-destination" not in extra and any(str(x).startswith("postgres") for x in extra):
            extra = (*extra, "--metrics-destination", s3_prefix("segments"), "--cluster-secret", "interop-cluster-secret-0123456789",
                     "--node-id", os.path.basename(self.dir), "--lease-seconds", "3")
        # What a CLI command working beside this server (tally token) needs to find the same metadata.
        self.metadata_args = list(extra[:2]) if extra[:1] == ("--backend-store-uri",) else []
        self.proc = subprocess.Popen(
            [TALLY, "server", "--host", "127.0.0.1", "--port", str(self.port), "--data-dir", os.path.join(self.dir, "data"), *extra],
            stdout=self.log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
        # The health poll does not check a test certificate; the tests do. Under --static-prefix, /health is under it.
        prefix = extra[list(extra).index("--static-prefix") + 1] if "--static-prefix" in extra else ""
        serving(self.url + prefix, self.proc, os.path.join(self.dir, "server.log"),
                context=__import__("ssl")._create_unverified_context() if self.tls else None)

    def stop(self, keep=False):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()
        if not keep:
            shutil.rmtree(self.dir, ignore_errors=True)


def start_tally(args, env=None):
    """`tally server ARGS` (no options added) in a fresh directory with `env` added: (process, its log's path)."""
    d = tempfile.mkdtemp(prefix="tally-cli-")
    log = os.path.join(d, "server.log")
    p = subprocess.Popen([TALLY, "server", "--data-dir", os.path.join(d, "data"), *args], env={**os.environ, **(env or {})},
                         stdout=open(log, "w"), stderr=subprocess.STDOUT)
    return p, log


def serving(url, p, log, context=None, timeout=60, name="tally server"):
    """Waits until the server `p` answers `url`'s `/health`; fails with the end of its log (the file `log`) when it
    exits or takes `timeout` seconds instead. `context`: the TLS context of an https `url`; `name`: what the error
    calls the server."""
    deadline = time.time() + timeout
    while True:
        try:
            urllib.request.urlopen(url + "/health", timeout=1, context=context).read()
            return
        except Exception:
            if p.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"{name} did not start: " + open(log).read()[-3000:])
            time.sleep(0.1)


@contextlib.contextmanager
def tally_serving(args, url, env=None):
    """`tally server ARGS` with `env` added, serving `url` (its `/health`) for the `with` block, then stopped; yields
    the path of its log."""
    p, log = start_tally(args, env)
    try:
        serving(url, p, log)
        yield log
    finally:
        p.terminate()
        p.wait(timeout=30)


def refused_start(args, env=None):
    """What `tally server ARGS` says when it will not start (it must exit, not serve)."""
    p, log = start_tally(args, env)
    assert p.wait(timeout=60) != 0, open(log).read()
    return open(log).read()


@pytest.fixture(scope="module")
def server():
    yield from module_server()


def module_server(*extra, env=None):
    """A module's own server (`Server(*extra, env=env)`), the client pointed at it, for a module fixture to `yield
    from`: stopped after the module, which fails if the server died meanwhile."""
    import mlflow
    s = Server(*extra, env=env)
    # Each module gets a fresh server: forget the fluent API's active experiment and run of the previous one.
    while mlflow.active_run():
        mlflow.end_run()
    mlflow.tracking.fluent._active_experiment_id = None
    os.environ.pop("MLFLOW_EXPERIMENT_ID", None)
    mlflow.set_tracking_uri(s.url)
    os.environ["MLFLOW_TRACKING_URI"] = s.url
    yield s
    code = s.proc.poll()
    s.stop()
    assert code is None, "the server died during the tests"


# MLflow's server starts a job runner beside its workers by default (MLFLOW_SERVER_ENABLE_JOB_EXECUTION): seven huey
# consumer processes, each importing mlflow (~4 s of CPU apiece, ~30 s per oracle, a quarter of the interop passes'
# CPU on 2 cores). Jobs only run what the server is asked to invoke (scorers, issue detection, genai evaluation,
# prompt optimisation), which no test asks an oracle for; the REST answers compared are the same without it.
NO_JOB_RUNNER = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}


class MlflowServer:
    """A real `mlflow server` from this venv, the oracle of the differential tests: SQLite backend and proxied
    artifacts in a temp dir (also its working directory, where the auth app keeps basic_auth.db), one worker, a free
    port. `extra`: more arguments (e.g. `--app-name basic-auth`); `env`: more variables."""

    def __init__(self, *extra, env=None, db=None, backend=None, workers=1, auth_cache=True):
        """`db`: start on a copy of this SQLite database (MLflow upgrades an older schema to its own on start);
        `backend`: another backend-store URI (a PostgreSQL database) instead of SQLite; `workers`: its processes;
        `auth_cache`: the auth app's credential cache (below) on."""
        self.work = tempfile.mkdtemp(prefix="tally-oracle-")
        self.backend_uri = backend or "sqlite:///" + os.path.join(self.work, "m.db")
        if db:
            shutil.copy(db, os.path.join(self.work, "m.db"))
        self.url = f"http://127.0.0.1:{free_port()}"
        # Where its proxied artifacts are: a directory here, or a prefix of the test bucket (TALLY_INTEROP_ARTIFACTS=s3).
        self.artifacts = s3_prefix("mlflow") if S3 else os.path.join(self.work, "artifacts")
        log = os.path.join(self.work, "log")
        open(log, "w").close()
        env = dict(env or {})
        if "basic-auth" in extra and auth_cache and "MLFLOW_AUTH_CONFIG_PATH" not in env:
            # MLflow's own basic_auth.ini with its credential cache on (auth_cache_ttl_seconds, off by default): each
            # request otherwise hashes the password again, ~0.4 s of CPU here, which dominated the permission tests.
            # The decisions are the same; a password change, admin change or user deletion drops the cached entry.
            # Only a credential that is not a username and password fails differently with it (a 500: the cache keys
            # on the password): the test of such headers starts its oracle without it.
            ini = os.path.join(self.work, "basic_auth.ini")
            with open(ini, "w") as f:
                f.write("[mlflow]\ndefault_permission = READ\ndatabase_uri = sqlite:///basic_auth.db\nadmin_username = admin\n"
                        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
                        "grant_default_workspace_access = false\nauth_cache_ttl_seconds = 3600\n")
            env["MLFLOW_AUTH_CONFIG_PATH"] = ini
        # MLflow's own `mlflow server` and uvicorn worker, forked from a process that imported their libraries once
        # (mlflow_oracle.py).
        self.proc = mlflow_oracle.start([*extra, "--backend-store-uri", self.backend_uri, "--host", "127.0.0.1",
                                         "--port", self.url.rsplit(":", 1)[1], "--workers", str(workers),
                                         "--artifacts-destination", self.artifacts],
                                        env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", **NO_JOB_RUNNER, **env},
                                        cwd=self.work, log=log)
        try:
            serving(self.url, self.proc, log, timeout=180, name="mlflow server")
        except RuntimeError:
            self.proc.kill()
            raise

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)
        shutil.rmtree(self.work, ignore_errors=True)


class StartingMlflow:
    """An `MlflowServer(*args, **kw)` starting in a thread of its own (the auth app's takes some 20 s), waited for
    when first used."""

    def __init__(self, *args, **kw):
        self.server, self.error = None, None
        self.thread = threading.Thread(target=self.start, args=args, kwargs=kw)
        self.thread.start()

    def start(self, *args, **kw):
        try:
            self.server = MlflowServer(*args, **kw)
        except BaseException as e:  # noqa: B036 (re-raised by get)
            self.error = e

    def get(self):
        self.thread.join()
        if self.error:
            raise self.error
        return self.server

    def stop(self):
        self.thread.join()
        if self.server:
            self.server.stop()


# The admin password of the oracles' auth app (and of Tally's servers compared with it).
ORACLE_ADMIN_PASSWORD = "admin-password-1"


@pytest.fixture(scope="module")
def oracles():
    """A module's real MLflows, started side by side once, when a test first needs one: `plain` (SQLite), and `auth`
    with its auth app (admin `admin`, `ORACLE_ADMIN_PASSWORD`)."""
    started = {"plain": StartingMlflow(),
               "auth": StartingMlflow("--app-name", "basic-auth",
                                      env={"MLFLOW_AUTH_ADMIN_PASSWORD": ORACLE_ADMIN_PASSWORD, "MLFLOW_FLASK_SERVER_SECRET_KEY": "tally-tests"})}
    yield started
    for s in started.values():
        s.stop()


@pytest.fixture
def no_warnings(caplog):
    """Fails the test if the client logged a warning."""
    caplog.set_level(logging.WARNING, logger="mlflow")
    yield
    bad = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and r.name.startswith("mlflow")]
    assert not bad, bad


class RawSession:
    """Raw requests to one server, each answer kept as (step, status, body: parsed JSON, or the text when it is not
    JSON), for differential tests. Writes are spaced out a little so that each has a clock of its own (orders by time
    are then the same on both servers)."""

    def __init__(self, base, auth=None):
        import requests
        self.base, self.auth, self.steps, self.http = base, auth, [], requests.Session()

    def __call__(self, step, method, path, **kw):
        r = self.http.request(method, self.base + path, auth=kw.pop("auth", self.auth), **kw)
        try:
            body = r.json()
        except ValueError:
            body = r.text
        self.steps.append((step, r.status_code, body))
        if method != "GET":
            time.sleep(0.003)
        return body if isinstance(body, dict) else {}

    def note(self, step, value):
        """A fact this session found (compared like an answer)."""
        self.steps.append((step, 0, value))


def acl_users(s, experiment, levels):
    """Users of an auth app made through the session `s` (its admin's), each granted a level on `experiment`: `levels`
    maps a user's name to READ, EDIT, MANAGE or DENY. Each user's (name, password), in `levels`' order."""
    for u in levels:
        s("user " + u, "POST", "/api/2.0/mlflow/users/create", json={"username": u, "password": u + "-password"})
    for u, level in levels.items():
        s(f"grant {u} {level}", "POST", "/api/3.0/mlflow/users/permissions/grant",
          json={"username": u, "resource_type": "experiment", "resource_id": experiment, "permission": level})
    return [(u, u + "-password") for u in levels]


def status_problems(theirs, ours, on_purpose=None):
    """Two `RawSession`s' steps, one under MLflow's auth app and one under Tally's: the steps whose statuses differ
    (a step `on_purpose` names must have the (MLflow's, Tally's) statuses it gives), and Tally's refusals that are not
    the error JSON MLflow's auth app answers."""
    on_purpose = on_purpose or {}
    assert [x[0] for x in theirs.steps] == [x[0] for x in ours.steps]
    problems = []
    for (step, s1, b1), (_, s2, b2) in zip(theirs.steps, ours.steps):
        if step in on_purpose:
            if (s1, s2) != on_purpose[step]:
                problems.append(f"{step}: statuses mlflow {s1}, tally {s2}, expected {on_purpose[step]}")
        elif s1 != s2:
            problems.append(f"{step}: status mlflow {s1} {str(b1)[:200]!r}, tally {s2} {str(b2)[:200]!r}")
        elif s2 in (401, 403) and (not isinstance(b2, dict) or b2.get("error_code") != ("UNAUTHENTICATED" if s2 == 401 else "PERMISSION_DENIED")):
            problems.append(f"{step}: tally's body {b2!r}")
    return problems


def compare_steps(theirs, ours, t, o, message=lambda tokens, text: text, unequal=None):
    """Two `RawSession`s' steps side by side: the same status, `error_code`, and body once `t` and `o` (each a
    `.value(body)` reducer of server-made ids and times to tokens) have reduced them, key order included. Returns the
    problems and, as notes, the error messages that differ (each reduced by `message(tokens, text)` first). `unequal(a,
    b)`, when given, lists where two reduced bodies differ as (where, one's part, the other's)."""
    problems, notes = [], []
    assert [x[0] for x in theirs] == [x[0] for x in ours]
    for (step, s1, b1), (_, s2, b2) in zip(theirs, ours):
        if s1 != s2:
            problems.append(f"{step}: status mlflow {s1} {str(b1)[:300]!r}, tally {s2} {str(b2)[:300]!r}")
        elif s1 >= 400:
            if isinstance(b1, dict) and (not isinstance(b2, dict) or b2.get("error_code") != b1.get("error_code")):
                problems.append(f"{step}: error mlflow {b1}, tally {b2}")
            elif isinstance(b1, dict) and message(t, b1.get("message", "")) != message(o, b2.get("message", "")):
                notes.append(f"{step}: message mlflow {b1.get('message')!r}, tally {b2.get('message')!r}")
        elif unequal is not None:
            problems += [f"{step}: {where}: mlflow {x!r}, tally {y!r}" for where, x, y in unequal(t.value(b1), o.value(b2))]
        elif t.value(b1) != o.value(b2) or (isinstance(b1, dict) and list(b1) != list(b2)):
            problems.append(f"{step}: mlflow {t.value(b1)!r}, tally {o.value(b2)!r}")
    return problems, notes


def small_parts(monkeypatch):
    """The client's thresholds scaled down: files from 1 MiB go up in parts of 5 MiB (S3's minimum), downloads by
    presigned URL come in ranges of 4 MiB."""
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE", str(1 << 20))
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE", str(5 << 20))
    monkeypatch.setenv("MLFLOW_MULTIPART_DOWNLOAD_CHUNK_SIZE", str(4 << 20))


def logged(server, method, target, status=None):
    """Whether the server (started with --access-log) logged a request of `method` to `target`, with `status`."""
    import re
    for line in open(os.path.join(server.dir, "server.log"), encoding="utf-8", errors="replace"):
        if "[TallyServer] request" in line:
            f = dict(re.findall(r"(\w+)=(\S+)", line))
            if f.get("method") == method and f.get("target") == target and (status is None or f.get("status") == str(status)):
                return True
    return False


def expect_proxy_fallback(s):
    """A client forced to use parts and presigned downloads against a server that cannot offer them still uploads
    and downloads, through the proxy, after MLflow's 501 answers."""
    import requests
    from mlflow import MlflowClient
    c = MlflowClient(s.url)
    eid = c.create_experiment("fallback")
    rid = c.create_run(eid).info.run_id
    data = os.urandom(3 * 1024 * 1024 + 1)
    tree = tempfile.mkdtemp(prefix="tally-fallback-")
    try:
        with open(os.path.join(tree, "model.bin"), "wb") as f:
            f.write(data)
        c.log_artifact(rid, os.path.join(tree, "model.bin"), "m")
        back = c.download_artifacts(rid, "m/model.bin", tempfile.mkdtemp(prefix="tally-fallback-back-"))
        assert open(back, "rb").read() == data
    finally:
        shutil.rmtree(tree, ignore_errors=True)
    run = f"/api/2.0/mlflow-artifacts/%s/{eid}/{rid}/artifacts/m"
    assert logged(s, "POST", run % 'mpu/create', 501) and logged(s, "PUT", f"{run % 'artifacts'}/model.bin", 200)
    assert logged(s, "GET", f"{run % 'presigned'}/model.bin", 501) and logged(s, "GET", f"{run % 'artifacts'}/model.bin", 200)
    r = requests.post(s.url + run % "mpu/create", json={"path": "/tmp/x.bin", "num_parts": 1}, timeout=60)
    assert r.status_code == 501 and r.json() == {"error_code": "NOT_IMPLEMENTED",
                                                 "message": "Multipart upload is not supported for the current artifact repository"}, r.text
