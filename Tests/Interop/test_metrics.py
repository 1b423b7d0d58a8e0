"""`--expose-prometheus`: /metrics, differential against a real `mlflow server --expose-prometheus` (the oracle, with
the pinned prometheus-flask-exporter it serves them with). The same requests go to both servers, through the real
client and by hand; both pages are read with prometheus_client's own parser, and MLflow's request metrics must agree
in name, type, labels, buckets and counts. Tally's own figures are checked against what the requests did."""
import os
import tempfile
import urllib.request

import pytest
import requests
from mlflow import MlflowClient
from prometheus_client.parser import text_string_to_metric_families

from conftest import POSTGRES, MlflowServer, Server, free_port, tally_serving

TOTAL, DURATION = "mlflow_http_request", "mlflow_http_request_duration_seconds"


def scrape(url):
    """{family name: family} of one scrape, parsed by the reference parser; also checks the content type."""
    r = requests.get(url + "/metrics", timeout=30)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4"), r.headers
    return {f.name: f for f in text_string_to_metric_families(r.text)}


def samples(families, family, suffix=""):
    """{frozenset of labels (the version label left out): value} of a family's samples named family + suffix."""
    f = families.get(family)
    return {frozenset((k, v) for k, v in s.labels.items() if k != "mlflow_version"): s.value
            for s in (f.samples if f else []) if s.name == family + suffix}


def workload(url):
    """The same requests to either server: the client's calls, errors of each kind, and what is never counted."""
    c = MlflowClient(url)
    e = c.create_experiment("scraped")
    run = c.create_run(e).info.run_id
    c.log_param(run, "lr", "0.1")
    for step in range(3):
        c.log_metric(run, "loss", 1.0 / (step + 1), step=step)
    c.set_terminated(run)
    assert c.get_run(run).data.metrics == {"loss": 1.0 / 3}
    c.search_runs([e], "metrics.loss < 1")
    api = url + "/api/2.0/mlflow"
    assert requests.post(api + "/experiments/create", json={"name": "scraped"}).status_code == 400  # exists
    assert requests.get(api + "/runs/get", params={"run_id": "f" * 32}).status_code == 404
    assert requests.post(api + "/runs/create", data=b"{bad", headers={"Content-Type": "application/json"}).status_code == 400
    assert requests.get(url + "/no/such/page").status_code == 404
    for path in ("/health", "/version", "/metrics"):
        assert requests.get(url + path).status_code == 200


@pytest.fixture(scope="module")
def oracle():
    d = tempfile.mkdtemp(prefix="mlflow-prom-")
    m = MlflowServer("--expose-prometheus", d)
    yield m
    m.stop()


def test_request_metrics_match_mlflows(oracle):
    d = tempfile.mkdtemp(prefix="tally-prom-")
    s = Server("--expose-prometheus", os.path.join(d, "multiproc"))
    try:
        assert os.path.isdir(os.path.join(d, "multiproc")), "the directory is created, as MLflow creates it"
        workload(oracle.url)
        workload(s.url)
        theirs, ours = scrape(oracle.url), scrape(s.url)
        for name, kind in ((TOTAL, "counter"), (DURATION, "histogram")):
            assert theirs[name].type == ours[name].type == kind
        # Counts per (method, status): the /health, /version and /metrics requests left out by both.
        assert samples(ours, TOTAL, "_total") == samples(theirs, TOTAL, "_total"), (samples(ours, TOTAL, "_total"), samples(theirs, TOTAL, "_total"))
        assert samples(ours, DURATION, "_count") == samples(theirs, DURATION, "_count")
        assert sum(samples(ours, TOTAL, "_total").values()) > 10
        # The same buckets, and the same label names on every sample.
        assert samples(ours, DURATION, "_bucket").keys() == samples(theirs, DURATION, "_bucket").keys()
        for fam in (ours, theirs):
            assert {tuple(sorted(x.labels)) for x in fam[DURATION].samples if x.name.endswith("_count")} == {("method", "mlflow_version", "status")}
        ours_version = {x.labels["mlflow_version"] for x in ours[DURATION].samples}
        assert ours_version == {urllib.request.urlopen(s.url + "/version").read().decode()}
        # Every series' bucket counts add up to its count.
        for key, count in samples(ours, DURATION, "_count").items():
            assert samples(ours, DURATION, "_bucket")[key | {("le", "+Inf")}] == count

        # Where Tally differs on purpose (docs/monitoring.md): the browser defences' refusals are counted; MLflow
        # refuses them in front of Flask, where its exporter never sees them.
        for url in (oracle.url, s.url):
            r = requests.get(url + "/api/2.0/mlflow/experiments/search", params={"max_results": 1}, headers={"Host": "evil.example"})
            assert r.status_code == 403, (url, r.status_code)
        refused = frozenset({("method", "GET"), ("status", "403")})
        assert refused not in samples(scrape(oracle.url), TOTAL, "_total")
        assert samples(scrape(s.url), TOTAL, "_total")[refused] == 1

        # Tally's own: the three points, the finished run, the process.
        assert ours["tally_store_points_appended"].samples[0].value == 3
        assert ours["tally_store_runs"].samples[0].value == 1
        assert ours["tally_wal_fsyncs"].samples[0].value >= 3  # sync durability: every point acknowledged after its fsync
        backend = "postgresql" if POSTGRES else "sqlite"
        assert [x.labels["metadata_backend"] for x in ours["tally_build_info"].samples] == [backend]
        postgres = {name: f.samples[0].value for name, f in ours.items() if name.startswith("tally_postgres_")}
        if POSTGRES:
            # The run was created, its param, points and end written: the write lane sent them (or the pool did).
            assert postgres["tally_postgres_pool_size"] == 8 and postgres["tally_postgres_pool_timeouts"] == 0, postgres
            assert postgres["tally_postgres_lane_writes"] + postgres["tally_postgres_lane_writes_alone"] >= 5, postgres
            assert 1 <= postgres["tally_postgres_pool_idle"] <= 8 and postgres["tally_postgres_pool_in_use"] <= 8, postgres
        else:
            assert postgres == {}, postgres
        assert 1 << 20 < ours["process_resident_memory_bytes"].samples[0].value < 4 << 30
        assert ours["process_open_fds"].samples[0].value > 3

        # OTLP ingest: the same export and a malformed one to both; MLflow's ingest metrics alike.
        from test_otlp import PB, rich_request
        for url in (oracle.url, s.url):
            e = requests.post(url + "/api/2.0/mlflow/experiments/create", json={"name": "otlp-metrics"}).json()["experiment_id"]
            assert requests.post(url + "/v1/traces", data=rich_request().SerializeToString(), headers={**PB, "x-mlflow-experiment-id": e}).status_code == 200
            assert requests.post(url + "/v1/traces", data=b"\xff", headers={**PB, "x-mlflow-experiment-id": e}).status_code == 400
        theirs, ours = scrape(oracle.url), scrape(s.url)

        def numeric(families, family, suffix):  # `le` as a number: Python writes 1048576 as 1.048576e+06, Swift as 1048576.0
            return {frozenset((k, str(float(v)) if k == "le" else v) for k, v in key): value
                    for key, value in samples(families, family, suffix).items()}
        for family, suffix in (("mlflow_spans_ingested", "_total"), ("mlflow_trace_ingestion_server_errors", "_total"),
                               ("mlflow_otlp_spans_per_request", "_bucket"), ("mlflow_otlp_request_payload_bytes", "_bucket"),
                               ("mlflow_otlp_request_payload_bytes", "_sum"), ("mlflow_otlp_request_duration_seconds", "_count")):
            assert numeric(ours, family, suffix) == numeric(theirs, family, suffix), (family, numeric(ours, family, suffix), numeric(theirs, family, suffix))
        assert samples(ours, "mlflow_spans_ingested", "_total") == {frozenset({("protocol", "otlp")}): 3}
    finally:
        s.stop()


def test_the_environment_turns_it_on_and_it_is_off_without():
    port = free_port()
    with tempfile.TemporaryDirectory() as d:
        with tally_serving(["--port", str(port)], f"http://127.0.0.1:{port}", {"MLFLOW_EXPOSE_PROMETHEUS": os.path.join(d, "p")}):
            assert "mlflow_http_request_total" not in requests.get(f"http://127.0.0.1:{port}/metrics").text  # nothing counted yet
            requests.get(f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/search", params={"max_results": 1})
            assert 'mlflow_http_request_total{method="GET",status="200"} 1' in requests.get(f"http://127.0.0.1:{port}/metrics").text
        assert os.path.isdir(os.path.join(d, "p"))
    port = free_port()
    with tally_serving(["--port", str(port)], f"http://127.0.0.1:{port}"):
        assert requests.get(f"http://127.0.0.1:{port}/metrics").status_code == 404


def test_access_log_has_a_line_per_request_when_asked():
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tally_serving(["--port", str(port), "--access-log"], url) as log:
        c = MlflowClient(url)
        c.create_run(c.create_experiment("logged")).info.run_id
        assert requests.get(url + "/api/2.0/mlflow/runs/get", params={"run_id": "f" * 32}).status_code == 404
        assert requests.get(url + "/api/2.0/mlflow/experiments/search", headers={"Host": "evil.example"}).status_code == 403
        # An absolute-form target: its user information is not logged (the path and query are, as uvicorn logs them).
        import http.client
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        c.putrequest("GET", f"http://scraper:secret-pw@127.0.0.1:{port}/api/2.0/mlflow/experiments/search?max_results=3", skip_host=True)
        c.putheader("Host", f"127.0.0.1:{port}")
        c.endheaders()
        assert c.getresponse().status == 200
        c.close()
    lines = [l for l in open(log).read().splitlines() if l.endswith(" request")]
    assert any("method=POST" in l and "status=200" in l and "target=/api/2.0/mlflow/experiments/create" in l for l in lines), lines
    assert any("status=404" in l and f"target=/api/2.0/mlflow/runs/get?run_id={'f' * 32}" in l for l in lines), lines
    assert any("status=403" in l for l in lines), lines
    assert all("client=127.0.0.1" in l and " ms=" in l for l in lines), lines
    assert "secret-pw" not in open(log).read()
    assert any("target=/api/2.0/mlflow/experiments/search?max_results=3" in l for l in lines), lines
    # Written whatever --log-level says: asked for by name.
    port = free_port()
    with tally_serving(["--port", str(port), "--access-log", "--log-level", "warning"], f"http://127.0.0.1:{port}") as log:
        requests.get(f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/search", params={"max_results": 1})
    assert [l for l in open(log).read().splitlines() if l.endswith(" request") and "status=200" in l]
    port = free_port()
    with tally_serving(["--port", str(port)], f"http://127.0.0.1:{port}") as log:
        requests.get(f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/search", params={"max_results": 1})
    assert not [l for l in open(log).read().splitlines() if l.endswith(" request")], "no access log unless asked"
