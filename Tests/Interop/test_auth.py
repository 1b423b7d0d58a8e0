"""Access control through the unmodified client: `tally server --auth basic` with users from MLflow's basic-auth
app client (`mlflow.server.get_app_client`), credentials from MLFLOW_TRACKING_USERNAME/PASSWORD and
MLFLOW_TRACKING_TOKEN, per-experiment and per-model permissions with MLflow's names, creators getting MANAGE,
searches filtered (pages too), PERMISSION_DENIED not retried, tokens from the API and from `tally token` beside a
running server, failed logins answered 429, and a server that refuses to start without admin credentials."""
import base64
import contextlib
import os
import subprocess
import tempfile
import time

import numpy as np
import pytest
import requests
import mlflow
import mlflow.server
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException, RestException

from conftest import TALLY, Server

ADMIN_PASSWORD = "admin-password-1"


@contextlib.contextmanager
def as_user(user=None, password=None, token=None):
    """The client's credentials for the block (the client reads them from the environment on every request)."""
    saved = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN")}
    for k in saved:
        os.environ.pop(k, None)
    if user:
        os.environ["MLFLOW_TRACKING_USERNAME"] = user
        os.environ["MLFLOW_TRACKING_PASSWORD"] = password
    if token:
        os.environ["MLFLOW_TRACKING_TOKEN"] = token
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def auth(user, password):
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.fixture(scope="module")
def secured():
    s = Server("--auth", "basic", env={"MLFLOW_AUTH_ADMIN_PASSWORD": ADMIN_PASSWORD})
    mlflow.set_tracking_uri(s.url)
    os.environ["MLFLOW_TRACKING_URI"] = s.url
    with as_user("admin", ADMIN_PASSWORD):
        users = mlflow.server.get_app_client("basic-auth", tracking_uri=s.url)
        for name in ("alice", "bob"):
            users.create_user(name, f"{name}-password")
    yield s
    code = s.proc.poll()
    s.stop()
    assert code is None, "the server died during the tests"


def denied(fn):
    with pytest.raises(RestException) as e:
        fn()
    assert e.value.error_code == "PERMISSION_DENIED", e.value
    return e.value


def test_refuses_to_start_without_admin_credentials():
    d = tempfile.mkdtemp(prefix="tally-auth-")
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_AUTH_ADMIN_PASSWORD"}
    p = subprocess.run([TALLY, "server", "--data-dir", d, "--port", "0", "--auth", "basic"], env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode != 0 and "MLFLOW_AUTH_ADMIN_PASSWORD" in p.stderr, p.stderr
    p = subprocess.run([TALLY, "server", "--data-dir", d, "--port", "0", "--app-name", "nope"], capture_output=True, text=True, timeout=60)
    assert p.returncode != 0 and "--auth basic" in p.stderr


def test_app_client_manages_users_and_grants(secured):
    with as_user("admin", ADMIN_PASSWORD):
        users = mlflow.server.get_app_client("basic-auth", tracking_uri=secured.url)
        carol = users.create_user("carol", "carol-password")
        assert carol.username == "carol" and not carol.is_admin
        assert users.get_user("carol").id == carol.id
        with pytest.raises(MlflowException, match="at least 12 characters"):
            users.create_user("dave", "short")
        with pytest.raises(MlflowException, match="already exists"):
            users.create_user("carol", "carol-password")
        users.update_user_password("carol", "carol-password-2")
        users.update_user_admin("carol", True)
        assert users.get_user("carol").is_admin
        users.update_user_admin("carol", False)
        exp = MlflowClient().create_experiment("granted")
        users.grant_user_permission("carol", "experiment", exp, "EDIT")
        with pytest.raises(MlflowException, match="already exists"):
            users.grant_user_permission("carol", "experiment", exp, "READ")
        perm = users.get_user_permission("carol", "experiment", exp)
        assert perm.permission == "EDIT"
        with pytest.raises(MlflowException, match="Invalid permission 'SUPER'"):
            users.grant_user_permission("carol", "experiment", exp, "SUPER")
        users.revoke_user_permission("carol", "experiment", exp)
        assert users.get_user_permission("carol", "experiment", exp).permission == "READ"  # the default
        users.delete_user("carol")
        with pytest.raises(MlflowException, match="not found"):
            users.get_user("carol")
    with as_user("carol", "carol-password-2"):
        with pytest.raises(MlflowException) as e:
            MlflowClient().search_experiments()
        assert e.value.error_code == "UNAUTHENTICATED"  # deleted: her password no longer works


def test_read_by_default_write_needs_a_grant(secured):
    with as_user("admin", ADMIN_PASSWORD):
        c = MlflowClient()
        exp = c.create_experiment("admins")
        run = c.create_run(exp).info.run_id
        c.log_metric(run, "loss", 0.5, step=1)
    with as_user("alice", "alice-password"):
        c = MlflowClient()
        assert c.get_experiment(exp).name == "admins" and c.get_run(run).data.metrics == {"loss": 0.5}
        assert [m.value for m in c.get_metric_history(run, "loss")] == [0.5]
        os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "3"
        os.environ["MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"] = "2"
        try:
            started = time.time()
            denied(lambda: c.log_param(run, "lr", "0.1"))
            assert time.time() - started < 1.5, "a 403 must not be retried"
        finally:
            os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
            os.environ.pop("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR")
        denied(lambda: c.create_run(exp))
        denied(lambda: c.set_experiment_tag(exp, "k", "v"))
        denied(lambda: c.log_batch(run, metrics=[mlflow.entities.Metric("loss", 1.0, 0, 2)]))
        denied(lambda: c.delete_run(run))
        # Her own experiment: she manages it, and can let bob edit it.
        mine = c.create_experiment("alices")
        r = c.create_run(mine).info.run_id
        c.log_batch(r, metrics=[mlflow.entities.Metric("loss", float(i), 0, i) for i in range(100)])
        mlflow.server.get_app_client("basic-auth", tracking_uri=secured.url).grant_user_permission("bob", "experiment", mine, "EDIT")
        denied(lambda: mlflow.server.get_app_client("basic-auth", tracking_uri=secured.url).grant_user_permission("bob", "experiment", exp, "EDIT"))
    with as_user("bob", "bob-password"):
        c = MlflowClient()
        c.log_param(r, "by", "bob")
        c.log_metric(r, "acc", 0.9, step=1)
        denied(lambda: c.delete_experiment(mine))  # EDIT does not delete
        assert c.get_run(r).data.params == {"by": "bob"}


def test_python_client_and_cli_send_the_credentials(secured):
    import tally_client
    with as_user("alice", "alice-password"):
        exp = MlflowClient().create_experiment("fast-logging")
        run = MlflowClient().create_run(exp).info.run_id
        with tally_client.Run(run_id=run, tracking_uri=secured.url) as r:
            r.log_series("loss", list(range(1000)), [1.0 / (s + 1) for s in range(1000)], [1_700_000_000_000 + s for s in range(1000)])
        assert len(MlflowClient().get_metric_history(run, "loss")) == 1000
        cli = subprocess.run([TALLY, "compare", "--server", secured.url, run, "--metric", "loss", "--buckets", "10"],
                             capture_output=True, text=True, timeout=60, env=dict(os.environ))
        assert cli.returncode == 0, cli.stderr
    with as_user("bob", "bob-password"):
        with pytest.raises(tally_client.TallyError) as e:
            with tally_client.Run(run_id=run, tracking_uri=secured.url) as r:
                r.log_series("loss", [5000], [0.5], [1_700_000_000_000])
        assert e.value.status == 403 and e.value.error_code == "PERMISSION_DENIED"


def test_searches_are_filtered_not_refused(secured):
    with as_user("admin", ADMIN_PASSWORD):
        c = MlflowClient()
        secret = c.create_experiment("secret")
        c.create_run(secret)
        open_ = c.create_experiment("open")
        for _ in range(3):
            c.create_run(open_)
        mlflow.server.get_app_client("basic-auth", tracking_uri=secured.url).grant_user_permission("alice", "experiment", secret, "DENY")
        c.create_registered_model("secret-model")
        c.create_registered_model("open-model")
        mlflow.server.get_app_client("basic-auth", tracking_uri=secured.url).grant_user_permission("alice", "registered_model", "secret-model", "DENY")
    with as_user("alice", "alice-password"):
        c = MlflowClient()
        names = [e.name for e in c.search_experiments(max_results=1000)]
        assert "secret" not in names and "open" in names
        denied(lambda: c.get_experiment(secret))
        denied(lambda: c.get_experiment_by_name("secret"))
        assert c.search_runs([secret]) == []
        assert len(c.search_runs([secret, open_])) == 3
        # Pages of one: full pages and tokens that continue over what she may read only.
        page = c.search_experiments(max_results=1)
        seen = [e.name for e in page]
        while page.token:
            page = c.search_experiments(max_results=1, page_token=page.token)
            seen += [e.name for e in page]
            assert len(page) == 1
        assert "secret" not in seen and "open" in seen and len(seen) == len(set(seen))
        models = [m.name for m in c.search_registered_models()]
        assert "open-model" in models and "secret-model" not in models
        denied(lambda: c.get_registered_model("secret-model"))
        assert all(v.name != "secret-model" for v in c.search_model_versions())


def test_models_and_artifacts_follow_their_permissions(secured):
    from sklearn.linear_model import Ridge
    X = np.arange(20.0).reshape(10, 2)
    with as_user("alice", "alice-password"):
        mlflow.set_experiment("alice-models")
        with mlflow.start_run() as run:
            mlflow.log_text("hello", "notes/a.txt")
            mlflow.sklearn.log_model(Ridge().fit(X, X[:, 0]), name="model", registered_model_name="alice-model")
        c = MlflowClient()
        c.set_registered_model_alias("alice-model", "champion", "1")
    with as_user("bob", "bob-password"):
        c = MlflowClient()
        assert mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/notes/a.txt") == "hello"
        model = mlflow.pyfunc.load_model("models:/alice-model@champion")
        assert model.predict(X).shape == (10,)
        denied(lambda: c.update_registered_model("alice-model", description="bob was here"))
        denied(lambda: c.set_registered_model_alias("alice-model", "bob", "1"))
        with pytest.raises(Exception) as e:  # the artifact client raises requests' HTTPError with the body
            MlflowClient().log_text(run.info.run_id, "overwritten", "notes/a.txt")
        assert "403" in str(e.value) or "PERMISSION_DENIED" in str(e.value), e.value
    with as_user("alice", "alice-password"):
        assert mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/notes/a.txt") == "hello"
        MlflowClient().delete_registered_model("alice-model")


def test_tokens(secured):
    r = requests.post(secured.url + "/api/tally/v1/tokens", json={"name": "ci", "expires_in_days": 30}, headers=auth("alice", "alice-password"))
    assert r.status_code == 200, r.text
    token = r.json()["token"]
    assert r.json()["id"].startswith("tok-")
    with as_user(token=token):
        assert MlflowClient().create_experiment("by-token")
    listed = requests.get(secured.url + "/api/tally/v1/tokens", headers=auth("alice", "alice-password")).json()["tokens"]
    assert [t["name"] for t in listed] == ["ci"] and "token" not in listed[0]
    # The CLI, beside the running server.
    data = os.path.join(secured.dir, "data")
    cli = subprocess.run([TALLY, "token", "create", "--data-dir", data, "--user", "bob", "--name", "laptop", "--expires", "7d", *secured.metadata_args],
                         capture_output=True, text=True, timeout=60)
    assert cli.returncode == 0, cli.stderr
    bob_token = cli.stdout.strip()
    assert "\n" not in bob_token and bob_token.startswith("tly_")
    with as_user(token=bob_token):
        assert MlflowClient().search_experiments()
    ids = subprocess.run([TALLY, "token", "list", "--data-dir", data, "--user", "bob", *secured.metadata_args], capture_output=True, text=True, timeout=60).stdout
    assert "laptop" in ids
    tid = ids.split("\t")[0]
    assert subprocess.run([TALLY, "token", "revoke", "--data-dir", data, "--user", "bob", "--id", tid, *secured.metadata_args], timeout=60).returncode == 0
    # Through the server's admin socket (the embedded file is the server's alone), the server's own change: at once.
    # With --backend-store-uri the command writes the shared database itself: seen within the 5 s cache.
    deadline = time.time() + (8 if secured.metadata_args else 0)
    while requests.get(secured.url + "/api/2.0/mlflow/experiments/search?max_results=1", headers={"Authorization": "Bearer " + bob_token}).status_code != 401:
        assert time.time() < deadline, "a revoked token still works"
        time.sleep(0.5)
    # Revoked through the API: at once.
    tid = r.json()["id"]
    assert requests.delete(secured.url + f"/api/tally/v1/tokens/{tid}", headers=auth("alice", "alice-password")).status_code == 200
    assert requests.get(secured.url + "/api/2.0/mlflow/experiments/search?max_results=1", headers={"Authorization": "Bearer " + token}).status_code == 401
    # Audit lines: who created and revoked what; never a secret.
    log = open(os.path.join(secured.dir, "server.log")).read()
    for line in ["audit: admin created user 'alice'", "audit: alice created token", "audit: alice revoked token " + tid,
                 "audit: alice granted EDIT on experiment:"]:
        assert line in log, line
    assert token not in log and bob_token not in log and "alice-password" not in log


def test_failed_logins_get_429():
    s = Server("--auth", "basic", "--auth-max-failures", "3", env={"MLFLOW_AUTH_ADMIN_PASSWORD": ADMIN_PASSWORD})
    try:
        url = s.url + "/api/2.0/mlflow/experiments/search?max_results=1"
        codes = [requests.get(url, headers=auth("admin", f"guess-{i}")).status_code for i in range(3)]
        assert codes == [401, 401, 401]
        r = requests.get(url, headers=auth("admin", ADMIN_PASSWORD))
        assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0 and r.json()["error_code"] == "REQUEST_LIMIT_EXCEEDED"
        anon = requests.get(url)
        assert anon.status_code == 401 and anon.headers["WWW-Authenticate"] == 'Basic realm="mlflow"'
        log = open(os.path.join(s.dir, "server.log")).read()
        assert ADMIN_PASSWORD not in log and "guess-" not in log
    finally:
        s.stop()
