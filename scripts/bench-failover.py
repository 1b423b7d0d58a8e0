#!/usr/bin/env python3
"""A PostgreSQL failover under a `tally server` taking writes: a primary and its streaming standby of their own
(scripts/pg-test start and standby; durable: fsync and synchronous commit on, TLS off), the server on
`postgresql://…@standby,primary/tally?target_session_attrs=read-write`, C clients logging one metric point per
request without pause (each retrying a 503 at once, as fast as possible: the server's own recovery, not a client's
backoff). After a few seconds the primary is killed (immediate: a crash) and, D ms later, the standby promoted.
Prints per round: the answers by status during the whole run (anything but 200 and 503 is a failure; the first
answer of each status shown); the longest time no write was acknowledged (the outage the clients saw: from the last
write answered before the kill to the first after it, or to the end of the run when none came; the kill and the
promotion themselves take ~0.1 s each); the slowest request; the latest steps the new primary lacks of what was
acknowledged before the kill (replication is asynchronous); and the server's RSS.

    scripts/bench-failover.py .build/release/tally --rounds 3 --clients 4 --promote-after-ms 500 [--mlflow] [--fence]

--fence: instead of the kill, the primary is fenced (`default_transaction_read_only = on`, reloaded: it still answers
and takes no writes, as a demoted or isolated primary may), and stopped only after the run.

--mlflow runs each round against a real `mlflow server` too (4 workers, psycopg2: libpq's own host list and
target_session_attrs, through SQLAlchemy's `?host=…&host=…` spelling), on a pair of its own.
"""
import argparse
import collections
import json
import os
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid

from benchutil import call, server_rss, start_server, stop_server

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def pg_test(*args):
    env = {**os.environ, "PG_TEST_TLS": "0", "PG_TEST_DURABLE": "1"}
    return subprocess.run([os.path.join(ROOT, "scripts", "pg-test"), *args], check=True, capture_output=True, text=True, env=env).stdout.strip()


def post(url, path, body):
    """(status, the answer's text) of one JSON POST; status -1 when no answer came."""
    req = urllib.request.Request(url + path, method="POST", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except OSError as e:
        return -1, str(e).encode()


def one_round(binary, clients, promote_after, before_kill, fence=False):
    base = f"/tmp/bench-failover-{uuid.uuid4().hex[:10]}"
    primary, standby = base + "-primary", base + "-standby"
    p = int(pg_test("start", primary).rsplit(":", 1)[1].split("/")[0])
    s = int(pg_test("standby", primary, standby).rsplit(":", 1)[1].split("/")[0])
    work = tempfile.mkdtemp(prefix="bench-failover-")
    if binary == "mlflow":
        uri = f"postgresql+psycopg2://tally:tally@/tally?host=127.0.0.1:{s}&host=127.0.0.1:{p}&sslmode=disable&target_session_attrs=read-write"
        proc, url = start_server("mlflow", uri, work, extra=("--workers", "4"))
    else:
        uri = f"postgresql://tally:tally@127.0.0.1:{s},127.0.0.1:{p}/tally?sslmode=disable&target_session_attrs=read-write"
        proc, url = start_server(binary, uri, work)
    api = url + "/api/2.0/mlflow"
    try:
        exp = call(api, "POST", "/experiments/create", {"name": "failover"})["experiment_id"]
        runs = [call(api, "POST", "/runs/create", {"experiment_id": exp})["run"]["info"]["run_id"] for _ in range(clients)]
        statuses = collections.Counter()
        errors = {}  # the first answer of each status but 200
        acked = {}  # run -> last step acknowledged before the kill started
        done = []  # completion times of acknowledged writes
        slowest = [0.0]
        killed = [None]
        stop = threading.Event()
        lock = threading.Lock()

        def client(run):
            step = 0
            while not stop.is_set():
                started = time.monotonic()
                status, text = post(api, "/runs/log-metric", {"run_id": run, "key": "loss", "value": 1.0 / (step + 1), "timestamp": step, "step": step})
                now = time.monotonic()
                with lock:
                    statuses[status] += 1
                    if status != 200:
                        errors.setdefault(status, text.decode(errors="replace")[:200])
                    slowest[0] = max(slowest[0], now - started)
                    if status == 200:
                        done.append(now)
                        if killed[0] is None:
                            acked[run] = step
                if status == 200:
                    step += 1

        threads = [threading.Thread(target=client, args=(r,)) for r in runs]
        for t in threads:
            t.start()
        time.sleep(before_kill)
        rss = server_rss(proc)
        with lock:
            killed[0] = time.monotonic()
        if fence:
            admin = ["psql", f"postgresql://tally:tally@127.0.0.1:{p}/tally?sslmode=disable", "-XAtq"]
            subprocess.run(admin + ["-c", "ALTER SYSTEM SET default_transaction_read_only = on", "-c", "SELECT pg_reload_conf()"],
                           check=True, capture_output=True)
        else:
            pg_test("kill", primary)
        time.sleep(promote_after / 1000)
        promoted = time.monotonic()
        pg_test("promote", standby)
        time.sleep(3)
        stop.set()
        ended = time.monotonic()
        for t in threads:
            t.join()
        # What the new primary lacks of what was acknowledged before the kill: each run's latest step.
        lost = 0
        for run in runs:
            r = call(api, "GET", f"/runs/get?run_id={run}")["run"]["data"].get("metrics", [])
            latest = max((m["step"] for m in r), default=-1)
            lost += max(0, acked.get(run, -1) - latest)
        times = sorted(done) + [ended]  # writes that never resumed: the outage lasts to the end
        gap = max((b - a for a, b in zip(times, times[1:]) if b > killed[0]), default=None)
        after = [t for t in times if t > promoted]
        return {"statuses": dict(statuses), "first_errors": errors, "outage_ms": round(gap * 1000) if gap else None,
                "promote_to_write_ms": round((after[0] - promoted) * 1000) if after else None,
                "slowest_request_ms": round(slowest[0] * 1000), "latest_steps_behind": lost, "rss_mb": round(rss[0], 1)}
    finally:
        stop_server(proc, work)
        pg_test("stop", standby)
        pg_test("stop", primary)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("tally")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--promote-after-ms", type=int, default=500, help="from the kill to the promotion (a failover manager's detection)")
    ap.add_argument("--before-kill", type=float, default=3.0, help="seconds of writes before the kill")
    ap.add_argument("--mlflow", action="store_true", help="each round against a real mlflow server too")
    ap.add_argument("--fence", action="store_true", help="fence the primary (read-only, still answering) instead of killing it")
    args = ap.parse_args()
    for i in range(args.rounds):
        for server in [os.path.abspath(args.tally)] + (["mlflow"] if args.mlflow else []):
            print(json.dumps({"round": i + 1, "server": "mlflow" if server == "mlflow" else "tally",
                              **one_round(server, args.clients, args.promote_after_ms, args.before_kill, args.fence)}), flush=True)


if __name__ == "__main__":
    main()
