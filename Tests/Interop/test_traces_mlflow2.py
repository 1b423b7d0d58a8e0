"""MLflow 2's last client (2.22, `.venv-mlflow222`, made by scripts/bootstrap) tracing against Tally: it starts and
ends its traces through MLflow 2's trace API (`traces` under 2.0), writes the spans under the artifact location the
server gives, and reads them back by its own get and search; MLflow 3's client (this venv's) then reads the same
trace, spans and all. The same script against a real `mlflow server` 3.17 says what MLflow makes of it."""
import json
import os
import subprocess

import mlflow
import pytest

from conftest import MlflowServer, module_server, once_per_suite

MLFLOW222 = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), ".venv-mlflow222", "bin", "python")

# Run by MLflow 2.22's client: traces an experiment's calls, then reads what it wrote; prints it as JSON.
SCRIPT = r"""
import json, sys, mlflow
from mlflow import MlflowClient
mlflow.set_tracking_uri(sys.argv[1])
mlflow.set_experiment(sys.argv[2])

@mlflow.trace
def inner(x):
    return x * 2

@mlflow.trace(span_type="CHAIN", attributes={"k": "v"})
def outer(x):
    return inner(x) + 1

@mlflow.trace
def boom():
    raise ValueError("kaboom")

outer(3)
ok = mlflow.get_last_active_trace_id()
try:
    boom()
except ValueError:
    pass
failed = mlflow.get_last_active_trace_id()
c = MlflowClient()
c.set_trace_tag(ok, "reviewed", "yes")
t = mlflow.get_trace(ok)
spans = {s.name: {"parent": s.parent_id, "inputs": s.inputs, "outputs": s.outputs, "type": s.span_type} for s in t.data.spans}
print(json.dumps({
    "ok": ok, "failed": failed, "status": t.info.status.value, "failed_status": mlflow.get_trace(failed).info.status.value,
    "duration": t.info.execution_time_ms, "tags": t.info.tags, "spans": spans,
    "outer_span": t.data.spans[0].span_id if t.data.spans[0].name == "outer" else t.data.spans[1].span_id,
    "searched": [x.info.request_id for x in mlflow.search_traces(filter_string="tags.reviewed = 'yes'", return_type="list")],
    "all": [x.info.request_id for x in c.search_traces(experiment_ids=[t.info.experiment_id], max_results=1)],
    "page": c.search_traces(experiment_ids=[t.info.experiment_id], max_results=1).token is not None,
}))
"""


@pytest.fixture(scope="module")
def local():
    yield from module_server()


def trace_with_mlflow2(url, experiment):
    out = subprocess.run([MLFLOW222, "-c", SCRIPT, url, experiment], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "MLFLOW_ENABLE_ASYNC_TRACE_LOGGING": "false", "MLFLOW_DISABLE_TELEMETRY": "true"})
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Failed" not in out.stderr, out.stderr[-3000:]  # a trace it could not send, spans it could not read
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_mlflow2_client_traces_and_reads_back(local):
    got = trace_with_mlflow2(local.url, "mlflow2-traces")
    assert len(got["ok"]) == 32 and not got["ok"].startswith("tr-")  # MLflow 2's ids
    assert got["status"] == "OK" and got["failed_status"] == "ERROR" and got["duration"] >= 0
    assert got["tags"]["reviewed"] == "yes" and got["tags"]["mlflow.traceName"] == "outer"
    assert got["tags"]["mlflow.artifactLocation"].endswith(f"/traces/{got['ok']}/artifacts")
    spans = got["spans"]
    assert set(spans) == {"outer", "inner"} and spans["inner"]["parent"] == got["outer_span"], spans
    assert spans["outer"]["inputs"] == {"x": 3} and spans["outer"]["outputs"] == 7 and spans["outer"]["type"] == "CHAIN"
    assert got["searched"] == [got["ok"]] and len(got["all"]) == 1 and got["page"]
    # MLflow 3's client reads the same trace, its spans from where MLflow 2's client wrote them.
    mlflow.set_tracking_uri(local.url)
    t = mlflow.get_trace(got["ok"])
    assert t.info.state.value == "OK" and t.info.tags["reviewed"] == "yes" and t.info.trace_metadata["mlflow.trace_schema.version"] == "2"
    assert {s.name for s in t.data.spans} == {"outer", "inner"}
    assert [x.info.trace_id for x in mlflow.search_traces(filter_string="trace.status = 'ERROR'", return_type="list",
                                                          locations=[t.info.experiment_id])] == [got["failed"]]


@once_per_suite(shifted=True)  # the client and the oracle are the same in both passes
def test_mlflow2_client_reads_the_same_from_mlflow(local):
    """The script's view of a real `mlflow server`, against Tally's: the same statuses, tags (the server's location aside)
    and spans."""
    oracle = MlflowServer()
    try:
        theirs, ours = trace_with_mlflow2(oracle.url, "mlflow2-side-by-side"), trace_with_mlflow2(local.url, "mlflow2-side-by-side")
    finally:
        oracle.stop()
    for key in ("status", "failed_status", "page"):
        assert theirs[key] == ours[key], key
    assert len(theirs["searched"]) == len(ours["searched"]) == 1 and len(theirs["all"]) == len(ours["all"]) == 1
    strip = lambda tags: {k: v for k, v in tags.items() if k != "mlflow.artifactLocation"}
    assert strip(theirs["tags"]) == strip(ours["tags"])
    norm = lambda spans: {n: {k: v for k, v in s.items() if k != "parent"} for n, s in spans.items()}
    assert norm(theirs["spans"]) == norm(ours["spans"])
