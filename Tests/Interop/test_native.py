"""Tally's native API (columnar ingest, compare) and its Python client, next to the unmodified mlflow client."""
import json
import math
import struct

import mlflow
import pytest
import requests
from mlflow import MlflowClient

import tally_client
from tally_client import encode_batch

NATIVE = "/api/tally/v1"


def native_post(server, run_id, body, binary=False):
    return requests.post(server.url + NATIVE + "/runs/%s/metrics" % run_id, data=body,
                         headers={"Content-Type": "application/x-tally-columns" if binary else "application/json"})


def new_run(name="native"):
    mlflow.set_experiment("interop-native")
    return MlflowClient().create_run(mlflow.get_experiment_by_name("interop-native").experiment_id, run_name=name).info.run_id


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def test_json_columns_are_mlflow_points(server):
    rid = new_run()
    body = {"batch_id": "j1", "metrics": [
        {"key": "loss", "steps": list(range(1000)), "timestamps": [1_700_000_000_000 + i for i in range(1000)],
         "values": [1.0 / (i + 1) for i in range(1000)]},
        {"key": "odd", "steps": [0, 1, 2, 3], "timestamps": [5, 5, 5, 5], "values": ["NaN", "Infinity", "-Infinity", -0.0]},
        {"key": "now", "steps": [7], "values": [1.5]},  # timestamps left out: the server's clock
    ]}
    r = native_post(server, rid, json.dumps(body))
    assert r.status_code == 200 and r.json() == {"points": 1005, "stored": True}
    # Retried with the same batch id: stored once.
    assert native_post(server, rid, json.dumps(body)).json() == {"points": 0, "stored": False}
    c = MlflowClient()
    hist = c.get_metric_history(rid, "loss")
    assert [(h.step, h.timestamp, h.value) for h in hist] == [(i, 1_700_000_000_000 + i, 1.0 / (i + 1)) for i in range(1000)]
    odd = c.get_metric_history(rid, "odd")
    assert math.isnan(odd[0].value) and odd[1].value >= 1.7976931348623157e308 and odd[2].value <= -1.7976931348623157e308
    run = c.get_run(rid)
    assert run.data.metrics["loss"] == 1.0 / 1000 and run.data.metrics["now"] == 1.5
    assert abs(c.get_metric_history(rid, "now")[0].timestamp - run.info.start_time) < 600_000


def test_binary_columns_float64_and_float32(server):
    rid = new_run()
    steps = list(range(10_000))
    values = [math.sin(i / 100.0) for i in steps]
    body = encode_batch([("sin", steps, [1_700_000_000_000] * len(steps), values),
                         ("sin32", steps, [1_700_000_000_000] * len(steps), values)], batch_id="b1")
    # float32 values go in a second request
    r = native_post(server, rid, body, binary=True)
    assert r.status_code == 200 and r.json()["points"] == 20_000
    body32 = encode_batch([("f32", steps[:100], [1] * 100, values[:100])], batch_id="b2", float32=True)
    assert native_post(server, rid, body32, binary=True).json()["points"] == 100
    c = MlflowClient()
    assert [h.value for h in c.get_metric_history(rid, "sin")] == values
    assert [h.value for h in c.get_metric_history(rid, "f32")] == [f32(v) for v in values[:100]]


def test_bad_native_bodies_are_4xx_and_store_nothing(server):
    rid = new_run()
    good = encode_batch([("k", [1, 2], [1, 2], [1.0, 2.0])])
    cases = [
        (good[:20], True, "payload length 59 does not match the 4 bytes sent"),
        (good[:12] + struct.pack("<I", 2) + good[16:], True, "truncated: series[1] key length needs 2 bytes"),
        (b"TLYC\x02" + good[5:], True, "unsupported version 2"),
        (good[:21] + b"\x07" + good[22:], True, "series[0]: value type 7 (expected 4 = float32 or 8 = float64) at byte 21"),
        (good[:22] + b"\x01" + good[23:], True, "reserved byte must be 0"),
        (good + b"xx", True, "payload length"),
        (encode_batch([("bad key!", [1], [1], [1.0])]), True, "Names may only contain"),
        (encode_batch([("k", [1], [-5], [1.0])]), True, "timestamps must be"),
        (b'{"metrics": [{"key": "k", "steps": [1, 2], "values": [1.0, "x"]}]}', False, "metrics[0].values[1]"),
        (b'{"metrics": [{"key": "k", "steps": [1.5], "values": [1.0]}]}', False, "metrics[0].steps[0]: expected an integer"),
        (b'{"metrics": [{"key": "k", "steps": [1], "values": [1.0], "timestamp": [1]}]}', False, "unknown field 'timestamp'"),
        (b'{"metrics": [{"steps": [1], "values": [1.0]}]}', False, "metrics[0].key: missing field"),
        (b'{"metrics": [{"key": "k", "steps": [1], "values": [1.0]}]} trailing', False, "unexpected data"),
        (b'[1, 2]', False, "expected '{' at byte 0"),
        (b'', False, "at byte 0"),
    ]
    for body, binary, fragment in cases:
        r = native_post(server, rid, body, binary)
        assert r.status_code == 400, (body[:40], r.status_code, r.text)
        assert r.json()["error_code"] == "INVALID_PARAMETER_VALUE" and fragment in r.json()["message"], (fragment, r.json())
    assert MlflowClient().get_run(rid).data.metrics == {}
    r = native_post(server, "0123456789abcdef0123456789abcdef", good, True)
    assert r.status_code == 404 and r.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    MlflowClient().delete_run(rid)
    r = native_post(server, rid, good, True)
    assert r.status_code == 400 and "must be in the 'active' state" in r.json()["message"]


def test_python_client_logs_steps_and_series(server):
    exp = "interop-client"
    with tally_client.Run(experiment=exp, tracking_uri=server.url, run_name="client-run", flush_points=5000) as run:
        for step in range(3000):
            run.log(step, loss=1.0 / (step + 1), acc=step / 3000.0, lr=0.1)
        run.log_series("eval", list(range(0, 3000, 100)), [float(i) for i in range(30)], [1] * 30)
        run.flush()
        assert run.points_sent == 9030
    c = MlflowClient(tracking_uri=server.url)
    r = c.get_run(run.run_id)
    assert r.info.status == "FINISHED" and r.info.run_name == "client-run"
    assert c.get_experiment(r.info.experiment_id).name == exp
    assert [h.value for h in c.get_metric_history(run.run_id, "loss")] == [1.0 / (s + 1) for s in range(3000)]
    assert len(c.get_metric_history(run.run_id, "eval")) == 30 and r.data.metrics["acc"] == 2999 / 3000.0


def test_python_client_into_an_mlflow_run_and_failure(server):
    mlflow.set_experiment("interop-client")
    with mlflow.start_run() as mrun:
        mlflow.log_param("lr", 0.1)
        t = tally_client.Run(run_id=mrun.info.run_id, tracking_uri=server.url)
        t.log(1, loss=0.5)
        t.close()
        mlflow.log_metric("loss", 0.25, step=2)
    c = MlflowClient()
    assert [(h.step, h.value) for h in c.get_metric_history(mrun.info.run_id, "loss")] == [(1, 0.5), (2, 0.25)]
    assert c.get_run(mrun.info.run_id).info.status == "FINISHED"  # left to mlflow
    with pytest.raises(ZeroDivisionError):
        with tally_client.Run(experiment="interop-client", tracking_uri=server.url) as failing:
            failing.log(0, x=1.0)
            1 / 0
    assert c.get_run(failing.run_id).info.status == "FAILED"
    bad = tally_client.Run(run_id="0123456789abcdef0123456789abcdef", tracking_uri=server.url)
    bad.log(0, x=1.0)
    with pytest.raises(tally_client.TallyError, match="RESOURCE_DOES_NOT_EXIST"):
        bad.flush()
    bad.close()


def test_compare_m4_mean_lttb_raw_and_differences(server):
    c = MlflowClient()
    a, b = new_run("cmp-a"), new_run("cmp-b")
    c.log_param(a, "lr", "0.1")
    c.log_param(b, "lr", "0.2")
    c.log_param(a, "same", "x")
    c.log_param(b, "same", "x")
    c.set_tag(a, "team", "red")
    series = {}
    for rid, phase in ((a, 0.0), (b, 1.0)):
        steps = list(range(0, 20_000, 2))
        values = [math.sin(s / 500.0 + phase) + (5.0 if s == 7_000 else 0.0) for s in steps]  # one spike
        series[rid] = (steps, values)
        assert native_post(server, rid, encode_batch([("loss", steps, [1] * len(steps), values)]), True).status_code == 200
    r = tally_client.compare([a, b], ["loss"], tracking_uri=server.url, buckets=50)
    # Snapped to the pyramid: 40 buckets of 512 steps from step 0 (19,999 / 50 ≈ 400 → 2^9).
    assert (r["start_step"], r["end_step"], r["buckets"]) == (0, 40 * 512 - 1, 40)
    assert [x["run_name"] for x in r["runs"]] == ["cmp-a", "cmp-b"]
    exact = tally_client.compare([a, b], ["loss"], tracking_uri=server.url, buckets=50, align=False)
    assert (exact["start_step"], exact["end_step"], exact["buckets"]) == (0, 19_998, 50)
    assert max(series[a][1]) in exact["series"][0]["values"]
    assert {p["key"]: p["values"] for p in r["params"]} == {"lr": ["0.1", "0.2"]}
    assert {t["key"]: t["values"] for t in r["tags"]} == {"team": ["red", None], "mlflow.runName": ["cmp-a", "cmp-b"]}
    for s in r["series"]:
        steps, values = series[s["run_id"]]
        summ = s["summary"]
        assert summ["count"] == len(steps) and summ["first"] == {"step": 0, "value": values[0]}
        assert summ["max"]["value"] == max(values) and summ["min"]["value"] == min(values)
        # Exact M4: every returned point is a real point, the spike survives, each bucket gives at most 4.
        real = dict(zip(steps, values))
        assert all(real[st] == v for st, v in zip(s["steps"], s["values"])) and max(values) in s["values"]
        assert len(s["steps"]) <= 4 * 40 and s["steps"] == sorted(s["steps"])
    mean = tally_client.compare([a], ["loss"], tracking_uri=server.url, buckets=10, mode="mean", align=False)["series"][0]
    assert len(mean["steps"]) == 10 and abs(sum(mean["values"]) / 10 - sum(series[a][1]) / len(series[a][1])) < 0.05
    lttb = tally_client.compare([a], ["loss"], tracking_uri=server.url, buckets=100, mode="lttb")["series"][0]
    assert len(lttb["steps"]) == 100 and lttb["steps"][0] == 0 and lttb["steps"][-1] == 19_998
    raw = tally_client.compare([a], ["loss"], tracking_uri=server.url, mode="raw", max_points=500, start_step=100, end_step=5000)["series"][0]
    assert raw["truncated"] and raw["steps"] == list(range(100, 1100, 2)) and raw["summary"]["count"] == 2451
    # The binary form carries the same curves: steps float64, values float32.
    body = requests.post(server.url + NATIVE + "/compare", json={"run_ids": [a, b], "metric_keys": ["loss"], "buckets": 50,
                                                                "format": "binary"})
    assert body.headers["Content-Type"] == "application/x-tally-compare"
    data = body.content
    assert data[:5] == b"TLYR\x01"
    (jlen,) = struct.unpack_from("<I", data, 8)
    meta = json.loads(data[12:12 + jlen])
    at = (12 + jlen + 7) // 8 * 8
    for s, js in zip(meta["series"], r["series"]):
        n = s["points"]
        st = struct.unpack_from("<%dd" % n, data, at)
        vals = struct.unpack_from("<%df" % n, data, at + 8 * n)
        at = (at + 12 * n + 7) // 8 * 8
        assert list(st) == js["steps"] and list(vals) == [f32(v) for v in js["values"]]
    assert at == len(data)


def test_compare_errors(server):
    url = server.url + NATIVE + "/compare"
    rid = new_run()
    for body, fragment in [
        ({"run_ids": [], "metric_keys": ["loss"]}, "run_ids must list 1 to 1000"),
        ({"run_ids": ["a"] * 1001, "metric_keys": ["loss"]}, "run_ids must list 1 to 1000"),
        ({"run_ids": [rid], "metric_keys": []}, "metric_keys must list"),
        ({"run_ids": [rid], "metric_keys": ["loss"], "buckets": 0}, "buckets must be between"),
        ({"run_ids": [rid], "metric_keys": ["loss"], "mode": "fancy"}, "mode must be"),
        ({"run_ids": [rid], "metric_keys": ["loss"], "start_step": 5}, "both must be specified"),
        ({"run_ids": [rid], "metric_keys": ["loss"], "start_step": 5, "end_step": 1}, "end_step must be greater than start_step"),
        ({"run_ids": [rid], "metric_keys": ["loss"], "mode": "raw", "max_points": 0}, "max_points"),
    ]:
        r = requests.post(url, json=body)
        assert r.status_code == 400 and fragment in r.json()["message"], (body, r.text)
    r = requests.post(url, json={"run_ids": ["0123456789abcdef0123456789abcdef"], "metric_keys": ["loss"]})
    assert r.status_code == 404
    r = requests.post(url, json={"run_ids": [rid], "metric_keys": ["nothing"]})
    assert r.status_code == 200 and r.json()["series"] == [] and "start_step" not in r.json()


def test_tally_compare_cli(server):
    import subprocess
    from conftest import TALLY
    c = MlflowClient()
    a, b = new_run("cli-a"), new_run("cli-b")
    c.log_param(a, "lr", "0.1")
    c.log_param(b, "lr", "0.3")
    for rid, scale in ((a, 1.0), (b, 2.0)):
        steps = list(range(1000))
        assert native_post(server, rid, encode_batch([("loss", steps, [1] * 1000, [scale * (1000 - s) for s in steps])]), True).ok
    c.log_metric(b, "loss", float("nan"), step=1000)

    def cli(*args):
        return subprocess.run([TALLY, "compare", "--server", server.url, a, b, "--metric", "loss", *args],
                              capture_output=True, text=True, timeout=60)

    out = cli("--buckets", "20")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split()[:3] == ["run", "metric", "points"]
    row_a = next(l for l in lines if l.startswith("cli-a"))
    row_b = next(l for l in lines if l.startswith("cli-b"))
    assert "1000" in row_a.split() and "1000@0" in row_a and "1@999" in row_a and "1001" in row_b.split()
    spark = row_a.split()[-1]
    assert len(spark) == 20 and spark[0] == "█" and spark[-1] == "▁" and list(spark) == sorted(spark, reverse=True)
    assert any(l.startswith("lr") and "0.1" in l and "0.3" in l for l in lines)
    csv = cli("--format", "csv").stdout.splitlines()
    assert csv[0].startswith("run_id,run_name,metric,count") and len(csv) == 3 and csv[2].split(",")[4] == "1"
    assert json.loads(cli("--format", "json").stdout)["series"][0]["summary"]["count"] == 1000
    bad = subprocess.run([TALLY, "compare", "--server", server.url, "0123456789abcdef0123456789abcdef"], capture_output=True, text=True)
    assert bad.returncode != 0 and "404" in bad.stderr
