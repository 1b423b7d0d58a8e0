#!/usr/bin/env python3
"""Tally on PostgreSQL, side by side in one run: SQLite vs PostgreSQL in-process (`tally bench tracking`), then over
MLflow's REST API with one load generator (`tally bench tracking --url`) against `tally server` on SQLite, on
PostgreSQL (1 and 3 servers sharing one database) and a real `mlflow server` on the same PostgreSQL cluster.

The cluster is started here (scripts/pg-test with PG_TEST_DURABLE=1: fsync and synchronous commit on, as deployed);
every target gets a database of its own. Prints one JSON object and a Markdown table.

Usage: .venv-interop/bin/python scripts/bench-postgres.py [--tally .build/release/tally] [--clients 4]
       [--create-runs 2000] [--search-runs 10000] [--mlflow-create-runs 400] [--skip-mlflow]
"""
import argparse, json, os, shutil, subprocess, sys, tempfile

from benchutil import database, free_port, start, stop

HERE = os.path.dirname(os.path.abspath(__file__))


def bench(tally, *args):
    p = subprocess.run([tally, "bench", "tracking", "--json", *args], capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError("tally bench tracking %s failed: %s" % (" ".join(args), p.stderr[-2000:]))
    return json.loads(p.stdout)


def tally_servers(tally, scratch, name, n, uri=None):
    procs, urls = [], []
    for i in range(n):
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        cmd = [tally, "server", "--port", str(port), "--data-dir", os.path.join(scratch, f"{name}-{i}"), "--log-level", "warning"]
        if uri:
            cmd += ["--backend-store-uri", uri]
        procs.append(start(cmd, url))
        urls.append(url)
    return procs, urls


def mlflow_server(scratch, uri, workers):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", uri.replace("postgresql://", "postgresql+psycopg2://"),
           "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
           "--artifacts-destination", os.path.join(scratch, "mlflow-artifacts")]
    return [start(cmd, url)], [url]


def rss_mb(pid):
    """Resident and peak resident memory (MB) of a process and its descendants (mlflow's workers), from /proc."""
    def status(p):
        out = {}
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    k, _, v = line.partition(":")
                    if k in ("VmRSS", "VmHWM"):
                        out[k] = int(v.split()[0]) / 1024
        except OSError:
            pass
        return out
    children = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    children.setdefault(int(f.read().rsplit(")", 1)[1].split()[1]), []).append(int(d))
            except (OSError, IndexError, ValueError):
                pass
    todo, rss, hwm = [pid], 0.0, 0.0
    while todo:
        p = todo.pop()
        st = status(p)
        rss += st.get("VmRSS", 0)
        hwm += st.get("VmHWM", 0)
        todo += children.get(p, [])
    return round(rss), round(hwm)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tally", default=".build/release/tally")
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--create-runs", type=int, default=2000)
    ap.add_argument("--search-runs", type=int, default=10000)
    ap.add_argument("--latest-batches", type=int, default=500)
    ap.add_argument("--mlflow-create-runs", type=int, default=400)
    ap.add_argument("--mlflow-latest-batches", type=int, default=100)
    ap.add_argument("--mlflow-workers", type=int, default=4)
    ap.add_argument("--skip-mlflow", action="store_true")
    a = ap.parse_args()
    tally = os.path.abspath(a.tally)
    scratch = tempfile.mkdtemp(prefix="tally-bench-pg-")
    cluster = os.path.join(tempfile.gettempdir(), f"tally-bench-pg-{os.getpid()}")  # the postgres user must reach it
    env = dict(os.environ, PG_TEST_DURABLE="1", PG_TEST_TLS="0")  # plain connections, as every figure before TLS came to the tests
    base = subprocess.run([os.path.join(HERE, "pg-test"), "start", cluster], check=True, capture_output=True, text=True, env=env).stdout.strip()
    results = {}
    try:
        sizes = ["--create-runs", str(a.create_runs), "--search-runs", str(a.search_runs), "--latest-batches", str(a.latest_batches)]
        # In-process: the service over each metadata store (metrics in TallyStore, durability sync).
        for clients in (1, a.clients):
            results[f"in-process sqlite, {clients} client(s)"] = bench(tally, "--clients", str(clients), *sizes)
            uri = database(cluster, base, f"inproc{clients}")
            results[f"in-process postgresql, {clients} client(s)"] = bench(tally, "--clients", str(clients), "--backend-store-uri", uri, *sizes)
            uri = database(cluster, base, f"relaxed{clients}", relaxed=True)
            results[f"in-process postgresql, synchronous_commit off, {clients} client(s)"] = bench(
                tally, "--clients", str(clients), "--backend-store-uri", uri, *sizes)
            # The same over the server's Unix-domain socket (a server on the database's host): no TCP stack.
            uri = database(cluster, base, f"socket{clients}", relaxed=True)
            user, rest = uri.split("@", 1)
            port_db = rest.split(":", 1)[1]
            results[f"in-process postgresql, synchronous_commit off, Unix socket, {clients} client(s)"] = bench(
                tally, "--clients", str(clients), "--backend-store-uri", f"{user}@:{port_db}?host={cluster}", *sizes)
        # Over HTTP, one load generator for every target.
        targets = [("tally server, sqlite", lambda: tally_servers(tally, scratch, "sqlite", 1)),
                   ("tally server, postgresql", lambda: tally_servers(tally, scratch, "pg1", 1, database(cluster, base, "pg1"))),
                   ("3 tally servers, one postgresql", lambda: tally_servers(tally, scratch, "pg3", 3, database(cluster, base, "pg3"))),
                   ("tally server, postgresql, synchronous_commit off",
                    lambda: tally_servers(tally, scratch, "pg1r", 1, database(cluster, base, "pg1r", relaxed=True))),
                   ("3 tally servers, one postgresql, synchronous_commit off",
                    lambda: tally_servers(tally, scratch, "pg3r", 3, database(cluster, base, "pg3r", relaxed=True)))]
        if not a.skip_mlflow:
            targets.append((f"mlflow server ({a.mlflow_workers} workers), postgresql",
                            lambda: mlflow_server(scratch, database(cluster, base, "mlflow"), a.mlflow_workers)))
        for name, starter in targets:
            procs, urls = starter()
            try:
                mlflow = name.startswith("mlflow")
                args = ["--clients", str(a.clients), "--create-runs", str(a.mlflow_create_runs if mlflow else a.create_runs),
                        "--search-runs", str(a.search_runs),
                        "--latest-batches", str(a.mlflow_latest_batches if mlflow else a.latest_batches)]
                for u in urls:
                    args += ["--url", u]
                results[name] = bench(tally, *args)
                # Memory after the search phase (the search cache holds the searched experiment's runs).
                mem = [rss_mb(p.pid) for p in procs]
                results[name]["server_rss_mb"] = max(m[0] for m in mem)
                results[name]["server_peak_rss_mb"] = max(m[1] for m in mem)
            finally:
                for p in procs:
                    stop(p)
    finally:
        subprocess.run([os.path.join(HERE, "pg-test"), "stop", cluster], check=False)
        shutil.rmtree(scratch, ignore_errors=True)
    print(json.dumps(results, indent=1))
    print()
    print("| target | runs created/s | log-batch/s (p50 / p99 ms) | search ms p50 (filtered / all ordered) | populate runs/s "
          "| server RSS MB (peak) |")
    print("|---|---|---|---|---|---|")
    for name, r in results.items():
        lat = f" ({r['log_batch_ms_p50']} / {r['log_batch_ms_p99']})" if "log_batch_ms_p50" in r else ""
        rss = f"{r['server_rss_mb']} ({r['server_peak_rss_mb']})" if "server_rss_mb" in r else "—"
        print(f"| {name} | {r['create_runs_per_s']} | {r['log_batches_per_s']}{lat} | {r['search_ms_p50']} / {r['search_all_ordered_ms_p50']} "
              f"| {r.get('populate_runs_per_s', '—')} | {rss} |")


if __name__ == "__main__":
    main()
