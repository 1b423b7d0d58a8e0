"""Three `tally server`s as one cluster (docs/scale-out.md) on the PostgreSQL of `scripts/pg-test run` and the
SeaweedFS of `scripts/s3-test run` (make test-cluster): the real mlflow client and the native client writing through
all three at once, `kill -9` of the server owning the busiest run in the middle of it, and every acknowledged point
read back exactly once, bit-exact, through each survivor; artifacts uploaded through one server and downloaded
through another; forwarded requests refused without the cluster's signature."""
import json
import os
import random
import signal
import struct
import subprocess
import threading
import time

import pytest
import requests
from mlflow import MlflowClient
from mlflow.entities import Metric
from prometheus_client.parser import text_string_to_metric_families

from conftest import Server, free_port, postgres_database, s3_prefix
from tally_client.client import encode_batch

ENDPOINT = os.environ.get("TALLY_TEST_S3_ENDPOINT")
PG = os.environ.get("TALLY_TEST_POSTGRES_URI")
pytestmark = pytest.mark.skipif(not (ENDPOINT and PG), reason="needs scripts/pg-test run and scripts/s3-test run (make test-cluster)")
if ENDPOINT:
    os.environ["MLFLOW_S3_ENDPOINT_URL"] = ENDPOINT

SECRET = "cluster-interop-secret-0123456789"
LEASE = 2.0


SEAL = 1.0  # --max-unsealed-seconds: runs are sealed into the bucket (and their log trimmed) while they are written


def member(db, metrics, artifacts, lease=LEASE, seal=SEAL, env=None, extra=()):
    """A server of the cluster on database `db` with these destinations and `extra` options (`s.another()` starts one
    more like it)."""
    s = Server("--backend-store-uri", db, "--metrics-destination", metrics, "--artifacts-destination", artifacts,
               "--cluster-secret", SECRET, "--lease-seconds", str(lease), "--max-unsealed-seconds", str(seal), *extra, env=env)
    s.another = lambda: member(db, metrics, artifacts, lease, seal, env, extra)
    return s


def gauges(server):
    """The unlabelled samples of the server's `/metrics` (`--expose-prometheus`), by name."""
    r = requests.get(f"{server.url}/metrics", timeout=10)
    assert r.status_code == 200, r.text
    return {s.name: s.value for f in text_string_to_metric_families(r.text) for s in f.samples if not s.labels}


def total(servers, name):
    return sum(gauges(s).get(name, 0) for s in servers)


def cluster(n=3, lease=LEASE, seal=SEAL):
    db, metrics, artifacts = postgres_database(), s3_prefix("segments"), s3_prefix("artifacts")
    return db, [member(db, metrics, artifacts, lease, seal) for _ in range(n)]


def psql(db, sql):
    return subprocess.run(["psql", db, "-At", "-c", sql], check=True, capture_output=True, text=True).stdout.strip()


def log_records(db, run_id=None):
    """Records waiting in the shared log (of one run, or all)."""
    return int(psql(db, "SELECT count(*) FROM tally_log" + (f" WHERE run_uuid = '{run_id}'" if run_id else "")))


def wait_until(what, check, timeout=60):
    deadline = time.time() + timeout
    while not check():
        assert time.time() < deadline, f"{what}: not after {timeout} s"
        time.sleep(0.2)
    return time.time()


def owner_of(db, run_id):
    """The node id (`--node-id`, default host:port) of the server holding the run's lease (held as `ID#INSTANCE`)."""
    out = subprocess.run(["psql", db, "-At", "-c", f"SELECT owner FROM tally_leases WHERE run_uuid = '{run_id}'"],
                         check=True, capture_output=True, text=True).stdout.strip()
    return out.split("#")[0]


def random_value(rng):
    """A finite double from random bits (every mantissa bit matters)."""
    while True:
        v = struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))[0]
        if v == v and abs(v) != float("inf"):
            return v


class Writer(threading.Thread):
    """Logs batches of fresh points to one run, each batch to the next live server, retrying a batch (the same
    content, or the same batch id) until a server acknowledges it; records what was acknowledged."""

    def __init__(self, servers, alive, run_id, key, native, seed, batches=60, size=50, timeout=30, pause=0.0, first_step=0):
        super().__init__(daemon=True)
        self.first_step = first_step
        self.timeout, self.pause = timeout, pause
        self.statuses = []  # HTTP statuses of refused attempts (native writer)
        self.servers, self.alive, self.run_id, self.key, self.native = servers, alive, run_id, key, native
        self.rng = random.Random(seed)
        self.batches, self.size = batches, size
        self.acked = {}  # step -> value bits
        self.first_ack_after = {}  # time -> first acknowledgement after it (failover measurement)
        self.error = None
        self.acks = []  # when each batch was acknowledged
        self.sent = []  # when it was first sent

    def send(self, server, steps, values, batch_id):
        if self.native:
            body = encode_batch([(self.key, steps, [1_700_000_000_000 + s for s in steps], values)], batch_id=batch_id)
            r = requests.post(f"{server.url}/api/tally/v1/runs/{self.run_id}/metrics", data=body, timeout=self.timeout,
                              headers={"Content-Type": "application/x-tally-columns"})
            if r.status_code != 200:
                self.statuses.append(r.status_code)
            r.raise_for_status()
        else:
            MlflowClient(server.url).log_batch(self.run_id, metrics=[
                Metric(self.key, v, 1_700_000_000_000 + s, s) for s, v in zip(steps, values)])

    def run(self):
        try:
            turn = self.rng.randrange(len(self.servers))  # runs start on different servers: each has owners
            for b in range(self.batches):
                steps = list(range(self.first_step + b * self.size, self.first_step + (b + 1) * self.size))
                values = [random_value(self.rng) for _ in steps]
                deadline = time.time() + 90
                started = time.time()
                while True:
                    live = [s for i, s in enumerate(self.servers) if self.alive[i]]
                    server = live[turn % len(live)]
                    turn += 1
                    try:
                        self.send(server, steps, values, f"{self.run_id}-{self.key}-{steps[0]}")
                        break
                    except Exception:
                        if time.time() > deadline:
                            raise
                        time.sleep(0.05)
                self.acks.append(time.time())
                self.sent.append(started)
                for s, v in zip(steps, values):
                    self.acked[s] = struct.pack("<d", v)
                time.sleep(self.pause)
        except Exception as e:  # reported by the test
            self.error = e


def history(server, run_id, key):
    r = requests.get(f"{server.url}/api/2.0/mlflow/metrics/get-history", params={"run_id": run_id, "metric_key": key, "max_results": 1_000_000},
                     timeout=60)
    r.raise_for_status()
    return [(m["step"], struct.pack("<d", float(m["value"]))) for m in r.json().get("metrics", [])]


def expect_all_acknowledged(servers, writers, runs, keys=("loss",)):
    """Every acknowledged point of every run, exactly once and bit-exact, through every server given."""
    for s in servers:
        for run in runs:
            for key in keys:
                expected = {}
                for w in writers:
                    if w.run_id == run and w.key == key:
                        expected.update(w.acked)
                got = history(s, run, key)
                assert len(got) == len(set(p[0] for p in got)), f"{run}/{key}: a point stored twice through {s.url}"
                assert dict(got) == expected, f"{run}/{key} through {s.url}: {len(got)} points, {len(expected)} acknowledged"


def test_every_acknowledged_point_survives_the_owner_being_killed():
    db, servers = cluster()
    alive = [True] * len(servers)
    try:
        c = MlflowClient(servers[0].url)
        exp = c.create_experiment("cluster")
        runs = [c.create_run(exp).info.run_id for _ in range(6)]
        # Two writers per run on the busiest one, so it has writes in flight when its owner dies.
        writers = [Writer(servers, alive, runs[i], "loss", native=i % 2 == 1, seed=i) for i in range(6)]
        writers.append(Writer(servers, alive, runs[0], "acc", native=False, seed=99))
        for w in writers:
            w.start()
        while sum(len(w.acks) for w in writers) < 60:
            time.sleep(0.05)
        victim_id = owner_of(db, runs[0])
        victim = next(i for i, s in enumerate(servers) if victim_id == f"127.0.0.1:{s.port}")
        owned_by_victim = [r for r in runs if owner_of(db, r) == victim_id]
        killed_at = time.time()
        alive[victim] = False
        servers[victim].proc.send_signal(signal.SIGKILL)
        servers[victim].proc.wait()
        dead_at = time.time()
        for w in writers:
            w.join(timeout=240)
        assert all(not w.is_alive() for w in writers), "writers did not finish"
        for w in writers:
            assert w.error is None, w.error
        # Failover: the first acknowledgement of a batch first sent after the victim died, on a run it owned.
        after = [t for w in writers if w.run_id in owned_by_victim for t, sent in zip(w.acks, w.sent) if sent > dead_at]
        assert after, "no write acknowledged after the kill"
        failover = min(after) - killed_at
        acked = sum(len(w.acked) for w in writers)
        print(f"\n{acked} points acknowledged in {sum(len(w.acks) for w in writers)} requests; the victim owned {len(owned_by_victim)} of "
              f"{len(runs)} runs; failover (kill -9 → a write of its run acknowledged): {failover:.2f} s at --lease-seconds {LEASE}")
        assert failover < LEASE * 6 + 5
        # Every acknowledged point, exactly once and bit-exact, through every survivor.
        expect_all_acknowledged([s for i, s in enumerate(servers) if alive[i]], writers, runs, keys=("loss", "acc"))
        # The latest values agree with the points.
        for run in runs:
            m = {x.key: x for x in MlflowClient(servers[victim - 1].url).get_run(run).data._metric_objs}
            w = next(w for w in writers if w.run_id == run and w.key == "loss")
            last = max(w.acked)
            assert struct.pack("<d", m["loss"].value) == w.acked[last] and m["loss"].step == last
        # Runs no longer written are sealed (idle): the log empties, and a server that never saw them reads every
        # point from the bucket.
        assert int(psql(db, "SELECT count(*) FROM tally_sealed")) > 0, "nothing was sealed while the writers ran"
        wait_until("the shared log trimmed", lambda: log_records(db) == 0, timeout=120)
        fresh = servers[0].another()
        servers.append(fresh)
        alive.append(True)
        expect_all_acknowledged([fresh], writers, runs, keys=("loss", "acc"))
    finally:
        for i, s in enumerate(servers):
            if alive[i]:
                s.stop()


def test_a_postgresql_restart_loses_nothing():
    db, servers = cluster(n=2)
    alive = [True, True]
    try:
        c = MlflowClient(servers[0].url)
        exp = c.create_experiment("pg-restart")
        runs = [c.create_run(exp).info.run_id for _ in range(2)]
        writers = [Writer(servers, alive, runs[i], "loss", native=True, seed=i, batches=80, pause=0.02) for i in range(2)]
        for w in writers:
            w.start()
        while sum(len(w.acks) for w in writers) < 20:
            time.sleep(0.05)
        subprocess.run([os.path.join(os.path.dirname(__file__), "..", "..", "scripts", "pg-test"), "restart",
                        os.environ["TALLY_TEST_POSTGRES_SOCKET_DIR"]], check=True, timeout=120)
        restarted = sum(len(w.acks) for w in writers)
        for w in writers:
            w.join(timeout=240)
        for w in writers:
            assert w.error is None, w.error
        assert sum(len(w.acks) for w in writers) > restarted, "nothing acknowledged after the restart"
        # While the database was away the servers answered 503 (retried), never another error.
        assert set(st for w in writers for st in w.statuses) <= {503}, [w.statuses for w in writers]
        expect_all_acknowledged(servers, writers, runs)
    finally:
        for s in servers:
            s.stop()


def test_a_paused_owner_loses_its_runs_and_comes_back_as_a_follower():
    lease = 1.5
    db, servers = cluster(n=2, lease=lease)
    a, b = servers
    try:
        c = MlflowClient(a.url)
        run = c.create_run(c.create_experiment("paused")).info.run_id
        first = Writer([a], [True], run, "loss", native=True, seed=1, batches=5)
        first.run()
        assert first.error is None and owner_of(db, run) == f"127.0.0.1:{a.port}"
        # The owner stops (SIGSTOP: its heartbeat too) past its lease; writes through b, given up on after 3 s while
        # b waits on the paused owner, then retried, go through once b has taken the run over.
        a.proc.send_signal(signal.SIGSTOP)
        paused_at = time.time()
        try:
            second = Writer([b], [True], run, "loss", native=True, seed=2, batches=10, timeout=3, first_step=10_000)
            second.run()
            assert second.error is None, second.error
            taken = second.acks[0] - paused_at
        finally:
            a.proc.send_signal(signal.SIGCONT)
        assert owner_of(db, run) == f"127.0.0.1:{b.port}"
        print(f"\nfirst write through b acknowledged {taken:.2f} s after the owner paused (--lease-seconds {lease})")
        # a learns at its next heartbeat that the run is b's: a write through a is forwarded to b.
        time.sleep(lease)
        third = Writer([a], [True], run, "loss", native=False, seed=3, batches=3, first_step=20_000)
        third.run()
        assert third.error is None, third.error
        assert owner_of(db, run) == f"127.0.0.1:{b.port}"
        expected = {**first.acked, **second.acked, **third.acked}
        for s in servers:
            got = history(s, run, "loss")
            assert len(got) == len(expected) and dict(got) == expected, f"through {s.url}: {len(got)} points, {len(expected)} acknowledged"
    finally:
        for s in servers:
            s.stop()


def test_records_a_dead_server_left_are_sealed_by_a_survivor():
    """The owner dies (kill -9) with records in the log and nobody writes its run again: a survivor takes the run
    over once the lease lapsed, seals it and trims the log; every point reads back, also through a new server."""
    db, servers = cluster(n=2, seal=3600)
    a, b = servers
    try:
        c = MlflowClient(a.url)
        run = c.create_run(c.create_experiment("orphan")).info.run_id
        w = Writer([a], [True], run, "loss", native=True, seed=5, batches=8)
        w.run()
        assert w.error is None and owner_of(db, run) == f"127.0.0.1:{a.port}" and log_records(db, run) == 8
        a.proc.send_signal(signal.SIGKILL)
        a.proc.wait()
        killed = time.time()
        sealed = wait_until("the dead server's run sealed", lambda: log_records(db, run) == 0, timeout=60)
        print(f"\nrecords of a killed owner sealed by the survivor {sealed - killed:.1f} s after the kill (--lease-seconds {LEASE})")
        assert owner_of(db, run) == f"127.0.0.1:{b.port}"
        fresh = b.another()
        servers.append(fresh)
        for s in (b, fresh):
            assert dict(history(s, run, "loss")) == w.acked
    finally:
        for s in servers[1:]:
            s.stop()


def test_an_s3_outage_keeps_writes_acknowledged_and_sealing_catches_up():
    """The metrics bucket gone for a while (SeaweedFS killed): writes go on being acknowledged from the shared log,
    sealing fails and is retried; once the store is back on its address the log is sealed and trimmed, and every
    point reads back through every server, including one that never saw the run."""
    import shutil
    import tempfile
    script = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "scripts", "s3-test")
    d = tempfile.mkdtemp(prefix="tally-s3-outage-")
    env = {**os.environ, "S3_TEST_PORT": str(free_port())}
    endpoint = subprocess.run([script, "start", d + "/s3"], env=env, capture_output=True, text=True, check=True).stdout.strip()
    db = postgres_database()
    servers = [member(db, "s3://tally/outage-segments", "s3://tally/outage-artifacts", seal=0.5, env={"MLFLOW_S3_ENDPOINT_URL": endpoint},
                      extra=("--expose-prometheus", d + "/prometheus")) for _ in range(2)]
    a, b = servers
    try:
        c = MlflowClient(a.url)
        run = c.create_run(c.create_experiment("s3-outage")).info.run_id
        first = Writer([a, b], [True, True], run, "loss", native=False, seed=7, batches=10)
        first.run()
        assert first.error is None
        wait_until("sealed before the outage", lambda: log_records(db, run) == 0)
        for s in servers:  # each server's copy is made from the bucket now; later reads need only the log
            assert dict(history(s, run, "loss")) == first.acked
        subprocess.run([script, "kill", d + "/s3"], check=True)
        during = Writer([a, b], [True, True], run, "loss", native=True, seed=8, batches=20, first_step=10_000, pause=0.1)
        during.run()
        assert during.error is None, during.error
        assert log_records(db, run) == 20, "nothing sealed (nor lost) while the bucket was away"
        # What an operator sees: sealing failing and bytes waiting for it, the servers still ready (writes are
        # acknowledged from the shared log).
        wait_until("sealing reported failing", lambda: total(servers, "tally_cluster_sealing_failing") >= 1)
        assert total(servers, "tally_cluster_seal_failures_total") >= 1
        assert total(servers, "tally_cluster_unsealed_bytes") > 0 and total(servers, "tally_cluster_oldest_unsealed_seconds") > 0
        assert total(servers, "tally_cluster_log_records_total") >= 30
        for s in servers:
            r = requests.get(f"{s.url}/ready", timeout=10)
            assert r.status_code == 200 and r.json()["checks"] == {"metadata": "ok", "metrics": "ok", "cluster": "ok"}, r.text
        expected = {**first.acked, **during.acked}
        for s in servers:
            assert dict(history(s, run, "loss")) == expected, f"read through {s.url} during the outage"
        back = time.time()
        subprocess.run([script, "start", d + "/s3"], env=env, capture_output=True, check=True)
        done = wait_until("sealing caught up after the outage", lambda: log_records(db, run) == 0, timeout=90)
        print(f"\nsealing caught up {done - back:.1f} s after the bucket was restarted")
        wait_until("sealing reported working", lambda: total(servers, "tally_cluster_sealing_failing") == 0)
        assert total(servers, "tally_cluster_unsealed_bytes") == 0 and total(servers, "tally_cluster_seals_total") >= 2
        fresh = a.another()
        servers.append(fresh)
        for s in servers:
            got = history(s, run, "loss")
            assert len(got) == len(expected) and dict(got) == expected, f"through {s.url}"
    finally:
        for s in servers:
            s.stop()
        subprocess.run([script, "stop", d + "/s3"])
        shutil.rmtree(d, ignore_errors=True)


def test_a_single_server_moves_into_a_cluster(tmp_path):
    """A single server (SQLite, local points, local artifacts) moved into a cluster with `tally cluster migrate`
    (metadata, artifacts, metric points, webhook secrets sealed again under the cluster's key; refused while the cluster
    runs; idempotent): the cluster's servers read every point bit-exact and every artifact, go on writing the moved
    runs, and sign the moved webhook."""
    import tempfile
    from conftest import TALLY
    from mlflow.webhooks.delivery import _generate_hmac_signature
    from test_webhooks import LOCAL, Receiver
    receiver = Receiver()
    home = tempfile.mkdtemp(prefix="tally-interop-single-")
    data = os.path.join(home, "data")
    # The embedded default, whatever this pass's backend: SQLite and artifacts in the data directory.
    single = Server("--backend-store-uri", f"sqlite:///{data}/metadata.sqlite", "--artifacts-destination", os.path.join(data, "artifacts"),
                    directory=home, env=LOCAL)
    acked = {}
    try:
        c = MlflowClient(single.url)
        c.create_webhook("moved-hook", receiver.url + "/moved", ["registered_model.created"], secret="moved-secret")
        exp = c.create_experiment("moved")
        runs = [c.create_run(exp).info.run_id for _ in range(3)]
        for i, run in enumerate(runs):
            w = Writer([single], [True], run, "loss", native=i % 2 == 0, seed=40 + i, batches=6, size=500)
            w.run()
            assert w.error is None, w.error
            acked[run] = w.acked
        c.log_param(runs[0], "lr", "0.1")
        note = tmp_path / "note.txt"
        note.write_text("moved with its run")
        c.log_artifact(runs[0], str(note), "docs")
    finally:
        single.stop(keep=True)
    db, metrics, artifacts = postgres_database(), s3_prefix("moved-segments"), s3_prefix("moved-artifacts")
    move = [TALLY, "cluster", "migrate", "--data-dir", data, "--backend-store-uri", db, "--metrics-destination", metrics,
            "--artifacts-destination", artifacts, "--cluster-secret", SECRET]
    a = member(db, metrics, artifacts)
    servers = [a]
    try:
        out = subprocess.run(move, capture_output=True, text=True, timeout=120)
        assert out.returncode != 0 and "stop its servers" in out.stderr + out.stdout, out.stderr + out.stdout
        a.stop()
        servers = []
        out = subprocess.run(move, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0 and "counts match" in out.stdout and "copied 1 files" in out.stdout and "moved 3 runs" in out.stdout, out.stdout + out.stderr
        assert "webhook secrets sealed for the cluster: 1" in out.stdout, out.stdout
        again = subprocess.run(move, capture_output=True, text=True, timeout=120, check=True).stdout
        assert "moved 0 runs" in again and "3 already in the cluster" in again and "1 already there" in again, again
        servers = [member(db, metrics, artifacts, env=LOCAL) for _ in range(2)]
        MlflowClient(servers[1].url).create_registered_model("after-the-move")
        (_, headers, body), = receiver.wait(1, "/moved")
        assert headers["X-MLflow-Signature"] == _generate_hmac_signature(
            "moved-secret", headers["X-MLflow-Delivery-Id"], headers["X-MLflow-Timestamp"], body.decode())
        for s in servers:
            for run in runs:
                assert dict(history(s, run, "loss")) == acked[run], f"{run} through {s.url}"
        assert MlflowClient(servers[1].url).get_run(runs[0]).data.params == {"lr": "0.1"}
        got = MlflowClient(servers[1].url).download_artifacts(runs[0], "docs/note.txt", str(tmp_path))
        assert open(got).read() == "moved with its run"
        # The moved runs go on in the cluster: written through one server, read through the other.
        more = Writer(servers, [True, True], runs[1], "loss", native=False, seed=50, batches=4, first_step=100_000)
        more.run()
        assert more.error is None, more.error
        for s in servers:
            assert dict(history(s, runs[1], "loss")) == {**acked[runs[1]], **more.acked}
    finally:
        for s in servers:
            s.stop()
        receiver.http.shutdown()


def test_artifacts_and_forwarded_requests_across_servers():
    db, servers = cluster(n=2)
    try:
        a, b = servers
        c = MlflowClient(a.url)
        run = c.create_run(c.create_experiment("cluster-artifacts")).info.run_id
        data = os.urandom(3 * 1024 * 1024 + 7)
        path = os.path.join(a.dir, "blob.bin")
        with open(path, "wb") as f:
            f.write(data)
        c.log_artifact(run, path, "x")
        got = MlflowClient(b.url).download_artifacts(run, "x/blob.bin", b.dir)
        assert open(got, "rb").read() == data
        # A write through b of a run a owns is forwarded to a and answered; both read it.
        MlflowClient(a.url).log_metric(run, "m", 1.5, step=1)
        MlflowClient(b.url).log_metric(run, "m", 2.5, step=2)
        assert owner_of(db, run) == f"127.0.0.1:{a.port}"
        assert [m.value for m in MlflowClient(a.url).get_metric_history(run, "m")] == [1.5, 2.5]
        # A client posing as a server without the secret is refused.
        forged = {"X-Tally-Forwarded-By": "evil", "X-Tally-Forwarded-User": "admin", "X-Tally-Forwarded-Time": str(int(time.time() * 1000)),
                  "X-Tally-Forwarded-Signature": "00" * 32}
        r = requests.post(f"{a.url}/api/2.0/mlflow/runs/log-metric", headers=forged,
                          json={"run_id": run, "key": "m", "value": 9, "timestamp": 1, "step": 3})
        assert r.status_code == 401 and r.json()["error_code"] == "UNAUTHENTICATED", r.text
        assert len(MlflowClient(b.url).get_metric_history(run, "m")) == 2
        # Offline commands go around the shared log: refused while the cluster runs.
        from conftest import TALLY
        os.makedirs(os.path.join(a.dir, "offline"))
        out = subprocess.run([TALLY, "export", "mlflow", "--to", "http://127.0.0.1:9", "--data-dir", os.path.join(a.dir, "offline"),
                              "--backend-store-uri", db], capture_output=True, text=True, timeout=60)
        assert out.returncode != 0 and "serves a running cluster" in out.stderr + out.stdout, out.stderr + out.stdout
    finally:
        for s in servers:
            s.stop()


def test_every_member_signs_every_webhook():
    """The key that seals webhook secrets comes from the cluster secret: a webhook saved through one member is signed
    by the others too, with no key copied between their data directories."""
    from mlflow.webhooks.delivery import _generate_hmac_signature
    from test_webhooks import LOCAL, Receiver
    receiver = Receiver()
    db, metrics, artifacts = postgres_database(), s3_prefix("segments"), s3_prefix("artifacts")
    servers = [member(db, metrics, artifacts, env=LOCAL) for _ in range(2)]
    try:
        a, b = servers
        MlflowClient(a.url).create_webhook("cluster-hook", receiver.url + "/cluster", ["registered_model.created"], secret="shared-secret")
        for i, s in enumerate(servers):
            MlflowClient(s.url).create_registered_model(f"through-{i}")
        deliveries = receiver.wait(2, "/cluster")
        assert sorted(json.loads(body)["data"]["name"] for _, _, body in deliveries) == ["through-0", "through-1"]
        for _, headers, body in deliveries:
            assert headers["X-MLflow-Signature"] == _generate_hmac_signature(
                "shared-secret", headers["X-MLflow-Delivery-Id"], headers["X-MLflow-Timestamp"], body.decode())
    finally:
        for s in servers:
            s.stop()
        receiver.http.shutdown()


def test_cluster_mode_needs_postgresql_and_a_secret(tmp_path):
    from conftest import TALLY
    out = subprocess.run([TALLY, "server", "--port", "0", "--data-dir", str(tmp_path / "d"), "--metrics-destination", "s3://tally/x",
                          "--cluster-secret", SECRET, "--advertise-url", "http://127.0.0.1:1"], capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "needs a PostgreSQL --backend-store-uri" in out.stderr + out.stdout
    out = subprocess.run([TALLY, "server", "--data-dir", str(tmp_path / "e"), "--metrics-destination", "s3://tally/x",
                          "--backend-store-uri", postgres_database()], capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "--cluster-secret" in out.stderr + out.stdout
    # A single server's points are not in the shared log: a cluster server refuses its data directory (it would
    # rebuild those runs from the log, without them); a cluster server's copy is refused to a single server.
    single = Server("--backend-store-uri", f"sqlite:///{tmp_path}/single.sqlite")  # a single server whatever the pass
    try:
        c = MlflowClient(single.url)
        c.log_metric(c.create_run("0").info.run_id, "m", 1.0)
    finally:
        single.stop(keep=True)
    db = postgres_database()
    out = subprocess.run([TALLY, "server", "--port", str(free_port()), "--data-dir", os.path.join(single.dir, "data"), "--backend-store-uri", db,
                          "--metrics-destination", s3_prefix("m"), "--cluster-secret", SECRET], capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "holds a single server's points (1 runs)" in out.stderr + out.stdout, out.stderr + out.stdout
    member = Server("--backend-store-uri", db, "--metrics-destination", s3_prefix("m"), "--cluster-secret", SECRET)
    member.stop(keep=True)
    out = subprocess.run([TALLY, "server", "--port", str(free_port()), "--data-dir", os.path.join(member.dir, "data")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "cluster server's copy of the shared log" in out.stderr + out.stdout, out.stderr + out.stdout
    out = subprocess.run([TALLY, "server", "--data-dir", str(tmp_path / "f"), "--metrics-destination", "s3://no-such-bucket-x/y",
                          "--backend-store-uri", postgres_database(), "--cluster-secret", SECRET], capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "no-such-bucket-x" in out.stderr + out.stdout
