#!/usr/bin/env python3
"""Artifacts in S3 through Tally's proxy and MLflow's, side by side in one run.

    scripts/s3-test run .venv-interop/bin/python scripts/bench-artifacts-s3.py --tally .build/release/tally [--mb 256] [--files 500] [--rounds 3]

Both servers keep artifacts (`--artifacts-destination s3://tally/…`) in the SeaweedFS that `scripts/s3-test run`
starts; the real mlflow client uploads one large file (`log_artifact`), downloads it (`download_artifacts`), then
uploads and downloads a tree of small files. Three targets: Tally as it starts (presigned URLs offered: a file from
`--part-threshold-mb` goes up in parts straight to the bucket, downloads come from it by presigned URL), Tally with
`--no-presigned-artifact-urls` (every byte through its proxy), and `mlflow server` (which offers presigned URLs too).
Prints MB/s and files/s per target (medians of the rounds), and Tally's peak RSS and CPU seconds.
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
p.add_argument("--part-threshold-mb", type=int, default=64, help="the client's MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE (its default: 500)")
a = p.parse_args()
os.environ["MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE"] = str(a.part_threshold_mb << 20)
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


def cpu_s(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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
proxy = Server("--artifacts-destination", s3_prefix("bench-proxy"), "--no-presigned-artifact-urls")
mlflow = MlflowServer(workers=4)
assert mlflow.artifacts.startswith("s3://"), mlflow.artifacts
names = ["tally", "tally-proxy", "mlflow"]
try:
    rows = {}
    for name, server in [("tally", tally), ("tally-proxy", proxy)]:
        before = cpu_s(server.proc.pid)
        rows[name] = measure(server.url)
        rows[name]["cpu_s"] = cpu_s(server.proc.pid) - before
        rows[name]["peak_rss_mb"] = rss_mb(server.proc.pid)
    try:
        rows["mlflow"] = measure(mlflow.url)
    except Exception as e:  # reported, so the other targets' figures are not lost
        print(f"mlflow server failed: {str(e)[:600]}", file=sys.stderr)
        names.remove("mlflow")
finally:
    tally.stop()
    proxy.stop()
    mlflow.stop()
    shutil.rmtree(work, ignore_errors=True)
print(f"{'figure':22}" + "".join(f"{n:>12}" for n in names))
for k in ["up_mb_s", "down_mb_s", "small_up_files_s", "small_down_files_s"]:
    print(f"{k:22}" + "".join(f"{rows[n][k]:12.1f}" for n in names))
for k in ["cpu_s", "peak_rss_mb"]:
    print(f"{'server ' + k:22}" + "".join(f"{rows[n][k]:12.1f}" for n in ["tally", "tally-proxy"]))
