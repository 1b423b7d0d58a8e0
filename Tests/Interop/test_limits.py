"""Request body limits per endpoint and the idle-connection timeout, on a server started with small limits."""
import socket
import time

import mlflow
import pytest
import requests
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException

from conftest import Server


@pytest.fixture(scope="module")
def limited():
    s = Server("--max-body-bytes", "3000000", "--max-small-body-bytes", "100000", "--idle-timeout", "1")
    mlflow.set_tracking_uri(s.url)
    yield s
    code = s.proc.poll()
    s.stop()
    assert code is None, "the server died during the tests"


def test_body_limits_per_endpoint(limited):
    c = MlflowClient()
    rid = c.create_run("0").info.run_id
    # The largest log-batch the client can send within MLflow's limits: 100 params of 6,000 and 100 tags of 8,000
    # characters, with metrics up to 1,000 entities (~1.5 MB): accepted under the data-endpoint limit.
    c.log_batch(rid, metrics=[Metric("m" * 250, float(i), 1, i) for i in range(800)],
                params=[Param("p%d" % i, "x" * 6000) for i in range(100)], tags=[RunTag("t%d" % i, "y" * 8000) for i in range(100)])
    assert len(c.get_run(rid).data.params) == 100
    # A small-body endpoint refuses more than its limit with 413 and MLflow's error JSON, which the client does
    # not retry: it fails at once.
    t = time.time()
    with pytest.raises(MlflowException, match="exceeds the limit of 100000 bytes") as e:
        c.set_experiment_tag("0", "big", "z" * 200_000)
    assert e.value.error_code == "BAD_REQUEST" and time.time() - t < 10
    r = requests.post(limited.url + "/api/2.0/mlflow/runs/log-batch", data=b'{"run_id": "' + b"a" * 3_100_000 + b'"}',
                      headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and r.json()["error_code"] == "BAD_REQUEST" and "3000000 bytes" in r.json()["message"]
    # The server is fine afterwards.
    c.log_metric(rid, "after", 1.0)
    assert c.get_run(rid).data.metrics["after"] == 1.0


def test_idle_connections_are_closed(limited):
    host, port = limited.url.rsplit("/", 1)[1].split(":")
    s = socket.create_connection((host, int(port)))
    s.sendall(b"POST /api/2.0/mlflow/runs/search HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
    s.settimeout(10)
    t = time.time()
    data = s.recv(65536)  # a stalled request: the server closes the connection (possibly after an error answer)
    while data:
        data = s.recv(65536)
    assert time.time() - t < 8
    s.close()
    # Other clients are unaffected.
    assert requests.get(limited.url + "/health").status_code == 200
