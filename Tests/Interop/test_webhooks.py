"""Registry webhooks through the unmodified client (MlflowClient.create_webhook and the rest): events from real
registry work (log_model with registered_model_name, tags, aliases, prompts) reach a receiver, signed as MLflow's
own delivery code signs them; updates, tests and deletes; MLflow's messages for bad webhooks, side by side with a
real `mlflow server`; private addresses refused by default; admins only under --auth basic."""
import base64
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
import requests
import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.webhooks.delivery import _generate_hmac_signature
from sklearn.linear_model import Ridge

from conftest import MlflowServer, Server, module_server, once_per_suite
from test_metrics import samples, scrape

LOCAL = {"MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true", "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https"}
SECRET = "webhook-secret-1"
MODEL_EVENTS = ["registered_model.created", "model_version.created", "model_version_tag.set", "model_version_tag.deleted",
                "model_version_alias.created", "model_version_alias.deleted"]


class Receiver:
    """A loopback HTTP endpoint recording every POST; `/fail` answers 500, everything else 200."""

    def __init__(self):
        got = self.got = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                got.append((self.path, dict(self.headers), body))
                status = 500 if self.path == "/fail" else 200
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b'{"received": true}')

            def log_message(self, *args):
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def wait(self, n, path=None, timeout=15):
        end = time.time() + timeout
        while time.time() < end:
            hits = [g for g in self.got if path is None or g[0] == path]
            if len(hits) >= n:
                return hits
            time.sleep(0.05)
        raise AssertionError(f"{len(self.got)} deliveries, expected {n} to {path}: {self.got}")

    def events(self, path):
        """{"entity.action": (headers, payload)} of the deliveries to `path`."""
        out = {}
        for p, headers, body in self.got:
            if p == path:
                payload = json.loads(body)
                out[f"{payload['entity']}.{payload['action']}"] = (headers, payload, body)
        return out


@pytest.fixture(scope="module")
def receiver():
    r = Receiver()
    yield r
    r.http.shutdown()


@pytest.fixture(scope="module")
def local():
    yield from module_server("--expose-prometheus", tempfile.mkdtemp(prefix="tally-wh-metrics-"), env=LOCAL)


def test_registry_work_is_delivered_signed(local, receiver):
    c = MlflowClient()
    hook = c.create_webhook("ci-hook", receiver.url + "/models", MODEL_EVENTS, description="CI", secret=SECRET)
    assert hook.name == "ci-hook" and hook.status.value == "ACTIVE" and hook.description == "CI" and hook.secret is None
    assert sorted(str(e) for e in hook.events) == sorted(MODEL_EVENTS)
    assert c.get_webhook(hook.webhook_id).url == receiver.url + "/models"
    assert hook.webhook_id in [w.webhook_id for w in c.list_webhooks()]

    mlflow.set_experiment("webhooks")
    X = np.random.default_rng(3).normal(size=(20, 2))
    with mlflow.start_run() as run:
        info = mlflow.sklearn.log_model(Ridge().fit(X, X[:, 0]), name="model", registered_model_name="wh-model")
    c.set_model_version_tag("wh-model", "1", "validated", "yes")
    c.delete_model_version_tag("wh-model", "1", "validated")
    c.set_registered_model_alias("wh-model", "champion", "1")
    c.delete_registered_model_alias("wh-model", "champion")
    receiver.wait(6, "/models")
    events = receiver.events("/models")
    assert sorted(events) == sorted(MODEL_EVENTS)
    ids = set()
    for name, (headers, payload, body) in events.items():
        # Verified with MLflow's own signing code, as a receiver built on MLflow's docs would.
        expected = _generate_hmac_signature(SECRET, headers["X-MLflow-Delivery-Id"], headers["X-MLflow-Timestamp"], body.decode())
        assert headers["X-MLflow-Signature"] == expected, name
        assert abs(int(headers["X-MLflow-Timestamp"]) - time.time()) < 120
        ids.add(headers["X-MLflow-Delivery-Id"])
    assert len(ids) == 6
    version = events["model_version.created"][1]["data"]
    assert version["name"] == "wh-model" and version["version"] == "1" and version["run_id"] == run.info.run_id
    assert version["source"] == f"models:/{info.model_id}"
    assert events["registered_model.created"][1]["data"]["name"] == "wh-model"
    assert events["model_version_tag.set"][1]["data"] == {"name": "wh-model", "version": "1", "key": "validated", "value": "yes"}
    assert events["model_version_alias.created"][1]["data"] == {"name": "wh-model", "alias": "champion", "version": "1"}
    assert events["model_version_alias.deleted"][1]["data"] == {"name": "wh-model", "alias": "champion"}


def test_prompts_fire_prompt_events(local, receiver):
    c = MlflowClient()
    c.create_webhook("prompts", receiver.url + "/prompts", ["prompt.created", "prompt_version.created", "prompt_alias.created"])
    c.register_prompt("greeting", "Hello {{name}}!", commit_message="first", tags={"team": "nlp"})
    c.set_prompt_alias("greeting", "prod", 1)
    receiver.wait(3, "/prompts")
    events = receiver.events("/prompts")
    assert events["prompt.created"][1]["data"]["name"] == "greeting"
    assert "mlflow.prompt.is_prompt" not in events["prompt.created"][1]["data"]["tags"]
    created = events["prompt_version.created"][1]["data"]
    assert created["template"] == "Hello {{name}}!" and created["version"] == "1" and created["description"] == "first"
    assert events["prompt_alias.created"][1]["data"] == {"name": "greeting", "alias": "prod", "version": "1"}
    assert "X-MLflow-Signature" not in events["prompt.created"][0]  # no secret, no signature


def test_update_test_and_delete(local, receiver):
    c = MlflowClient()
    hook = c.create_webhook("lifecycle", receiver.url + "/life", ["registered_model.created"])
    off = c.update_webhook(hook.webhook_id, status="DISABLED", name="lifecycle-2", description="paused")
    assert off.status.value == "DISABLED" and off.name == "lifecycle-2" and off.description == "paused"
    c.create_registered_model("while-disabled")
    result = c.test_webhook(hook.webhook_id)  # tests reach a disabled webhook too
    assert result.success and result.response_status == 200 and json.loads(result.response_body) == {"received": True}
    assert [json.loads(b)["data"]["name"] for p, _, b in receiver.wait(1, "/life")] == ["example_model"]
    c.update_webhook(hook.webhook_id, url=receiver.url + "/fail", status="ACTIVE", events=["model_version_alias.deleted"])
    failed = c.test_webhook(hook.webhook_id)
    assert not failed.success and failed.response_status == 500
    c.update_webhook(hook.webhook_id, url="http://127.0.0.1:1/closed")
    refused = c.test_webhook(hook.webhook_id)
    assert not refused.success and refused.response_status is None and refused.error_message.startswith("Failed to test webhook")
    c.delete_webhook(hook.webhook_id)
    with pytest.raises(MlflowException) as e:
        c.get_webhook(hook.webhook_id)
    assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST" and hook.webhook_id in e.value.message
    time.sleep(0.5)
    assert [p for p, _, _ in receiver.got if p == "/life"] == ["/life"]  # the disabled webhook got nothing of "while-disabled"


def test_deliveries_are_counted(local, receiver):
    """After the tests above: every registry event they caused was delivered; only tests failed (not counted)."""
    families = scrape(local.url)
    counted = samples(families, "tally_webhook_deliveries", "_total")
    assert counted[frozenset({("result", "delivered")})] >= 9 and counted[frozenset({("result", "failed")})] == 0, counted
    assert samples(families, "tally_webhook_deliveries_pending") == {frozenset(): 0.0}


BAD = [
    ("POST", "webhooks", {"name": "bad name!", "url": "http://a.example", "events": [{"entity": "MODEL_VERSION", "action": "CREATED"}]}),
    ("POST", "webhooks", {"name": "h", "url": "ftp://a.example/x", "events": [{"entity": "MODEL_VERSION", "action": "CREATED"}]}),
    ("POST", "webhooks", {"name": "h", "url": "http://", "events": [{"entity": "MODEL_VERSION", "action": "CREATED"}]}),
    ("POST", "webhooks", {"name": "h", "url": "   ", "events": [{"entity": "MODEL_VERSION", "action": "CREATED"}]}),
    ("POST", "webhooks", {"name": "h", "url": "http://a.example", "events": [{"entity": "MODEL_VERSION", "action": "DELETED"}]}),
    ("POST", "webhooks", {"name": "h", "url": "http://a.example", "events": []}),
    ("POST", "webhooks", {"name": "h", "url": "http://a.example"}),
    ("POST", "webhooks", {"url": "http://a.example", "events": [{"entity": "MODEL_VERSION", "action": "CREATED"}]}),
    ("POST", "webhooks", {"name": "h", "url": "http://a.example", "events": {"entity": "MODEL_VERSION", "action": "CREATED"}}),
    ("GET", "webhooks?max_results=1001", None),
    ("GET", "webhooks?page_token=garbage", None),
    ("GET", "webhooks/no-such-id", None),
    ("PATCH", "webhooks/no-such-id", {"name": "x"}),
    # How MLflow prints a value of the wrong type (json.dumps: compact, keys sorted, non-ASCII escaped), any endpoint.
    ("POST", "experiments/create", {"name": {"b": "é😀", "a": [1, {"z": None, "y": True}], "b": "last"}}),
]


def test_errors_match_mlflow(local):
    oracle = MlflowServer(env=LOCAL)
    try:
        for method, path, body in BAD:
            answers = [requests.request(method, f"{base}/api/2.0/mlflow/{path}", json=body) for base in (local.url, oracle.url)]
            ours, theirs = answers
            assert ours.status_code == theirs.status_code, (path, body, ours.text, theirs.text)
            o, t = ours.json(), theirs.json()
            assert (o["error_code"], o["message"]) == (t["error_code"], t["message"]), (path, body)
    finally:
        oracle.stop()


def test_private_addresses_refused_by_default(receiver):
    s = Server()
    try:
        url = s.url + "/api/2.0/mlflow/webhooks"
        event = [{"entity": "MODEL_VERSION", "action": "CREATED"}]
        r = requests.post(url, json={"name": "h", "url": receiver.url + "/x", "events": event})
        assert r.status_code == 400 and r.json()["message"] == "Invalid webhook URL scheme: 'http'. Allowed schemes are: https."
        for target in ("https://127.0.0.1/x", "https://localhost/x", "https://169.254.169.254/latest/meta-data", "https://10.0.0.1/"):
            r = requests.post(url, json={"name": "h", "url": target, "events": event})
            assert r.status_code == 400 and "must not resolve to a non-public IP address" in r.json()["message"], (target, r.text)
    finally:
        s.stop()


def test_admins_only_under_basic_auth(receiver):
    s = Server("--auth", "basic", env={**LOCAL, "MLFLOW_AUTH_ADMIN_PASSWORD": "admin-password-1"})
    try:
        admin = ("admin", "admin-password-1")
        r = requests.post(s.url + "/api/2.0/mlflow/users/create", json={"username": "dana", "password": "dana-password"}, auth=admin)
        assert r.status_code == 200, r.text
        body = {"name": "h", "url": receiver.url + "/auth", "events": [{"entity": "MODEL_VERSION", "action": "CREATED"}]}
        r = requests.post(s.url + "/api/2.0/mlflow/webhooks", json=body, auth=("dana", "dana-password"))
        assert r.status_code == 403 and r.json()["error_code"] == "PERMISSION_DENIED"
        assert requests.get(s.url + "/api/2.0/mlflow/webhooks", auth=("dana", "dana-password")).status_code == 403
        assert requests.get(s.url + "/api/2.0/mlflow/webhooks").status_code == 401
        r = requests.post(s.url + "/api/2.0/mlflow/webhooks", json=body, auth=admin)
        assert r.status_code == 200 and "secret" not in r.json()["webhook"]
    finally:
        s.stop()


@once_per_suite()  # imports into a data directory of its own
def test_import_and_export_carry_webhooks(receiver, monkeypatch):
    """From MLflow's database (its secrets opened with the MLflow server's key) and through its API (which shows no
    secrets): the same ids, names, events and states, firing from Tally at once; a rerun imports nothing twice;
    exported back to a fresh MLflow, which then signs with the secret that came through Tally."""
    from cryptography.fernet import Fernet
    from test_import import import_into

    key = Fernet.generate_key().decode()
    m = MlflowServer(env={**LOCAL, "MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY": key})
    work = tempfile.mkdtemp(prefix="tally-import-webhooks-")
    try:
        # The key is read as the registry's models are defined, which the oracles' fork server did under its own
        # environment: this oracle is the real `mlflow server` (mlflow_oracle.start).
        assert isinstance(m.proc, subprocess.Popen), "an oracle with another webhook key was forked"
        c = MlflowClient(m.url)
        signed = c.create_webhook("signed", receiver.url + "/imported", ["registered_model.created", "model_version.created"],
                                  description="from mlflow", secret="carried-secret")
        paused = c.create_webhook("paused", receiver.url + "/paused", ["prompt.created"], status="DISABLED")
        gone = c.create_webhook("gone", receiver.url + "/gone", ["prompt.created"])
        c.delete_webhook(gone.webhook_id)
        monkeypatch.setenv("MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY", key)
        for kind in ("db", "url"):
            d = os.path.join(work, kind)
            result = import_into(m, os.path.join(d, "data"), kind=kind)
            assert "webhooks" in result.stdout and (("without its secret" in result.stderr) == (kind == "url")), (kind, result.stderr)
            s = Server(directory=d, env=LOCAL)
            try:
                hooks = {w["name"]: w for w in requests.get(s.url + "/api/2.0/mlflow/webhooks").json()["webhooks"]}
                assert set(hooks) == {"signed", "paused"}, kind
                assert hooks["signed"]["webhook_id"] == signed.webhook_id and hooks["paused"]["webhook_id"] == paused.webhook_id
                assert hooks["signed"]["description"] == "from mlflow" and hooks["paused"]["status"] == "DISABLED"
                assert hooks["signed"]["creation_timestamp"] == signed.creation_timestamp
                assert sorted(e["entity"] for e in hooks["signed"]["events"]) == ["MODEL_VERSION", "REGISTERED_MODEL"]
                before = len(receiver.got)
                requests.post(s.url + "/api/2.0/mlflow/registered-models/create", json={"name": f"after-import-{kind}"}).raise_for_status()
                path, headers, body = receiver.wait(before + 1)[-1]
                assert path == "/imported" and json.loads(body)["data"]["name"] == f"after-import-{kind}"
                if kind == "db":
                    assert headers["X-MLflow-Signature"] == _generate_hmac_signature(
                        "carried-secret", headers["X-MLflow-Delivery-Id"], headers["X-MLflow-Timestamp"], body.decode())
                else:
                    assert "X-MLflow-Signature" not in headers
            finally:
                s.stop(keep=True)
        again = import_into(m, os.path.join(work, "db", "data"))
        assert any(line.split() == ["webhooks", "0"] for line in again.stdout.splitlines()), again.stdout
        from conftest import TALLY
        # A command holding another key than the one the secrets were sealed under refuses, naming them.
        other_key = base64.b64encode(os.urandom(32)).decode()
        refused = subprocess.run([TALLY, "export", "mlflow", "--to", "http://127.0.0.1:9", "--data-dir", os.path.join(work, "db", "data")],
                                 capture_output=True, text=True, timeout=120, env={**os.environ, "TALLY_WEBHOOK_SECRET_KEY": other_key})
        assert refused.returncode != 0 and "sealed under another key" in refused.stderr and signed.webhook_id in refused.stderr, refused.stderr
        fresh = MlflowServer(env=LOCAL)
        try:
            subprocess.run([TALLY, "export", "mlflow", "--to", fresh.url, "--data-dir", os.path.join(work, "db", "data")],
                           capture_output=True, text=True, timeout=600, check=True, env={**os.environ, **LOCAL})
            f = MlflowClient(fresh.url)
            exported = {w.name: w for w in f.list_webhooks()}
            assert set(exported) == {"signed", "paused"} and exported["paused"].status.value == "DISABLED"
            before = len(receiver.got)
            assert f.test_webhook(exported["signed"].webhook_id).success
            path, headers, body = receiver.wait(before + 1)[-1]
            assert path == "/imported" and headers["X-MLflow-Signature"] == _generate_hmac_signature(
                "carried-secret", headers["X-MLflow-Delivery-Id"], headers["X-MLflow-Timestamp"], body.decode())
        finally:
            fresh.stop()
    finally:
        m.stop()
        shutil.rmtree(work, ignore_errors=True)
