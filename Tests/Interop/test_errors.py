"""Every error case and limit of the reference's §4–§5, through the unmodified client where it can send the request,
over raw HTTP where the client refuses to (its own checks) or cannot express it (wrong JSON types)."""
import mlflow
import pytest
import requests
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException

API = "/api/2.0/mlflow"


def post(server, path, body):
    return requests.post(server.url + API + path, json=body, timeout=30)


def get(server, path, params):
    return requests.get(server.url + API + path, params=params, timeout=30)


def expect_error(resp, status, code, fragment):
    assert resp.status_code == status, resp.text
    assert resp.headers["Content-Type"].startswith("application/json")
    body = resp.json()
    assert body["error_code"] == code, body
    assert fragment in body["message"], body["message"]


@pytest.fixture(scope="module")
def run_id(server):
    return MlflowClient().create_run("0").info.run_id


def store(c):
    return c._tracking_client.store


# §5.1 log-batch limits (the client chunks, so its REST store is called directly as a buggy client would)

def test_batch_limits(server, run_id):
    c = MlflowClient()
    with pytest.raises(MlflowException, match="at most 1000 metrics. Got 1001 metrics") as e:
        store(c).log_batch(run_id, metrics=[Metric("m", 1.0, 1, i) for i in range(1001)], params=[], tags=[])
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"
    with pytest.raises(MlflowException, match="at most 100 params. Got 101 params"):
        store(c).log_batch(run_id, metrics=[], params=[Param(f"p{i}", "v") for i in range(101)], tags=[])
    with pytest.raises(MlflowException, match="at most 100 tags. Got 101 tags"):
        store(c).log_batch(run_id, metrics=[], params=[], tags=[RunTag(f"t{i}", "v") for i in range(101)])
    with pytest.raises(MlflowException, match="at most 1000 metrics, params, and tags in total"):
        store(c).log_batch(run_id, metrics=[Metric("m", 1.0, 1, i) for i in range(950)],
                           params=[Param(f"p{i}", "v") for i in range(51)], tags=[])
    # Nothing of a refused batch was stored.
    assert c.get_metric_history(run_id, "m") == [] and c.get_run(run_id).data.params == {}
    # The client's own chunking keeps a large batch within the limits.
    c.log_batch(run_id, metrics=[Metric("chunked", float(i), 1, i) for i in range(2500)],
                params=[Param(f"cp{i}", "v") for i in range(150)], tags=[RunTag(f"ct{i}", "v") for i in range(150)])
    r = c.get_run(run_id)
    assert len(c.get_metric_history(run_id, "chunked")) == 2500 and len([k for k in r.data.params if k.startswith("cp")]) == 150


def test_key_rules(server, run_id):
    c = MlflowClient()
    with pytest.raises(MlflowException, match="exceeded length limit of 250"):
        store(c).log_metric(run_id, Metric("k" * 251, 1.0, 1, 0))
    with pytest.raises(MlflowException, match="exceeded length limit of 250"):
        store(c).log_param(run_id, Param("k" * 251, "v"))
    with pytest.raises(MlflowException, match="exceeded length limit of 250"):
        store(c).set_tag(run_id, RunTag("k" * 251, "v"))
    store(c).log_metric(run_id, Metric("k" * 250, 1.0, 1, 0))  # exactly at the limit
    for bad in ["a/../b", "/abs", "..", "./a", "a//b"]:
        with pytest.raises(MlflowException, match="must not resolve to other names") as e:
            store(c).log_metric(run_id, Metric(bad, 1.0, 1, 0))
        assert e.value.error_code == "INVALID_PARAMETER_VALUE"
    with pytest.raises(MlflowException, match="Names may only contain alphanumerics"):
        store(c).log_param(run_id, Param("bad key!", "v"))
    store(c).log_metric(run_id, Metric("ok/a-b_c.d e:f", 1.0, 1, 0))
    assert "ok/a-b_c.d e:f" in c.get_run(run_id).data.metrics


def test_long_values_are_truncated(server, run_id):
    c = MlflowClient()
    store(c).log_param(run_id, Param("long", "x" * 7000))
    store(c).set_tag(run_id, RunTag("long", "y" * 9000))
    r = c.get_run(run_id)
    assert r.data.params["long"] == "x" * 6000 and r.data.tags["long"] == "y" * 8000


def test_experiment_rules(server):
    c = MlflowClient()
    with pytest.raises(MlflowException, match="Missing value for required parameter 'name'"):
        c.create_experiment("")  # protobuf leaves the empty string out
    # Spaces alone are a name to MLflow (its rule refuses only the empty name).
    assert post(server, "/experiments/create", {"name": "   "}).status_code == 200
    with pytest.raises(MlflowException, match="exceeds the maximum length of 500"):
        store(c).create_experiment("e" * 501)
    c.create_experiment("e" * 500)
    exp = c.create_experiment("errors-exp")
    with pytest.raises(MlflowException, match="already exists") as e:
        c.create_experiment("errors-exp")
    assert e.value.error_code == "RESOURCE_ALREADY_EXISTS"
    expect_error(post(server, "/experiments/create", {"name": "errors-exp"}), 400, "RESOURCE_ALREADY_EXISTS", "already exists")
    with pytest.raises(MlflowException, match="Experiment ID must be a valid integer"):
        c.get_experiment("abc")
    with pytest.raises(MlflowException, match="No Experiment with id=424242 exists") as e:
        c.delete_experiment("424242")
    assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    c.set_experiment_tag(exp, "k" * 250, "v" * 20000)
    with pytest.raises(MlflowException):
        c.set_experiment_tag(exp, "k", "v" * 20001)
    c.delete_experiment(exp)
    with pytest.raises(MlflowException, match=f"The experiment {exp} must be in the 'active' state"):
        c.create_run(exp)
    # get-by-name of a missing experiment: None, not an exception
    assert c.get_experiment_by_name("no-such-experiment") is None


def test_metric_semantics(server, run_id):
    c = MlflowClient()
    with pytest.raises(MlflowException, match="Timestamp must be a nonnegative long"):
        store(c).log_metric(run_id, Metric("neg_ts", 1.0, -1, 0))
    expect_error(post(server, "/runs/log-metric", {"run_id": run_id, "key": "v", "value": "abc", "timestamp": 1}),
                 400, "INVALID_PARAMETER_VALUE", "Invalid value \"abc\" for parameter 'value' supplied")
    expect_error(post(server, "/runs/log-metric", {"run_id": run_id, "key": "v", "value": True, "timestamp": 1}),
                 400, "INVALID_PARAMETER_VALUE", "for parameter 'value' supplied")
    expect_error(post(server, "/runs/log-metric", {"run_id": run_id, "key": "v", "value": 1.0}),
                 400, "INVALID_PARAMETER_VALUE", "Missing value for required parameter 'timestamp'")
    expect_error(post(server, "/runs/log-batch", {"run_id": run_id, "metrics": [{"key": "v", "value": 1.0}]}),
                 400, "INVALID_PARAMETER_VALUE", "Missing value for required parameter 'metrics[0].timestamp'")
    expect_error(post(server, "/runs/log-metric", {"run_id": run_id, "key": "v", "value": 1.0, "timestamp": "soon"}),
                 400, "INVALID_PARAMETER_VALUE", "for parameter 'timestamp' supplied")
    # int64 accepted as strings, as protobuf parses JSON
    assert post(server, "/runs/log-metric", {"run_id": run_id, "key": "s", "value": 2.5, "timestamp": "17", "step": "-3"}).status_code == 200
    assert [(m.timestamp, m.step, m.value) for m in c.get_metric_history(run_id, "s")] == [(17, -3, 2.5)]
    # An identical point sent again (a retry) is dropped; same step with another value is a new point.
    for _ in range(3):
        store(c).log_batch(run_id, metrics=[Metric("dup", 1.0, 5, 1), Metric("dup", 1.0, 5, 1)], params=[], tags=[])
    store(c).log_metric(run_id, Metric("dup", 2.0, 5, 1))
    assert sorted(m.value for m in c.get_metric_history(run_id, "dup")) == [1.0, 2.0]
    # Across differently composed requests too, as MLflow's SQL store does.
    store(c).log_batch(run_id, metrics=[Metric("dup2", 1.0, 5, 1), Metric("dup2", 2.0, 6, 2)], params=[], tags=[])
    store(c).log_metric(run_id, Metric("dup2", 1.0, 5, 1))
    store(c).log_batch(run_id, metrics=[Metric("dup2", 2.0, 6, 2), Metric("dup2", 3.0, 7, 3)], params=[], tags=[])
    assert [(m.step, m.value) for m in c.get_metric_history(run_id, "dup2")] == [(1, 1.0), (2, 2.0), (3, 3.0)]


def test_params_and_tags_semantics(server):
    c = MlflowClient()
    rid = c.create_run("0").info.run_id
    c.log_param(rid, "lr", "0.01")
    c.log_param(rid, "lr", "0.01")  # the same value again is fine
    with pytest.raises(MlflowException, match="Changing param values is not allowed. Param with key='lr' was already logged") as e:
        c.log_param(rid, "lr", "0.02")
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"
    with pytest.raises(MlflowException, match="Changing param values is not allowed. Params were already logged"):
        c.log_batch(rid, params=[Param("lr", "0.5")])
    with pytest.raises(MlflowException, match=r"Duplicate parameter keys have been submitted: \['dup'\]"):
        store(c).log_batch(rid, metrics=[], params=[Param("dup", "1"), Param("dup", "2")], tags=[])
    c.log_batch(rid, params=[Param("lr", "0.01"), Param("new", "1")])  # existing same value: skipped
    c.log_batch(rid, tags=[RunTag("t", "1"), RunTag("t", "2")])  # last write wins
    c.set_tag(rid, "mlflow.runName", "renamed")
    r = c.get_run(rid)
    assert r.data.params == {"lr": "0.01", "new": "1"} and r.data.tags["t"] == "2" and r.info.run_name == "renamed"
    c.log_param(rid, "empty", "")  # protobuf leaves "" out of the JSON: a missing value is the empty string
    assert c.get_run(rid).data.params["empty"] == ""
    with pytest.raises(MlflowException, match="No tag with name: nope"):
        c.delete_tag(rid, "nope")


def test_run_lifecycle_errors(server):
    c = MlflowClient()
    rid = c.create_run("0").info.run_id
    with pytest.raises(MlflowException, match="Run with id=0123456789abcdef0123456789abcdef not found") as e:
        c.get_run("0123456789abcdef0123456789abcdef")
    assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    expect_error(get(server, "/runs/get", {}), 400, "INVALID_PARAMETER_VALUE", "Missing value for required parameter 'run_id'")
    c.delete_run(rid)
    assert c.get_run(rid).info.lifecycle_stage == "deleted"  # get still works
    msg = f"The run {rid} must be in the 'active' state. Current state is deleted."
    for call in [lambda: c.log_metric(rid, "m", 1.0), lambda: c.log_param(rid, "p", "1"), lambda: c.set_tag(rid, "t", "1"),
                 lambda: c.log_batch(rid, metrics=[Metric("m", 1.0, 1, 0)]), lambda: c.set_terminated(rid, "FINISHED")]:
        with pytest.raises(MlflowException, match=msg.replace("'", ".")):
            call()
    c.restore_run(rid)
    c.log_metric(rid, "m", 1.0)
    exp = c.create_experiment("errors-lifecycle")
    runs = [c.create_run(exp).info.run_id for _ in range(3)]
    c.delete_experiment(exp)
    assert {c.get_run(r).info.lifecycle_stage for r in runs} == {"deleted"}
    assert len(c.search_runs([exp], run_view_type=mlflow.entities.ViewType.DELETED_ONLY)) == 3
    c.restore_experiment(exp)
    assert {c.get_run(r).info.lifecycle_stage for r in runs} == {"active"}


def test_search_limits(server):
    c = MlflowClient()
    with pytest.raises(MlflowException, match="Invalid value 50001 for parameter 'max_results' supplied"):
        c.search_runs(["0"], max_results=50001)
    expect_error(post(server, "/experiments/search", {"max_results": 0}), 400, "INVALID_PARAMETER_VALUE",
                 "Invalid value 0 for parameter 'max_results' supplied. It must be a positive integer")
    expect_error(post(server, "/experiments/search", {"max_results": 50001}), 400, "INVALID_PARAMETER_VALUE", "It must be at most 50000")
    with pytest.raises(MlflowException, match="Invalid clause\\(s\\) in filter string"):
        c.search_runs(["0"], filter_string="metrics.a > 0 OR metrics.b > 0")
    with pytest.raises(MlflowException, match="Invalid entity type 'foo'"):
        c.search_runs(["0"], filter_string="foo.a = 'x'")
    with pytest.raises(MlflowException, match="Invalid ordering key"):
        c.search_runs(["0"], order_by=["metrics.acc DESCENDING"])
    with pytest.raises(MlflowException, match="Invalid page token"):
        c.search_runs(["0"], page_token="!!!not-base64!!!")
    with pytest.raises(MlflowException, match="Invalid entity type 'params'"):
        c.search_experiments(filter_string="params.a = 'x'")


def test_history_limits(server, run_id):
    ajax = server.url + "/ajax-api/2.0/mlflow/metrics"
    many = [f"{i:032x}" for i in range(101)]
    expect_error(requests.get(ajax + "/get-history-bulk-interval", params={"run_ids": many, "metric_key": "m"}),
                 400, "INVALID_PARAMETER_VALUE", "must specify at most 100 run_ids. Received 101 run_ids")
    expect_error(requests.get(ajax + "/get-history-bulk-interval", params={"run_ids": [run_id], "metric_key": "m", "max_results": 2501}),
                 400, "INVALID_PARAMETER_VALUE", "max_results must be between 1 and 2500")
    expect_error(requests.get(ajax + "/get-history-bulk-interval", params={"metric_key": "m"}),
                 400, "INVALID_PARAMETER_VALUE", "Missing value for required parameter 'run_ids'")
    expect_error(requests.get(ajax + "/get-history-bulk-interval", params={"run_ids": [run_id]}),
                 400, "INVALID_PARAMETER_VALUE", "Missing value for required parameter 'metric_key'")
    expect_error(requests.get(ajax + "/get-history-bulk-interval",
                              params={"run_ids": [run_id], "metric_key": "m", "start_step": 1, "end_step": 0}),
                 400, "INVALID_PARAMETER_VALUE", "end_step must be greater than start_step")
    expect_error(requests.get(ajax + "/get-history-bulk-interval", params={"run_ids": [run_id], "metric_key": "m", "start_step": 1}),
                 400, "INVALID_PARAMETER_VALUE", "both must be specified")
    expect_error(requests.get(ajax + "/get-history-bulk", params={"run_id": many, "metric_key": "m"}),
                 400, "INVALID_PARAMETER_VALUE", "cannot specify more than 100 run_ids")
    expect_error(requests.get(ajax + "/get-history-bulk", params={"metric_key": "m"}),
                 400, "INVALID_PARAMETER_VALUE", "must specify at least one run_id")
    expect_error(requests.get(ajax + "/get-history-bulk", params={"run_id": [run_id]}),
                 400, "INVALID_PARAMETER_VALUE", "must specify a metric_key")
    expect_error(get(server, "/metrics/get-history", {"run_id": run_id, "metric_key": "m", "max_results": 0}),
                 400, "INVALID_PARAMETER_VALUE", "max_results")


def test_errors_are_never_5xx_for_client_mistakes(server, run_id):
    cases = [
        ("/runs/log-batch", {"run_id": "bad id!", "metrics": []}),
        ("/runs/log-batch", {"run_id": run_id, "metrics": [{"key": "a", "value": 1, "timestamp": 1, "step": 1.5}]}),
        ("/runs/log-batch", {"run_id": run_id, "metrics": "nope"}),
        ("/runs/search", {"experiment_ids": ["0"], "order_by": ["metrics.a", "metrics.a"]}),
        ("/runs/search", {"experiment_ids": ["0"], "filter": "metrics.a >"}),
        ("/experiments/update", {"experiment_id": "0"}),
        ("/experiments/set-experiment-tag", {"experiment_id": "0", "value": "v"}),
        ("/runs/set-tag", {"run_id": run_id, "key": 5, "value": "v"}),
        ("/runs/log-parameter", {"run_id": run_id, "key": ["a"], "value": "v"}),
        ("/runs/create", {"experiment_id": "not-a-number"}),
        ("/runs/delete", {}),
    ]
    for path, body in cases:
        r = post(server, path, body)
        assert 400 <= r.status_code < 500, (path, body, r.status_code, r.text)
        assert r.json()["error_code"] and r.json()["message"], (path, r.text)
