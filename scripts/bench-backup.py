#!/usr/bin/env python3
"""`tally backup` of a running server under load: a `tally server` (the binary given) filled with N runs (20 params
and 10 metrics × 98 steps each, one log-batch per run) and 4 dense runs (one series of 200,000 points each, sealed
into segments), then 4 clients logging batches of 10 metrics without pause
while `tally backup` runs R times. Prints each backup's time, the server's RSS before and after the backups, how long writes waited (the server's figure), the sizes
copied, and the log-batch latency (p50 / p99 / max) of requests that overlapped a backup against those that did not.
With --incremental, each backup after the first links what the one before holds unchanged. The last copy is then
started as a server of its own and its run count and one history checked.

    scripts/bench-backup.py .build/release/tally --runs 5000 --rounds 3 [--restart] [--incremental]

With --backend-store-uri postgresql://…/db the server keeps its metadata there (an empty database) and each backup
dumps it with pg_dump; the last copy is checked after pg_restore into --check-uri (another empty database).
"""
import argparse
import concurrent.futures
import os
import re
import statistics
import subprocess
import tempfile
import threading
import time

from benchutil import call, server_rss, start_server, stop_server


def percentiles(xs):
    xs = sorted(xs)
    if not xs:
        return "-"
    return "%.2f / %.2f / %.1f" % (statistics.median(xs), xs[int(len(xs) * 0.99) - 1 if len(xs) >= 100 else -1], xs[-1])


def du(path):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("tally")
    ap.add_argument("--runs", type=int, default=5000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--restart", action="store_true", help="restart the server after filling it (its points sealed into segments)")
    ap.add_argument("--incremental", action="store_true", help="each backup after the first with --incremental-from the one before")
    ap.add_argument("--dense", type=int, default=200_000, help="points of one series in each of 4 dense runs (sealed into segments)")
    ap.add_argument("--backend-store-uri", default="-", help="the server's PostgreSQL database (empty); default the embedded SQLite")
    ap.add_argument("--check-uri", help="with --backend-store-uri: an empty database the last copy's dump is restored into")
    args = ap.parse_args()
    backend = args.backend_store_uri
    if backend != "-" and not args.check_uri:
        ap.error("--backend-store-uri needs --check-uri (where the last copy is restored)")
    binary = os.path.abspath(args.tally)
    work = tempfile.mkdtemp(prefix="bench-backup-")
    proc, url = start_server(binary, backend, work)
    api = url + "/api/2.0/mlflow"
    try:
        exp = call(api, "POST", "/experiments/create", {"name": "backup-bench"})["experiment_id"]

        def fill(i):
            run = call(api, "POST", "/runs/create", {"experiment_id": exp, "start_time": 1})["run"]["info"]["run_id"]
            call(api, "POST", "/runs/log-batch", {
                "run_id": run, "params": [{"key": "p%d" % k, "value": str(i * k)} for k in range(20)],
                "metrics": [{"key": "m%d" % k, "value": (i + s) / (k + 1), "timestamp": 1000 + s, "step": s} for k in range(10) for s in range(98)]})
            return run

        t0 = time.time()
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            filled = list(pool.map(fill, range(args.runs)))
        def dense(i):
            run = call(api, "POST", "/runs/create", {"experiment_id": exp, "start_time": 1})["run"]["info"]["run_id"]
            for start in range(0, args.dense, 1000):
                call(api, "POST", "/runs/log-batch", {"run_id": run, "metrics": [
                    {"key": "loss", "value": 1 / (s + 1), "timestamp": 1000 + s, "step": s} for s in range(start, min(args.dense, start + 1000))]})
            return run

        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            dense_runs = list(pool.map(dense, range(4)))
        print("filled %d runs in %.1f s; data directory %.1f MB (metadata.sqlite %.1f MB)" % (
            args.runs, time.time() - t0, du(work + "/data") / 1e6,
            os.path.getsize(work + "/data/metadata.sqlite") / 1e6 if backend == "-" else 0))

        if args.restart:
            # A clean stop seals every run's points into segments: the state of a server that has run for a while
            # (its log bounded, its data in segments).
            proc.terminate()
            proc.wait(timeout=120)
            proc, url = start_server(binary, backend, work)
            api = url + "/api/2.0/mlflow"
            print("restarted: %d segment files" % sum(len(fs) for d, _, fs in os.walk(work + "/data/metrics/runs")))
        stop = threading.Event()
        latencies = []  # (start, end) of every load request
        lock = threading.Lock()

        def load(c):
            run = call(api, "POST", "/runs/create", {"experiment_id": exp, "start_time": 1})["run"]["info"]["run_id"]
            step = 0
            while not stop.is_set():
                body = {"run_id": run, "metrics": [{"key": "load%d" % k, "value": step / 3, "timestamp": 1000 + step, "step": step} for k in range(10)]}
                a = time.perf_counter()
                call(api, "POST", "/runs/log-batch", body)
                b = time.perf_counter()
                with lock:
                    latencies.append((a, b))
                step += 1

        clients = [threading.Thread(target=load, args=(c,)) for c in range(args.clients)]
        for t in clients:
            t.start()
        time.sleep(5)
        rss_before = server_rss(proc)
        windows, rows = [], []
        for r in range(args.rounds):
            target = os.path.join(work, "backup%d" % r)
            a = time.perf_counter()
            incremental = ["--incremental-from", os.path.join(work, "backup%d" % (r - 1))] if r > 0 and args.incremental else []
            out = subprocess.run([binary, "backup", target, "--data-dir", work + "/data", *incremental], capture_output=True, text=True, check=True).stdout
            b = time.perf_counter()
            windows.append((a, b))
            waited = float(re.search(r"writes waited ([0-9.]+) ms", out).group(1))
            linked = re.search(r"linked from the earlier backup: \d+ files, ([0-9.]+) MB", out)
            rows.append((b - a, waited, du(target) / 1e6 - (float(linked.group(1)) if linked else 0)))
            print(out.strip())
            time.sleep(5)
        rss_after = server_rss(proc)
        stop.set()
        for t in clients:
            t.join()
        during = [(e - s) * 1000 for s, e in latencies if any(s < wb and e > wa for wa, wb in windows)]
        outside = [(e - s) * 1000 for s, e in latencies if not any(s < wb and e > wa for wa, wb in windows)]
        print()
        print("| backup | seconds | writes waited (ms) | MB copied (not linked) |")
        print("|---|---|---|---|")
        for i, (sec, waited, mb) in enumerate(rows):
            print("| %d | %.2f | %.1f | %.1f |" % (i + 1, sec, waited, mb))
        print()
        print("server RSS MB (VmRSS / peak VmHWM): before the backups %.0f / %.0f, after them %.0f / %.0f" % (*rss_before, *rss_after))
        print("log-batch latency ms (p50 / p99 / max): during backups %s (%d requests), otherwise %s (%d requests)" % (
            percentiles(during), len(during), percentiles(outside), len(outside)))
        # The last copy, started as a server of its own.
        check = tempfile.mkdtemp(prefix="bench-backup-check-")
        os.rename(os.path.join(work, "backup%d" % (args.rounds - 1)), os.path.join(check, "data"))
        if backend != "-" and not os.path.exists(os.path.join(check, "data", "metadata.pgdump")):
            print("the last copy holds no metadata.pgdump (a build before d1d15b1 did not dump PostgreSQL): not started")
            return
        if backend != "-":
            subprocess.run(["pg_restore", "--no-owner", "--no-privileges", "--exit-on-error", "--dbname=" + args.check_uri,
                            os.path.join(check, "data", "metadata.pgdump")], check=True)
        proc2, url2 = start_server(binary, args.check_uri if backend != "-" else "-", check)
        try:
            api2 = url2 + "/api/2.0/mlflow"
            found, token = 0, None
            while True:
                page = call(api2, "POST", "/runs/search", {"experiment_ids": [exp], "max_results": 1000, **({"page_token": token} if token else {})})
                found += len(page.get("runs", []))
                token = page.get("next_page_token")
                if not token:
                    break
            history = call(api2, "GET", "/metrics/get-history?run_id=%s&metric_key=m3" % filled[-1])["metrics"]
            loss = call(api2, "GET", "/metrics/get-history?run_id=%s&metric_key=loss&max_results=1000000" % dense_runs[0])["metrics"]
            print("the last copy, started: %d runs (%d filled + 4 dense + %d load), history of m3: %d points, of a dense run: %d" % (
                found, args.runs, args.clients, len(history), len(loss)))
        finally:
            stop_server(proc2, check)
    finally:
        stop_server(proc, work)


if __name__ == "__main__":
    main()
