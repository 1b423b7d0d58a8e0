"""The unmodified mlflow client (pinned in scripts/bootstrap) against tally server."""
import math
import os
import time

import mlflow
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from conftest import POSTGRES, Server, expect_proxy_fallback, small_parts


def test_default_experiment_and_runs(server):
    c = MlflowClient()
    default = c.get_experiment("0")
    assert default.name == "Default" and default.lifecycle_stage == "active"
    with mlflow.start_run() as run:  # no experiment set: experiment 0
        mlflow.log_metric("m", 1.0)
    assert run.info.experiment_id == "0"
    r = c.get_run(run.info.run_id)
    assert r.info.status == "FINISHED" and r.info.end_time is not None
    assert r.info.run_name and r.data.tags["mlflow.runName"] == r.info.run_name


def test_set_experiment_nested_and_resume(server):
    exp = mlflow.set_experiment("interop-nested")
    assert mlflow.set_experiment("interop-nested").experiment_id == exp.experiment_id
    with mlflow.start_run(run_name="parent") as parent:
        with mlflow.start_run(nested=True) as child:
            mlflow.log_param("p", 1)
    c = MlflowClient()
    assert c.get_run(child.info.run_id).data.tags["mlflow.parentRunId"] == parent.info.run_id
    with mlflow.start_run(run_id=parent.info.run_id):
        mlflow.log_metric("resumed", 2.0)
    r = c.get_run(parent.info.run_id)
    assert r.data.metrics["resumed"] == 2.0 and r.info.status == "FINISHED"


def test_metrics_values_steps_and_latest(server):
    mlflow.set_experiment("interop-metrics")
    with mlflow.start_run() as run:
        mlflow.log_metric("loss", 0.5, step=10)
        mlflow.log_metric("loss", 0.1, step=3)  # lower step: not the latest
        mlflow.log_metric("neg", 1.0, step=-2)
        mlflow.log_metrics({"nan": float("nan"), "inf": float("inf"), "ninf": float("-inf")}, step=1)
        mlflow.log_metric("ts", 3.0, timestamp=1_700_000_000_123)
        mlflow.log_metric("default_step", 4.0)
    c = MlflowClient()
    m = c.get_run(run.info.run_id).data.metrics
    assert m["loss"] == 0.5 and m["neg"] == 1.0 and math.isnan(m["nan"])
    assert m["inf"] >= 1.7976931348623157e308 and m["ninf"] <= -1.7976931348623157e308
    hist = c.get_metric_history(run.info.run_id, "ts")
    assert [(h.timestamp, h.step, h.value) for h in hist] == [(1_700_000_000_123, 0, 3.0)]
    assert [h.step for h in c.get_metric_history(run.info.run_id, "default_step")] == [0]
    assert sorted((h.step, h.value) for h in c.get_metric_history(run.info.run_id, "loss")) == [(3, 0.1), (10, 0.5)]


def test_async_logging(server):
    mlflow.set_experiment("interop-async")
    with mlflow.start_run() as run:
        for i in range(200):
            mlflow.log_metric("a", float(i), step=i, synchronous=False)
    mlflow.flush_async_logging()
    hist = MlflowClient().get_metric_history(run.info.run_id, "a")
    assert sorted(h.step for h in hist) == list(range(200))


def test_params_are_immutable(server):
    mlflow.set_experiment("interop-params")
    with mlflow.start_run() as run:
        mlflow.log_param("lr", 0.01)
        mlflow.log_param("lr", 0.01)
        with pytest.raises(MlflowException, match="Changing param values is not allowed"):
            mlflow.log_param("lr", 0.02)
        mlflow.log_params({"a": 1, "b": "x"})
    assert MlflowClient().get_run(run.info.run_id).data.params == {"lr": "0.01", "a": "1", "b": "x"}


def test_tags_and_failed_runs(server):
    mlflow.set_experiment("interop-tags")
    c = MlflowClient()
    with pytest.raises(RuntimeError):
        with mlflow.start_run() as run:
            mlflow.set_tag("t", "v")
            mlflow.set_tags({"u": "1", "w": "2"})
            raise RuntimeError("boom")
    r = c.get_run(run.info.run_id)
    assert r.info.status == "FAILED" and r.data.tags["t"] == "v" and r.data.tags["w"] == "2"
    c.delete_tag(run.info.run_id, "t")
    assert "t" not in c.get_run(run.info.run_id).data.tags
    with pytest.raises(MlflowException, match="No tag with name: t"):
        c.delete_tag(run.info.run_id, "t")
    c.set_terminated(run.info.run_id, "KILLED")
    assert c.get_run(run.info.run_id).info.status == "KILLED"


def test_log_input(server):
    import pandas as pd
    mlflow.set_experiment("interop-inputs")
    df = pd.DataFrame({"a": [1, 2], "b": [3, 4]})
    ds = mlflow.data.from_pandas(df, name="tiny")
    with mlflow.start_run() as run:
        mlflow.log_input(ds, context="training")
    inputs = MlflowClient().get_run(run.info.run_id).inputs.dataset_inputs
    assert len(inputs) == 1 and inputs[0].dataset.name == "tiny"
    assert {t.key: t.value for t in inputs[0].tags}["mlflow.data.context"] == "training"
    found = mlflow.search_runs(experiment_names=["interop-inputs"], filter_string="datasets.name = 'tiny'")
    assert len(found) == 1


def test_search_runs_filters_order_paging(server):
    exp = mlflow.set_experiment("interop-search")
    ids = []
    for i, (loss, opt) in enumerate([(0.9, "sgd"), (0.5, "adam"), (0.1, "adam"), (0.7, "adam")]):
        with mlflow.start_run(run_name=f"s{i}") as run:
            mlflow.log_metric("loss", loss)
            mlflow.log_param("opt", opt)
            mlflow.set_tag("team", "ml" if i % 2 else "data")
        ids.append(run.info.run_id)
    df = mlflow.search_runs(experiment_ids=[exp.experiment_id], filter_string="metrics.loss < 0.8 and params.opt = 'adam'",
                            order_by=["metrics.loss ASC"])
    assert list(df["tags.mlflow.runName"]) == ["s2", "s1", "s3"]
    c = MlflowClient()
    page1 = c.search_runs([exp.experiment_id], order_by=["metrics.loss DESC"], max_results=3)
    assert [r.info.run_name for r in page1] == ["s0", "s3", "s1"] and page1.token
    page2 = c.search_runs([exp.experiment_id], order_by=["metrics.loss DESC"], max_results=3, page_token=page1.token)
    assert [r.info.run_name for r in page2] == ["s2"] and not page2.token
    assert len(c.search_runs([exp.experiment_id], filter_string="tags.team = 'ml'")) == 2
    assert len(c.search_runs([exp.experiment_id], filter_string=f"attributes.run_id IN ('{ids[0]}', '{ids[1]}')")) == 2
    with pytest.raises(MlflowException, match="Invalid clause"):
        c.search_runs([exp.experiment_id], filter_string="metrics.loss < 1 OR params.opt = 'x'")


def test_experiment_lifecycle(server):
    c = MlflowClient()
    eid = c.create_experiment("interop-life", tags={"k": "v"})
    with pytest.raises(MlflowException, match="already exists"):
        c.create_experiment("interop-life")
    c.rename_experiment(eid, "interop-life-2")
    assert c.get_experiment_by_name("interop-life-2").experiment_id == eid
    assert c.get_experiment_by_name("interop-life") is None
    run = c.create_run(eid)
    c.delete_experiment(eid)
    assert c.get_experiment(eid).lifecycle_stage == "deleted"
    assert c.get_run(run.info.run_id).info.lifecycle_stage == "deleted"
    assert eid in [e.experiment_id for e in c.search_experiments(view_type=mlflow.entities.ViewType.DELETED_ONLY)]
    c.restore_experiment(eid)
    assert c.get_run(run.info.run_id).info.lifecycle_stage == "active"
    c.delete_run(run.info.run_id)
    assert c.get_run(run.info.run_id).info.lifecycle_stage == "deleted"
    with pytest.raises(MlflowException, match="must be in the 'active' state"):
        c.log_metric(run.info.run_id, "m", 1.0)
    c.restore_run(run.info.run_id)
    c.set_experiment_tag(eid, "k2", "v2")
    assert c.get_experiment(eid).tags["k2"] == "v2"
    names = [e.name for e in c.search_experiments(filter_string="name LIKE 'interop-life%'")]
    assert names == ["interop-life-2"]


def test_metric_history_of_100k_points(server):
    mlflow.set_experiment("interop-history")
    c = MlflowClient()
    with mlflow.start_run() as run:
        t0 = 1_700_000_000_000
        for start in range(0, 100_000, 1000):
            c.log_batch(run.info.run_id, metrics=[mlflow.entities.Metric("big", float(i) * 0.5, t0 + i, i) for i in range(start, start + 1000)])
    hist = c.get_metric_history(run.info.run_id, "big")
    assert len(hist) == 100_000
    assert [h.step for h in hist] == list(range(100_000))
    assert all(h.value == h.step * 0.5 for h in hist)


def test_errors_from_the_reference(server):
    c = MlflowClient()
    with pytest.raises(MlflowException, match="RESOURCE_DOES_NOT_EXIST"):
        c.get_run("0123456789abcdef0123456789abcdef")
    with pytest.raises(MlflowException, match="No Experiment with id=999999 exists"):
        c.get_experiment("999999")
    with pytest.raises(MlflowException, match="Experiment ID must be a valid integer"):
        c.get_experiment("abc")
    run = c.create_run("0")
    with pytest.raises(MlflowException, match="Names may only contain alphanumerics"):
        c.log_metric(run.info.run_id, "bad key!", 1.0)
    with pytest.raises(MlflowException, match="at most 1000 metrics"):
        c._tracking_client.store.log_batch(run.info.run_id,
                                           metrics=[mlflow.entities.Metric("m", 1.0, 1, i) for i in range(1001)], params=[], tags=[])
    with pytest.raises(MlflowException, match="Duplicate parameter keys"):
        c._tracking_client.store.log_batch(run.info.run_id, metrics=[],
                                           params=[mlflow.entities.Param("d", "1"), mlflow.entities.Param("d", "2")], tags=[])


def test_history_endpoints_over_http(server):
    import requests
    c = MlflowClient()
    run = c.create_run("0")
    rid = run.info.run_id
    c.log_batch(rid, metrics=[mlflow.entities.Metric("hist", float(i), 1_700_000_000_000 + i, i) for i in range(1000)])
    base = server.url + "/ajax-api/2.0/mlflow/metrics"
    r = requests.get(base + "/get-history-bulk-interval", params={"run_ids": [rid], "metric_key": "hist", "max_results": 5}).json()
    assert [m["step"] for m in r["metrics"]] == [0, 200, 400, 600, 999] and all(m["run_id"] == rid for m in r["metrics"])
    r = requests.get(base + "/get-history-bulk-interval",
                     params={"run_ids": [rid], "metric_key": "hist", "start_step": 100, "end_step": 199, "max_results": 2}).json()
    assert [m["step"] for m in r["metrics"]] == [100, 199]
    bad = requests.get(base + "/get-history-bulk-interval", params={"run_ids": [rid], "metric_key": "hist", "start_step": 1})
    assert bad.status_code == 400 and "both must be specified" in bad.json()["message"]
    bad = requests.get(base + "/get-history-bulk-interval", params={"run_ids": [rid], "metric_key": "hist", "max_results": 2501})
    assert bad.status_code == 400 and bad.json()["message"] == "max_results must be between 1 and 2500."
    assert requests.get(base + "/get-history-bulk-interval", params={"run_ids": ["nope"], "metric_key": "hist"}).json() == {}
    bulk = requests.get(base + "/get-history-bulk", params={"run_id": [rid], "metric_key": "hist", "max_results": 3}).json()
    assert bulk == {"metrics": [{"key": "hist", "run_id": rid, "step": i, "timestamp": 1_700_000_000_000 + i, "value": float(i)} for i in range(3)]}
    api = server.url + "/api/2.0/mlflow/metrics/get-history"
    page = requests.get(api, params={"run_id": rid, "metric_key": "hist", "max_results": 600}).json()
    assert len(page["metrics"]) == 600 and page["next_page_token"]
    rest = requests.get(api, params={"run_id": rid, "metric_key": "hist", "max_results": 600, "page_token": page["next_page_token"]}).json()
    assert len(rest["metrics"]) == 400 and "next_page_token" not in rest
    assert len(requests.get(api, params={"run_id": rid, "metric_key": "hist"}).json()["metrics"]) == 1000
    assert requests.get(api, params={"run_id": "nope", "metric_key": "hist"}).json() == {}
    zero = requests.get(api, params={"run_id": rid, "metric_key": "hist", "max_results": 0})
    assert zero.status_code == 400 and "It must be a positive integer" in zero.json()["message"]


def test_artifacts(server, tmp_path):
    import requests
    mlflow.set_experiment("interop-artifacts")
    src = tmp_path / "cfg.json"
    src.write_text('{"a": 1}')
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "notes.txt").write_text("hello")
    (tmp_path / "dir" / "big.bin").write_bytes(bytes(range(256)) * 20_000)  # 5 MB, streamed
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(src))
        mlflow.log_artifacts(str(tmp_path / "dir"), artifact_path="sub")
        mlflow.log_text("some text", "texts/t.txt")
        mlflow.log_dict({"k": [1, 2]}, "d.json")
    c = MlflowClient()
    top = {f.path: f.is_dir for f in c.list_artifacts(run.info.run_id)}
    assert top == {"cfg.json": False, "d.json": False, "sub": True, "texts": True}
    assert sorted(f.path for f in c.list_artifacts(run.info.run_id, "sub")) == ["sub/big.bin", "sub/notes.txt"]
    out = c.download_artifacts(run.info.run_id, "sub", str(tmp_path / "dl"))
    assert open(out + "/notes.txt").read() == "hello"
    assert open(out + "/big.bin", "rb").read() == bytes(range(256)) * 20_000
    assert mlflow.artifacts.load_text(run.info.artifact_uri + "/texts/t.txt") == "some text"
    assert mlflow.artifacts.load_dict(run.info.artifact_uri + "/d.json") == {"k": [1, 2]}
    # Paths are confined to the artifact root.
    base = server.url + "/api/2.0/mlflow-artifacts/artifacts/"
    import http.client
    import json as _json
    for bad in ["../escape.txt", "a/../../escape.txt", "%2E%2E/escape.txt", "a/%2E%2E/%2E%2E/escape.txt"]:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        conn.request("PUT", "/api/2.0/mlflow-artifacts/artifacts/" + bad, body=b"x")  # sent as is, not normalised
        resp = conn.getresponse()
        body = resp.read()
        assert resp.status == 400 and _json.loads(body)["message"] == "Invalid path", (bad, resp.status, body)
        conn.close()
    r = requests.put(base + "dir/", data=b"x")
    assert r.status_code == 400
    missing = requests.get(base + "0/none.txt")
    assert missing.status_code == 404 and missing.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    assert requests.get(server.url + "/api/2.0/mlflow-artifacts/artifacts", params={"path": "nope"}).json() == {}
    assert requests.get(server.url + "/api/3.0/mlflow/server-info").json()["artifact_serving_enabled"] is True

    listing = requests.get(server.url + "/api/2.0/mlflow/artifacts/list", params={"run_id": run.info.run_id, "path": "sub"}).json()
    assert listing["root_uri"] == run.info.artifact_uri and {f["path"] for f in listing["files"]} == {"sub/big.bin", "sub/notes.txt"}


def test_a_store_on_disk_answers_multipart_requests_as_mlflow_does(monkeypatch, tmp_path):
    """A client told to upload in parts and download by presigned URL (MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD and
    _DOWNLOAD), against a server whose artifacts are on its disk, gets MLflow's 501 NOT_IMPLEMENTED and falls back to
    the proxy: the upload and the download work (before, the upload failed on a 404)."""
    import requests
    small_parts(monkeypatch)
    monkeypatch.setenv("MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD", "true")
    monkeypatch.setenv("MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD", "true")
    s = Server("--artifacts-destination", str(tmp_path / "artifacts"), "--access-log")
    try:
        info = requests.get(s.url + "/api/3.0/mlflow/server-info").json()
        assert info["multipart_uploads_enabled"] is False and info["multipart_downloads_enabled"] is False, info
        expect_proxy_fallback(s)
        r = requests.get(s.url + "/api/2.0/mlflow-artifacts/presigned/0/x.bin")
        assert r.status_code == 501 and r.json()["message"] == "Multipart download is not supported for the current artifact repository"
    finally:
        s.stop()


def test_mlflow_cli(server):
    import mlflow_oracle
    env = dict(os.environ, MLFLOW_TRACKING_URI=server.url)

    def cli(*args):
        # `python -m mlflow ARGS`, forked from the oracles' fork server: MLflow's command without importing it anew
        return mlflow_oracle.run(args, env, timeout=120)

    r = cli("experiments", "create", "--experiment-name", "interop-cli")
    assert r.returncode == 0, r.stderr
    eid = MlflowClient().get_experiment_by_name("interop-cli").experiment_id
    r = cli("experiments", "search")
    assert r.returncode == 0 and "interop-cli" in r.stdout, r.stderr
    run = MlflowClient().create_run(eid)
    r = cli("runs", "list", "--experiment-id", eid)
    assert r.returncode == 0 and run.info.run_id in r.stdout, r.stderr
    r = cli("runs", "describe", "--run-id", run.info.run_id)
    assert r.returncode == 0 and run.info.run_id in r.stdout, r.stderr
    r = cli("runs", "delete", "--run-id", run.info.run_id)
    assert r.returncode == 0 and MlflowClient().get_run(run.info.run_id).info.lifecycle_stage == "deleted", r.stderr
    r = cli("experiments", "rename", "--experiment-id", eid, "--new-name", "interop-cli-2")
    assert r.returncode == 0 and MlflowClient().get_experiment(eid).name == "interop-cli-2", r.stderr
    r = cli("experiments", "delete", "--experiment-id", eid)
    assert r.returncode == 0 and MlflowClient().get_experiment(eid).lifecycle_stage == "deleted", r.stderr
    r = cli("experiments", "restore", "--experiment-id", eid)
    assert r.returncode == 0 and MlflowClient().get_experiment(eid).lifecycle_stage == "active", r.stderr


def test_concurrent_requests_to_one_run(server):
    from concurrent.futures import ThreadPoolExecutor
    c = MlflowClient()
    run = c.create_run("0").info.run_id

    def work(w):
        cl = MlflowClient()
        for b in range(10):
            cl.log_batch(run, metrics=[mlflow.entities.Metric(f"w{w}", float(b * 100 + i), 1_700_000_000_000, b * 100 + i) for i in range(100)],
                         params=[mlflow.entities.Param(f"p{w}", "same")], tags=[mlflow.entities.RunTag(f"t{w}", str(b))])
            cl.log_metric(run, "shared", float(w), step=b)
        return w

    with ThreadPoolExecutor(8) as ex:
        assert sorted(ex.map(work, range(8))) == list(range(8))
    r = c.get_run(run)
    for w in range(8):
        hist = c.get_metric_history(run, f"w{w}")
        assert sorted(h.step for h in hist) == list(range(1000))
        assert r.data.params[f"p{w}"] == "same" and r.data.tags[f"t{w}"] == "9"
    assert len(c.get_metric_history(run, "shared")) == 80


def test_bad_requests_are_4xx_json(server):
    import requests
    api = server.url + "/api/2.0/mlflow"
    run = MlflowClient().create_run("0").info.run_id
    cases = [
        ("POST", "/runs/log-batch", "{not json", 400, None),
        ("POST", "/runs/log-batch", "[1, 2]", 400, None),
        ("POST", "/runs/log-batch", '{"run_id": "%s", "metrics": "foo"}' % run, 400, "Invalid value \"foo\" for parameter 'metrics' supplied"),
        ("POST", "/runs/log-batch", '{"run_id": "%s", "metrics": [{"key": "k", "value": 1}]}' % run, 400,
         "Missing value for required parameter 'metrics[0].timestamp'"),
        ("POST", "/runs/log-metric", '{"run_id": "%s", "key": "k", "value": true, "timestamp": 1}' % run, 400, "Value was of type 'bool'"),
        ("POST", "/runs/log-metric", '{"run_id": 31, "key": "k", "value": 1, "timestamp": 1}', 400, "Invalid value 31 for parameter 'run_id' supplied"),
        ("POST", "/runs/log-metric", '{"runId": "%s", "key": "k", "value": 1, "timestamp": 1}' % run, 400, "Missing value for required parameter 'run_id'"),
        ("POST", "/runs/log-metric", '{"run_id": "%s", "key": "k", "value": 1, "timestamp": "1700000000000", "step": "3"}' % run, 200, None),
        ("POST", "/runs/log-metric", '{"run_id": "%s", "key": "k", "value": 1, "timestamp": 1' % run + ', "x": ' + "[" * 100 + "]" * 100 + "}", 400, None),
        ("POST", "/experiments/search", "{}", 400, "It must be a positive integer"),
        ("GET", "/runs/get", None, 400, "Missing value for required parameter 'run_id'"),
        ("GET", "/nope/nothing", None, 404, None),
        ("POST", "/runs/search", '{"experiment_ids": ["0"], "order_by": ["metrics.a", "metrics.a"]}', 400, "duplicate"),
        ("POST", "/runs/search", '{"experiment_ids": ["0"], "page_token": "!!!"}', 400, "Invalid page token"),
    ]
    for method, path, body, status, fragment in cases:
        r = requests.request(method, api + path, data=body, headers={"Content-Type": "application/json"})
        assert r.status_code == status, (path, body, r.status_code, r.text)
        if status != 200:
            j = r.json()
            assert j["error_code"] and j["message"], (path, r.text)
            if fragment:
                assert fragment in j["message"], (path, j["message"])
    assert requests.post(api + "/runs/search", data="{}", headers={"Content-Type": "application/json"}).json() == {}


def test_review_regressions(server):
    import requests
    from concurrent.futures import ThreadPoolExecutor
    api = server.url + "/api/2.0/mlflow"
    json_ct = {"Content-Type": "application/json"}
    c = MlflowClient()
    run = c.create_run("0").info.run_id
    # Text that is no Unicode (a surrogate without its pair, bytes that are not UTF-8) is a 400, as in MLflow; never a
    # crash, never stored as U+FFFD; a real pair is one character.
    for body in [b'{"name": "\\ud83d\\u0001"}', b'{"name": "x\\ud83d"}', b'{"name": "\\ud83d\\ue000"}', b'{"name": "\\ude00"}',
                 b'{"name": "bad-\xff-utf8"}']:
        r = requests.post(api + "/experiments/create", data=body, headers=json_ct)
        assert r.status_code == 400 and r.json()["error_code"] == "INVALID_PARAMETER_VALUE", (body, r.text)
    r = requests.post(api + "/experiments/create", data='{"name": "pair-\\ud83d\\ude00"}', headers=json_ct)
    assert r.status_code == 200 and c.get_experiment(r.json()["experiment_id"]).name == "pair-\U0001F600"
    # A NUL inside a run id is refused, not truncated onto another run.
    r = requests.post(api + "/runs/log-parameter", data='{"run_id": "%s\\u0000", "key": "k", "value": "1"}' % run, headers=json_ct)
    assert r.status_code == 400 and "NUL" in r.json()["message"]
    assert "k" not in c.get_run(run).data.params
    # NUL in any text is refused on both backends alike (PostgreSQL's text cannot hold it; MLflow on PostgreSQL
    # answers a 500): a clear 400, in a body or in a query string, and nothing stored.
    for path, body in [("/runs/set-tag", {"run_id": run, "key": "nul", "value": "a\x00b"}), ("/experiments/create", {"name": "\x00"}),
                       ("/runs/update", {"run_id": run, "run_name": "a\x00"}),
                       ("/runs/log-inputs", {"run_id": run, "datasets": [{"dataset": {"name": "d\x00", "digest": "1", "source_type": "local", "source": "x"}}]})]:
        r = requests.post(api + path, json=body)
        assert r.status_code == 400 and r.json()["error_code"] == "INVALID_PARAMETER_VALUE" and "NUL" in r.json()["message"], (path, r.text)
    r = requests.get(api + "/runs/get", params={"run_id": run + "\x00"})
    assert r.status_code == 400 and "run_id" in r.json()["message"] and "NUL" in r.json()["message"], r.text
    for url in [api + "/logged-models/m-%00", server.url + "/get-artifact?run_id=%00&path=x", server.url + "/api/2.0/mlflow-artifacts/artifacts/a%00b"]:
        r = requests.get(url)
        assert r.status_code == 400 and "NUL" in r.json()["message"], (url, r.text)
    got = c.get_run(run)
    assert "nul" not in got.data.tags and "\x00" not in got.info.run_name and not got.inputs.dataset_inputs
    # A file where a directory is needed is the client's mistake (4xx, never a retried 5xx).
    base = server.url + "/api/2.0/mlflow-artifacts/artifacts/"
    assert requests.put(base + "rr/a.txt", data=b"x").status_code == 200
    r = requests.put(base + "rr/a.txt/b.txt", data=b"y")
    assert r.status_code == 400 and r.json()["message"] == "Invalid path"
    assert requests.put(base + "rr/" + "n" * 300, data=b"y").status_code == 400
    # Concurrent conflicting params: exactly one value wins and the other call fails.
    for i in range(10):
        def log(v, key=f"race{i}"):
            try:
                MlflowClient().log_param(run, key, v)
                return "ok"
            except MlflowException:
                return "err"
        with ThreadPoolExecutor(2) as ex:
            outcomes = sorted(ex.map(log, ["a", "b"]))
        assert outcomes == ["err", "ok"], outcomes
    # Concurrent batches: the latest value is the one at the highest step, whatever the interleaving.
    def batch(step):
        MlflowClient().log_batch(run, metrics=[mlflow.entities.Metric("lat", float(step), 1, step)])
    with ThreadPoolExecutor(8) as ex:
        list(ex.map(batch, range(64)))
    assert c.get_run(run).data.metrics["lat"] == 63.0
    assert server.proc.poll() is None
