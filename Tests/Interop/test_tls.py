"""`tally server --tls-cert/--tls-key`: HTTPS with a certificate made here by openssl, the real client verifying it
(MLFLOW_TRACKING_SERVER_CERT_PATH) and sending credentials, Secure session cookies, plain HTTP refused on the TLS
port, and a clear refusal to start with an unreadable certificate."""
import os
import socket
import subprocess
import tempfile

import pytest
import requests
from mlflow import MlflowClient

from conftest import TALLY, Server

ADMIN_PASSWORD = "admin-password-1"


@pytest.fixture(scope="module")
def cert():
    d = tempfile.mkdtemp(prefix="tally-tls-")
    crt, key = os.path.join(d, "server.crt"), os.path.join(d, "server.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", crt],
                   check=True, capture_output=True)
    return crt, key


@pytest.fixture(scope="module")
def https(cert):
    s = Server("--tls-cert", cert[0], "--tls-key", cert[1], "--auth", "basic", env={"MLFLOW_AUTH_ADMIN_PASSWORD": ADMIN_PASSWORD})
    yield s
    s.stop()


def test_the_client_over_https(https, cert):
    assert https.url.startswith("https://")
    assert requests.get(https.url + "/health", verify=cert[0]).text == "OK"
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(https.url + "/health")  # not a certificate the system trusts
    saved = dict(os.environ)
    os.environ.update(MLFLOW_TRACKING_SERVER_CERT_PATH=cert[0], MLFLOW_TRACKING_USERNAME="admin", MLFLOW_TRACKING_PASSWORD=ADMIN_PASSWORD)
    try:
        c = MlflowClient(tracking_uri=https.url)
        run = c.create_run(c.create_experiment("over-tls")).info.run_id
        c.log_batch(run, metrics=[__import__("mlflow").entities.Metric("loss", 1.0 / (i + 1), 0, i) for i in range(100)])
        assert len(c.get_metric_history(run, "loss")) == 100
    finally:
        os.environ.clear()
        os.environ.update(saved)


def test_secure_session_cookie_and_no_plain_http(https, cert):
    r = requests.post(https.url + "/api/tally/v1/login", json={"username": "admin", "password": ADMIN_PASSWORD}, verify=cert[0])
    assert r.status_code == 200
    cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Secure" in cookie
    with socket.create_connection(("127.0.0.1", https.port), timeout=5) as s:
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            answer = s.recv(4096)
        except ConnectionResetError:
            answer = b""
    assert b"200 OK" not in answer


def test_unreadable_certificate_is_a_clear_error(cert):
    d = tempfile.mkdtemp(prefix="tally-tls-bad-")
    p = subprocess.run([TALLY, "server", "--data-dir", d, "--port", "0", "--tls-cert", os.path.join(d, "missing.crt"), "--tls-key", cert[1]],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode != 0 and "--tls-cert" in p.stderr and "missing.crt" in p.stderr, p.stderr
    p = subprocess.run([TALLY, "server", "--data-dir", d, "--port", "0", "--tls-cert", cert[0]], capture_output=True, text=True, timeout=60)
    assert p.returncode != 0 and "go together" in p.stderr
