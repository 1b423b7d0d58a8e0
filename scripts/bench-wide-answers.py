#!/usr/bin/env python3
"""Where the time of the two large wide-run answers goes: starts a `tally server`, logs RUNS runs x KEYS keys (one
point per key, float32 fractions as `tally bench wide` logs them) through log-batch, then asks for a scoreboard of 100
runs and a filtered search page of 100 runs ROUNDS times each and reports, per answer, the median time to first byte
(the server's computation and rendering), the median total and the size. Prints JSON.

Usage: .venv-interop/bin/python scripts/bench-wide-answers.py [--tally .build/release/tally] [--runs 200] [--keys 2000]
"""
import argparse, http.client, json, random, shutil, statistics, struct, tempfile, time, urllib.parse

from benchutil import start_tally, stop


def post(conn, path, body):
    """POST `body` as JSON; returns (seconds to the first byte of the answer, seconds in all, answer bytes)."""
    data = json.dumps(body).encode()
    t0 = time.perf_counter()
    conn.request("POST", path, body=data, headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    first = resp.read(1)
    t1 = time.perf_counter()
    rest = resp.read()
    t2 = time.perf_counter()
    if resp.status != 200:
        raise RuntimeError(f"{path}: {resp.status} {(first + rest)[:200]!r}")
    return t1 - t0, t2 - t0, first + rest


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tally", default=".build/release/tally")
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--keys", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=11)
    args = ap.parse_args()
    root = tempfile.mkdtemp(prefix="tally-wide-answers-")
    proc, url = start_tally(args.tally, root)
    try:
        conn = http.client.HTTPConnection(urllib.parse.urlparse(url).netloc)
        rng = random.Random(1)
        ids = []
        for r in range(args.runs):
            _, _, b = post(conn, "/api/2.0/mlflow/runs/create", {"experiment_id": "0", "start_time": 1_700_000_000_000 + r})
            rid = json.loads(b)["run"]["info"]["run_id"]
            ids.append(rid)
            for start in range(0, args.keys, 1000):
                metrics = [{"key": f"suite{k // 100:02d}/task_{k % 100:04d}/acc",
                            "value": struct.unpack("f", struct.pack("f", rng.randrange(300) / 300))[0],
                            "timestamp": 1_700_000_000_000, "step": 1000} for k in range(start, min(args.keys, start + 1000))]
                post(conn, "/api/2.0/mlflow/runs/log-batch", {"run_id": rid, "metrics": metrics})
        probe = "suite10/task_0000/acc"
        asks = {
            "scoreboard": ("/api/tally/v1/scoreboard", {"run_ids": ids[:100]}),
            "search_page": ("/api/2.0/mlflow/runs/search", {"experiment_ids": ["0"], "filter": f"metrics.`{probe}` > 0.5",
                                                           "max_results": 100, "order_by": [f"metrics.`{probe}` DESC"]}),
        }
        out = {"runs": args.runs, "keys": args.keys}
        for name, (path, body) in asks.items():
            first, total, size = [], [], 0
            for _ in range(args.rounds):
                f, t, b = post(conn, path, body)
                first.append(f)
                total.append(t)
                size = len(b)
            out[name + "_first_byte_ms_p50"] = round(statistics.median(first) * 1000, 1)
            out[name + "_total_ms_p50"] = round(statistics.median(total) * 1000, 1)
            out[name + "_bytes"] = size
        print(json.dumps(out, indent=1))
    finally:
        stop(proc)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
