#!/usr/bin/env python3
"""Ingest through one and three `tally server`s, side by side in one run, and the failover time (docs/benchmarks.md).

Run under a durable PostgreSQL and SeaweedFS (release build):
    PG_TEST_DURABLE=1 PG_TEST_TLS=0 scripts/pg-test run scripts/s3-test run .venv-interop/bin/python scripts/bench-cluster.py \
        --tally .build/release/tally [--connections 6] [--points 200000] [--rounds 2]

Configurations, each measured with `tally bench http --ingest-only` (MLflow log-batch of 1,000 points, native JSON
and native binary columns of 10,000 points; each connection writes its own run):
  single-sqlite     one server, the embedded default (SQLite metadata, local metric log)
  single-postgres   one server, metadata on PostgreSQL (not a cluster)
  cluster-1         one server in cluster mode (every point's record in PostgreSQL's shared log before the answer)
  cluster-1-sealing the same, sealing each run into the bucket every second while it is written (--max-unsealed-seconds 1)
  cluster-3         three servers; connection c talks to server c % 3 (its run's owner: no forwarding)
  cluster-3-spread  three servers, each request to the next server in turn (2 of 3 requests forwarded to the owner)
With --reads POINTS, only this: one run of POINTS points written through the native API into a cluster server, sealed
into the bucket (the log trimmed), then read by servers that never saw it: M4 and the full history, cold (the
segments fetched from the bucket) and warm.
Then the failover time: kill -9 of a run's owner, and the time until a write of that run is acknowledged through
another server, retried every 50 ms, at --lease-seconds 15 (the default) and 5.
"""
import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid

SECRET = "bench-cluster-secret-0123456789"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def new_database():
    admin = os.environ["TALLY_TEST_POSTGRES_URI"]
    name = "b_" + uuid.uuid4().hex[:12]
    subprocess.run(["psql", admin, "-q", "-c", f"CREATE DATABASE {name}"], check=True, capture_output=True)
    return admin.rsplit("/", 1)[0] + "/" + name


class Server:
    def __init__(self, tally, *args):
        self.dir = tempfile.mkdtemp(prefix="tally-bench-cluster-")
        self.port = free_port()
        self.log = open(os.path.join(self.dir, "server.log"), "w")
        self.proc = subprocess.Popen([tally, "server", "--host", "127.0.0.1", "--port", str(self.port), "--data-dir",
                                      os.path.join(self.dir, "data"), *args], stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=1).read()
                return
            except Exception:
                if self.proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError(open(os.path.join(self.dir, "server.log")).read())
                time.sleep(0.1)

    def stop(self, kill=False):
        self.proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        self.proc.wait(timeout=60)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def log_bytes(db):
    """Bytes of the shared log's records in `db` (its payloads), and their count."""
    out = subprocess.run(["psql", db, "-At", "-c", "SELECT coalesce(sum(octet_length(payload)), 0), count(*) FROM tally_log"],
                         check=True, capture_output=True, text=True).stdout.strip()
    b, n = out.split("|")
    return int(b), int(n)


def cluster_args(db, lease=None):
    args = ["--backend-store-uri", db, "--metrics-destination", f"s3://tally/bench-{uuid.uuid4().hex[:8]}",
            "--artifacts-destination", f"s3://tally/bench-art-{uuid.uuid4().hex[:8]}", "--cluster-secret", SECRET]
    return args + (["--lease-seconds", str(lease)] if lease else [])


def bench(tally, ports, connections, points, spread=False):
    cmd = [tally, "bench", "http", "--ingest-only", "--connections", str(connections), "--points", str(points), "--json",
           "--ports", ",".join(map(str, ports))] + (["--spread"] if spread else [])
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out[out.index("{"):])


def post(port, path, body):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read() or b"{}")


def failover(tally, lease):
    db = new_database()
    servers = [Server(tally, *cluster_args(db, lease)) for _ in range(3)]
    try:
        run = post(servers[0].port, "/api/2.0/mlflow/runs/create", {"experiment_id": "0"})["run"]["info"]["run_id"]
        post(servers[0].port, "/api/2.0/mlflow/runs/log-metric", {"run_id": run, "key": "m", "value": 1, "timestamp": 1, "step": 0})
        servers[0].proc.send_signal(signal.SIGKILL)
        servers[0].proc.wait()
        killed = time.time()
        step = 1
        while True:
            try:
                post(servers[1 + step % 2].port, "/api/2.0/mlflow/runs/log-metric", {"run_id": run, "key": "m", "value": 1, "timestamp": 1, "step": step})
                return time.time() - killed
            except Exception:
                step += 1
                time.sleep(0.05)
    finally:
        servers[0].log.close()
        for s in servers[1:]:
            s.stop()


def rss_mb(server):
    """The server's resident set (VmRSS) in MB."""
    with open(f"/proc/{server.proc.pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024


def reads(tally, points):
    """Cold and warm reads of one `points`-point run sealed into the bucket, through servers that never saw it: M4
    (1,000 buckets) and the full history (raw points, binary, in windows of 1 M steps)."""
    import numpy as np
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "clients", "python"))
    from tally_client.client import encode_batch
    db = new_database()
    args = cluster_args(db) + ["--max-unsealed-seconds", "1"]
    owner = Server(tally, *args)
    readers = []
    try:
        run = post(owner.port, "/api/2.0/mlflow/runs/create", {"experiment_id": "0"})["run"]["info"]["run_id"]
        rng = np.random.default_rng(4)
        t0 = time.time()
        for start in range(0, points, 100_000):
            steps = np.arange(start, min(points, start + 100_000), dtype=np.int64)
            values = (2.0 * np.exp(-steps / (points / 4)) + 0.05 * rng.standard_normal(len(steps))).astype(np.float32).astype(np.float64)
            body = encode_batch([("loss", steps, 1_700_000_000_000 + steps, values)], batch_id=f"b{start}")
            req = urllib.request.Request(f"http://127.0.0.1:{owner.port}/api/tally/v1/runs/{run}/metrics", data=body,
                                         headers={"Content-Type": "application/x-tally-columns"})
            urllib.request.urlopen(req, timeout=120).read()
        ingest = time.time() - t0
        while int(psql(db, f"SELECT count(*) FROM tally_log WHERE run_uuid = '{run}'")) > 0:
            time.sleep(0.2)
        sealed = time.time() - t0
        objects, size = map(int, psql(db, f"SELECT count(*), sum(bytes) FROM tally_sealed_segments WHERE run_uuid = '{run}'").split("|"))
        print(f"reads: {points:,} points written in {ingest:.1f} s, sealed and trimmed after {sealed:.1f} s: {objects} objects, "
              f"{size:,} bytes ({size / points:.2f} B/point); owner RSS {rss_mb(owner):.0f} MB", flush=True)

        def m4(port):
            t = time.time()
            out = post(port, "/api/tally/v1/compare", {"run_ids": [run], "metric_keys": ["loss"], "buckets": 1000})
            assert out["series"][0]["points"] if "series" in out else out, out
            return (time.time() - t) * 1000

        def full(port):
            t = time.time()
            got = 0
            for lo in range(0, points, 1_000_000):
                req = urllib.request.Request(f"http://127.0.0.1:{port}/api/tally/v1/compare", headers={"Content-Type": "application/json"},
                                             data=json.dumps({"run_ids": [run], "metric_keys": ["loss"], "mode": "raw", "max_points": 1_000_000,
                                                              "start_step": lo, "end_step": lo + 999_999, "format": "binary"}).encode())
                with urllib.request.urlopen(req, timeout=300) as r:
                    got += len(r.read())
            assert got >= points * 8, got
            return (time.time() - t) * 1000

        for what, first in (("M4, 1,000 buckets", m4), ("full history (raw, binary)", full)):
            reader = Server(tally, *args)
            readers.append(reader)
            cold = first(reader.port)
            warm = statistics.median(first(reader.port) for _ in range(5))
            print(f"reads: {what}: cold (empty server: segments fetched from the bucket) {cold:,.0f} ms, warm {warm:,.1f} ms "
                  f"(median of 5); reader RSS {rss_mb(reader):.0f} MB", flush=True)
    finally:
        for s in [owner] + readers:
            s.stop()


def psql(db, sql):
    return subprocess.run(["psql", db, "-At", "-c", sql], check=True, capture_output=True, text=True).stdout.strip()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tally", default=".build/release/tally")
    ap.add_argument("--connections", type=int, default=6)
    ap.add_argument("--points", type=int, default=200_000)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--configs", help="only the configurations whose name contains this")
    ap.add_argument("--no-failover", action="store_true")
    ap.add_argument("--reads", type=int, metavar="POINTS", help="only the reads: cold and warm reads of a sealed run of POINTS points")
    a = ap.parse_args()
    if a.reads:
        reads(a.tally, a.reads)
        return
    configs = {
        "single-sqlite": (lambda: [Server(a.tally)], False),
        "single-postgres": (lambda: [Server(a.tally, "--backend-store-uri", new_database())], False),
        "cluster-1": (lambda: [Server(a.tally, *cluster_args(new_database()))], False),
        "cluster-1-sealing": (lambda: [Server(a.tally, *cluster_args(new_database()), "--max-unsealed-seconds", "1")], False),
        "cluster-3": (lambda: (lambda db: [Server(a.tally, *cluster_args(db)) for _ in range(3)])(new_database()), False),
        "cluster-3-spread": (lambda: (lambda db: [Server(a.tally, *cluster_args(db)) for _ in range(3)])(new_database()), True),
    }
    configs = {k: v for k, v in configs.items() if not a.configs or a.configs in k}
    apis = ["mlflow_log_batch", "native_json", "native_binary"]
    results = {name: {api: [] for api in apis} for name in configs}
    for r in range(a.rounds):
        for name, (start, spread) in configs.items():
            servers = start()
            try:
                out = bench(a.tally, [s.port for s in servers], a.connections, a.points, spread)
                out["rss_mb"] = max(rss_mb(s) for s in servers)
                print(f"  largest server RSS after ingest: {out['rss_mb']:.0f} MB", flush=True)
                db = next((x for x in servers[0].proc.args if str(x).startswith("postgres")), None)
                if name.startswith("cluster"):
                    b, n = log_bytes(db)
                    points = 3 * a.connections * a.points
                    out["log_bytes_per_point"] = b / points
                    print(f"  shared log: {b:,} bytes in {n:,} records for {points:,} points: {b / points:.2f} bytes/point", flush=True)
            finally:
                for s in servers:
                    s.stop()
            for api in apis:
                results[name][api].append(out[f"{api}_points_per_s"])
            print(f"round {r + 1} {name}: " + ", ".join(f"{api} {out[f'{api}_points_per_s']:,.0f}" for api in apis), flush=True)
    print(f"\npoints/s, median of {a.rounds} rounds ({a.connections} connections, {a.points:,} points each per API):")
    print(f"{'configuration':18}" + "".join(f"{api:>20}" for api in apis))
    for name in configs:
        print(f"{name:18}" + "".join(f"{statistics.median(results[name][api]):>20,.0f}" for api in apis))
    for lease in () if a.no_failover else (15, 5):
        print(f"failover at --lease-seconds {lease}: {failover(a.tally, lease):.2f} s (kill -9 → a write of its run acknowledged)", flush=True)


if __name__ == "__main__":
    main()
