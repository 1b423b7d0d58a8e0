"""Visibility after commit across a crash: the server is killed (SIGKILL, by the `kill-after-append` fault) after a
log-batch's points are in the WAL and before its metadata transaction commits (`--inject-faults kill-after-append`). After a restart the batch's points
and latest values are entirely visible (the WAL is the truth; latest values are reconciled on open), the params of
the uncommitted transaction are absent, and the client's retry stores each point once and the params."""
import json
import os
import subprocess
import urllib.error
import urllib.request

from conftest import TALLY, Server, free_port


def call(url, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url + path, data=data, method="POST" if body is not None else "GET",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read() or b"{}")


def test_kill_between_wal_append_and_metadata_commit():
    first = Server("--inject-faults", "kill-after-append")
    try:
        run_id = call(first.url, "/api/2.0/mlflow/runs/create", {"experiment_id": "0"})["run"]["info"]["run_id"]
        metrics = [{"key": "loss", "value": 1.0 / (i + 1), "timestamp": 1000 + i, "step": i} for i in range(200)]
        metrics += [{"key": "acc", "value": i / 100, "timestamp": 1000 + i, "step": i} for i in range(100)]
        batch = {"run_id": run_id, "metrics": metrics, "params": [{"key": "lr", "value": "0.1"}], "tags": [{"key": "t", "value": "v"}]}
        try:
            call(first.url, "/api/2.0/mlflow/runs/log-batch", batch)
            raise AssertionError("the server answered; the fault should have killed it")
        except (urllib.error.URLError, ConnectionError):
            pass
        assert first.proc.wait(timeout=30) == -9
        first.log.close()

        second = Server(directory=first.dir)
        try:
            history = call(second.url, f"/api/2.0/mlflow/metrics/get-history?run_id={run_id}&metric_key=loss")["metrics"]
            assert [(m["step"], m["value"]) for m in history] == [(i, 1.0 / (i + 1)) for i in range(200)]
            run = call(second.url, f"/api/2.0/mlflow/runs/get?run_id={run_id}")["run"]
            latest = {m["key"]: (m["step"], m["value"]) for m in run["data"]["metrics"]}
            assert latest == {"loss": (199, 1.0 / 200), "acc": (99, 0.99)}
            assert "params" not in run["data"]
            assert "t" not in {t["key"] for t in run["data"].get("tags", [])}
            found = call(second.url, "/api/2.0/mlflow/runs/search", {"experiment_ids": ["0"], "filter": "metrics.acc > 0.98"})
            assert [r["info"]["run_id"] for r in found["runs"]] == [run_id]
            # The client's retry: points stored once, params and tags now committed.
            call(second.url, "/api/2.0/mlflow/runs/log-batch", batch)
            history = call(second.url, f"/api/2.0/mlflow/metrics/get-history?run_id={run_id}&metric_key=loss")["metrics"]
            assert len(history) == 200
            run = call(second.url, f"/api/2.0/mlflow/runs/get?run_id={run_id}")["run"]
            assert run["data"]["params"] == [{"key": "lr", "value": "0.1"}]
            assert second.proc.poll() is None
        finally:
            second.stop(keep=True)
    finally:
        import shutil
        shutil.rmtree(first.dir, ignore_errors=True)


def test_second_server_on_a_data_directory_in_use_is_refused():
    """Two servers on one data directory would interleave their logs and segments: the second must exit with a
    clear message naming the holder, the first must keep serving, and once it stops the directory opens again."""
    first = Server()
    try:
        port = free_port()
        second = subprocess.run(
            [TALLY, "server", "--host", "127.0.0.1", "--port", str(port), "--data-dir", os.path.join(first.dir, "data")],
            capture_output=True, text=True, timeout=60)
        assert second.returncode != 0
        out = second.stdout + second.stderr
        assert "in use by another process" in out and f"pid {first.proc.pid}" in out, out
        assert urllib.request.urlopen(first.url + "/health", timeout=5).status == 200
    finally:
        first.stop(keep=True)
    again = Server(directory=first.dir)
    again.stop()
