#!/usr/bin/env python3
"""Side-by-side: the same workload through the real mlflow client against `tally server` and a real
`mlflow server` (SQLite backend), both started here on free loopback ports. Prints one JSON object.

Usage: .venv-interop/bin/python scripts/bench-vs-mlflow.py [--tally .build/release/tally] [--history-points N]
MLflow gets smaller sizes where it would take minutes (sizes are in the output); compare rates, not totals.
"""
import argparse, contextlib, io, json, os, shutil, tempfile, time, urllib.parse, urllib.request

os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
import mlflow  # noqa: E402
from mlflow import MlflowClient  # noqa: E402
from mlflow.entities import Metric, Param  # noqa: E402

from benchutil import free_port, start, start_mlflow, stop  # noqa: E402


def du(path):
    if os.path.isfile(path):
        return os.path.getsize(path)
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(root, f))
            except OSError:
                pass
    return total


def loss(i):
    """A training-loss-like value as `loss.item()` gives it: a noisy decaying curve, float32-valued."""
    import math, struct
    noise = ((i * 2654435761) % 1000) / 1000.0 - 0.5
    return struct.unpack("f", struct.pack("f", 2.0 * math.exp(-i / 50000.0) + 0.05 * noise + 0.1))[0]


def client_bodies(run_id, points, key="cap"):
    """The exact log-batch request bodies the client's REST store sends (to_proto + message_to_json), 1,000 per body."""
    from mlflow.protos.service_pb2 import LogBatch
    from mlflow.utils.proto_json_utils import message_to_json
    t0 = 1_700_000_000_000
    return [message_to_json(LogBatch(run_id=run_id, metrics=[Metric(key, loss(i), t0 + i, i).to_proto()
                                                                for i in range(s, min(points, s + 1000))])).encode()
            for s in range(0, points, 1000)]


def client_cost():
    """The client's own CPU per metric before any HTTP: building `Metric`s, `to_proto` and `message_to_json`, as
    its REST store does for log_batch (median of 5 × 20,000 metrics). Its inverse bounds the client's rate against
    any server."""
    from mlflow.protos.service_pb2 import LogBatch
    from mlflow.utils.proto_json_utils import message_to_json
    t0, runs = 1_700_000_000_000, []
    for _ in range(5):
        t = time.perf_counter()
        for b in range(20):
            ms = [Metric("loss", loss(i), t0 + i, i) for i in range(b * 1000, b * 1000 + 1000)]
            message_to_json(LogBatch(run_id="0" * 32, metrics=[m.to_proto() for m in ms]))
        runs.append((time.perf_counter() - t) / 20_000)
    us = sorted(runs)[2] * 1e6
    return {"serialise_us_per_metric": round(us, 1), "ceiling_points_per_s": round(1e6 / us)}


def capacity(url, exp, points_per_conn, connections):
    """Server capacity for log-batch: the client's own bodies, serialised beforehand, posted over `connections`
    keep-alive connections (one run each) at once. Measures the server, not the client's ~20 µs/metric of Python."""
    import http.client, threading
    c = MlflowClient()
    host, port = urllib.parse.urlparse(url).netloc.split(":")
    work = [client_bodies(c.create_run(exp).info.run_id, points_per_conn) for _ in range(connections)]
    errors = []

    def post_all(bodies):
        conn = http.client.HTTPConnection(host, int(port), timeout=120)
        for b in bodies:
            conn.request("POST", "/api/2.0/mlflow/runs/log-batch", body=b, headers={"Content-Type": "application/json"})
            r = conn.getresponse()
            r.read()
            if r.status != 200:
                errors.append(r.status)
        conn.close()

    threads = [threading.Thread(target=post_all, args=(w,)) for w in work]
    t = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    elapsed = time.perf_counter() - t
    if errors:
        raise RuntimeError("log-batch failed: %r" % errors[:5])
    return round(points_per_conn * connections / elapsed)


def workload(url, ingest_points, history_points, search_runs, interval_points, capacity_points):
    mlflow.set_tracking_uri(url)
    c = MlflowClient()
    out = {}
    exp = c.create_experiment("bench-%d" % time.time_ns())
    # Ingest through the client's log_batch (1,000 metrics per request).
    run = c.create_run(exp).info.run_id
    t0 = 1_700_000_000_000
    batches = [[Metric("loss", loss(i), t0 + i, i) for i in range(s, min(ingest_points, s + 1000))] for s in range(0, ingest_points, 1000)]
    t = time.perf_counter()
    for b in batches:
        c.log_batch(run, metrics=b)
    out["ingest_points"] = ingest_points
    out["log_batch_points_per_s"] = round(ingest_points / (time.perf_counter() - t))
    out["capacity_points"] = capacity_points * 4
    out["log_batch_capacity_points_per_s"] = capacity(url, exp, capacity_points, 4)
    # History of a long series, and the chart query over it.
    hrun = c.create_run(exp).info.run_id
    for s in range(0, history_points, 1000):
        c.log_batch(hrun, metrics=[Metric("h", float(i), t0 + i, i) for i in range(s, min(history_points, s + 1000))])
    t = time.perf_counter()
    h = c.get_metric_history(hrun, "h")
    out["history_points"] = len(h)
    out["get_history_s"] = round(time.perf_counter() - t, 3)
    # The same pages over raw HTTP, without the client's per-point object building: the server's share.
    # Pages of 25,000 over one keep-alive connection; the time to parse the JSON in Python is measured apart.
    import http.client
    host, port = urllib.parse.urlparse(url).netloc.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=600)
    t = time.perf_counter()
    token, parse_s, nbytes = None, 0.0, 0
    while True:
        q = "run_id=%s&metric_key=h&max_results=25000" % hrun + ("&page_token=" + urllib.parse.quote(token) if token else "")
        conn.request("GET", "/api/2.0/mlflow/metrics/get-history?" + q)
        raw = conn.getresponse().read()
        nbytes += len(raw)
        tp = time.perf_counter()
        token = json.loads(raw).get("next_page_token")
        parse_s += time.perf_counter() - tp
        if not token:
            break
    conn.close()
    out["get_history_raw_http_s"] = round(time.perf_counter() - t - parse_s, 3)
    out["get_history_json_loads_s"] = round(parse_s, 3)
    out["get_history_bytes"] = nbytes
    t = time.perf_counter()
    r = urllib.request.urlopen(url + "/ajax-api/2.0/mlflow/metrics/get-history-bulk-interval?run_ids=%s&metric_key=h&max_results=320" % hrun).read()
    out["bulk_interval_ms"] = round((time.perf_counter() - t) * 1000, 1)
    out["bulk_interval_returned"] = len(json.loads(r).get("metrics", []))
    # Run creation (create + params + 3 metrics + finish) and search over those runs.
    t = time.perf_counter()
    for i in range(search_runs):
        rid = c.create_run(exp).info.run_id
        c.log_batch(rid, metrics=[Metric("loss", (i % 100) / 100, t0, 0), Metric("acc", 0.5, t0, 0), Metric("m3", 1.0, t0, 0)],
                    params=[Param("lr", ["0.01", "0.1"][i % 2]), Param("bs", "32"), Param("opt", "adam"), Param("p4", "x"), Param("p5", "y")])
        c.set_terminated(rid)
    out["search_runs"] = search_runs
    out["create_runs_per_s"] = round(search_runs / (time.perf_counter() - t), 1)
    times = []
    for _ in range(5):
        t = time.perf_counter()
        found = c.search_runs([exp], filter_string="metrics.loss < 0.5 and params.lr = '0.01'", order_by=["metrics.loss"], max_results=1000)
        times.append(time.perf_counter() - t)
    out["search_ms_p50"] = round(sorted(times)[2] * 1000, 1)
    out["search_matched"] = len(found)
    out["points_stored"] = ingest_points + history_points + 3 * search_runs + out["capacity_points"]
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tally", default=os.path.join(os.path.dirname(__file__), "..", ".build", "release", "tally"))
    ap.add_argument("--history-points", type=int, default=1_000_000)
    ap.add_argument("--mlflow-history-points", type=int, default=50_000)
    ap.add_argument("--ingest-points", type=int, default=200_000)
    ap.add_argument("--mlflow-ingest-points", type=int, default=20_000)
    ap.add_argument("--capacity-points", type=int, default=500_000, help="per connection (4 connections)")
    ap.add_argument("--mlflow-capacity-points", type=int, default=5_000)
    ap.add_argument("--search-runs", type=int, default=1000)
    ap.add_argument("--mlflow-search-runs", type=int, default=300)
    a = ap.parse_args()
    result = {"client": client_cost()}
    work = tempfile.mkdtemp(prefix="tally-vs-mlflow-")
    try:
        port = free_port()
        url = "http://127.0.0.1:%d" % port
        data = os.path.join(work, "tally")
        p = start([a.tally, "server", "--port", str(port), "--data-dir", data], url)
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # the client prints a "View run" line per run
                result["tally"] = workload(url, a.ingest_points, a.history_points, a.search_runs, 320, a.capacity_points)
        finally:
            stop(p)
        result["tally"]["disk_bytes"] = du(data)
        result["tally"]["metric_store_bytes"] = du(os.path.join(data, "metrics"))
        db = os.path.join(work, "mlflow.db")
        p, url = start_mlflow(db, os.path.join(work, "mlartifacts"))
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                result["mlflow"] = workload(url, a.mlflow_ingest_points, a.mlflow_history_points, a.mlflow_search_runs, 320, a.mlflow_capacity_points)
        finally:
            stop(p)
        result["mlflow"]["disk_bytes"] = du(db) + du(db + "-wal")
        for side in (result["tally"], result["mlflow"]):
            side["bytes_per_point"] = round(side["disk_bytes"] / side["points_stored"], 2)
            side["get_history_points_per_s"] = round(side["history_points"] / max(side["get_history_s"], 1e-9))
            side["get_history_raw_points_per_s"] = round(side["history_points"] / max(side["get_history_raw_http_s"], 1e-9))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
