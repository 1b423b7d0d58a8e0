#!/usr/bin/env python3
"""Artifacts in S3 through Tally's proxy and MLflow's, side by side in one run.

    scripts/s3-test run .venv-interop/bin/python scripts/bench-artifacts-s3.py --tally .build/release/tally [--mb 256] [--files 500] [--rounds 3]

Both servers proxy artifacts (`--artifacts-destination s3://tally/…`) to the SeaweedFS that `scripts/s3-test run`
starts; the real mlflow client uploads one large file (`log_artifact`), downloads it (`download_artifacts`), then
uploads and downloads a tree of small files. Prints MB/s and files/s per server (medians of the rounds) and Tally's
peak RSS.
"""
import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "Interop"))
os.environ["MLFLOW_S3_ENDPOINT_URL"] = os.environ["TALLY_TEST_S3_ENDPOINT"]
os.environ["TALLY_INTEROP_ARTIFACTS"] = "s3"  # the MLflow oracle's --artifacts-destination in the bucket too
os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = "600"
import conftest  # noqa: E402
from conftest import MlflowServer, Server, s3_prefix  # noqa: E402
from mlflow import MlflowClient  # noqa: E402

p = argparse.ArgumentParser()
p.add_argument("--tally", required=True)
p.add_argument("--mb", type=int, default=256)
p.add_argument("--files", type=int, default=500)
p.add_argument("--rounds", type=int, default=3)
a = p.parse_args()
conftest.TALLY = a.tally

work = tempfile.mkdtemp(prefix="tally-bench-s3-")
big = os.path.join(work, "big.bin")
with open(big, "wb") as f:
    for _ in range(a.mb):
        f.write(os.urandom(1 << 20))
tree = os.path.join(work, "tree")
for i in range(a.files):
    d = os.path.join(tree, f"d{i % 10}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"f{i}.txt"), "wb") as f:
        f.write(os.urandom(2048))


def rss_mb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def measure(url):
    c = MlflowClient(url)
    eid = c.create_experiment(f"bench-{time.time_ns()}")
    out = {"up_mb_s": [], "down_mb_s": [], "small_up_files_s": [], "small_down_files_s": []}
    for _ in range(a.rounds):
        rid = c.create_run(eid).info.run_id
        t = time.perf_counter(); c.log_artifact(rid, big); out["up_mb_s"].append(a.mb / (time.perf_counter() - t))
        dst = tempfile.mkdtemp(dir=work)
        t = time.perf_counter(); c.download_artifacts(rid, "big.bin", dst); out["down_mb_s"].append(a.mb / (time.perf_counter() - t))
        assert os.path.getsize(os.path.join(dst, "big.bin")) == a.mb << 20
        t = time.perf_counter(); c.log_artifacts(rid, tree, "tree"); out["small_up_files_s"].append(a.files / (time.perf_counter() - t))
        t = time.perf_counter(); c.download_artifacts(rid, "tree", dst); out["small_down_files_s"].append(a.files / (time.perf_counter() - t))
        shutil.rmtree(dst)
    return {k: statistics.median(v) for k, v in out.items()}


tally = Server("--artifacts-destination", s3_prefix("bench-tally"))
mlflow = MlflowServer(workers=4)
assert mlflow.artifacts.startswith("s3://"), mlflow.artifacts
try:
    rows = {"tally": measure(tally.url), "mlflow": measure(mlflow.url)}
    rows["tally"]["peak_rss_mb"] = rss_mb(tally.proc.pid)
finally:
    tally.stop()
    mlflow.stop()
    shutil.rmtree(work, ignore_errors=True)
print(f"{'figure':22} {'tally':>10} {'mlflow':>10}")
for k in ["up_mb_s", "down_mb_s", "small_up_files_s", "small_down_files_s"]:
    print(f"{k:22} {rows['tally'][k]:10.1f} {rows['mlflow'][k]:10.1f}")
print(f"{'tally peak_rss_mb':22} {rows['tally']['peak_rss_mb']:10.1f}")
