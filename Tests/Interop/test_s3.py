"""Artifacts in S3-compatible object storage (the SeaweedFS of `scripts/s3-test run`): `tally server
--artifacts-destination s3://bucket/prefix` under the real mlflow client (uploads spooled then sent, in parts when
large; listings; downloads by ranged GETs; deletes), a clear startup error for a missing bucket or missing
credentials, `tally export` from an S3-backed store, and `tally import` of MLflow runs whose artifact roots are
`s3://` themselves."""
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile

import boto3
import pytest
import requests
from mlflow import MlflowClient

from conftest import POSTGRES, TALLY, MlflowServer, Server, expect_proxy_fallback, free_port, logged, s3_prefix, small_parts
from test_import import artifact_bytes, artifact_files, expect_same_served, import_into, populate

ENDPOINT = os.environ.get("TALLY_TEST_S3_ENDPOINT")
pytestmark = [pytest.mark.skipif(not ENDPOINT, reason="needs the SeaweedFS of scripts/s3-test run (make test-cluster starts it)"),
              pytest.mark.skipif(POSTGRES, reason="uses the embedded metadata store; run once, outside the PostgreSQL pass")]
if ENDPOINT:
    os.environ["MLFLOW_S3_ENDPOINT_URL"] = ENDPOINT  # the servers', the MLflow client's and tally import's S3


def bucket_keys(prefix):
    s3 = boto3.client("s3", endpoint_url=ENDPOINT, region_name="us-east-1")
    keys = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket="tally", Prefix=prefix + "/"):
        for o in page.get("Contents", []):
            keys[o["Key"][len(prefix) + 1:]] = o["Size"]
    return keys


def test_artifacts_live_in_the_bucket_through_the_mlflow_client():
    dest = s3_prefix("serve")
    prefix = dest[len("s3://tally/"):]
    s = Server("--artifacts-destination", dest)
    tree = tempfile.mkdtemp(prefix="tally-s3-tree-")
    try:
        c = MlflowClient(s.url)
        eid = c.create_experiment("s3-artifacts")
        rid = c.create_run(eid).info.run_id
        big = os.urandom(20 * 1024 * 1024 + 3)  # over the client's 16 MiB part size: a multipart upload
        files = {"big.bin": big, "a b/ünïcode ✓.txt": "héllo".encode(), "deep/x/y/z.json": b"{}", "empty.txt": b""}
        for rel, data in files.items():
            os.makedirs(os.path.dirname(os.path.join(tree, rel)) or tree, exist_ok=True)
            with open(os.path.join(tree, rel), "wb") as f:
                f.write(data)
        c.log_artifacts(rid, tree, "out")
        # Every file is an object under the run's key prefix, nothing left in the server's spool.
        keys = bucket_keys(prefix)
        for rel, data in files.items():
            assert keys[f"{eid}/{rid}/artifacts/out/{rel}"] == len(data), sorted(keys)
        spool = os.path.join(s.dir, "data", "tmp", "artifact-uploads")
        assert not os.path.isdir(spool) or os.listdir(spool) == [], os.listdir(spool)
        assert not os.path.exists(os.path.join(s.dir, "data", "artifacts"))
        # Listings and downloads as MLflow gives them.
        assert [(f.path, f.is_dir) for f in c.list_artifacts(rid, "out")] == [("out/a b", True), ("out/big.bin", False), ("out/deep", True),
                                                                               ("out/empty.txt", False)]
        assert artifact_files(s.url, rid) == {f"out/{rel}": len(d) for rel, d in files.items()}
        back = c.download_artifacts(rid, "out", tempfile.mkdtemp(prefix="tally-s3-back-"))
        for rel, data in files.items():
            assert open(os.path.join(back, rel), "rb").read() == data, rel
        assert hashlib.sha256(artifact_bytes(s.url, rid, "out/big.bin")).digest() == hashlib.sha256(big).digest()
        # A ranged read through the UI's get-artifact, past the first 8 MiB window.
        r = requests.get(s.url + "/get-artifact", params={"run_id": rid, "path": "out/big.bin"}, timeout=60)
        assert r.status_code == 200 and r.content[9_000_000:9_000_010] == big[9_000_000:9_000_010]
        # MLflow's errors for what is not a file.
        assert requests.get(s.url + "/get-artifact", params={"run_id": rid, "path": "out/nope"}, timeout=60).status_code == 404
        d = requests.get(f"{s.url}/api/2.0/mlflow-artifacts/artifacts/{eid}/{rid}/artifacts/out/deep", timeout=60)
        assert d.status_code == 400 and d.json()["error_code"] == "INVALID_PARAMETER_VALUE", d.text
        # Deleting a directory through the proxied API removes its objects.
        assert requests.delete(f"{s.url}/api/2.0/mlflow-artifacts/artifacts/{eid}/{rid}/artifacts/out/deep", timeout=60).status_code == 200
        assert not any(k.startswith(f"{eid}/{rid}/artifacts/out/deep/") for k in bucket_keys(prefix))
        assert [f.path for f in c.list_artifacts(rid, "out")] == ["out/a b", "out/big.bin", "out/empty.txt"]
        # A restarted server finds them where they are: nothing was kept on its disk.
        s.stop(keep=True)
        s = Server("--artifacts-destination", dest, directory=s.dir)
        assert MlflowClient(s.url).list_artifacts(rid, "out/a b")[0].path == "out/a b/ünïcode ✓.txt"
    finally:
        s.stop()
        shutil.rmtree(tree, ignore_errors=True)


def start_failure(*args, env=None):
    d = tempfile.mkdtemp(prefix="tally-s3-fail-")
    try:
        out = subprocess.run([TALLY, "server", "--host", "127.0.0.1", "--port", str(free_port()), "--data-dir", d, *args],
                             capture_output=True, text=True, timeout=60, env=env)
        assert out.returncode != 0, out
        return out.stdout + out.stderr
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_a_missing_bucket_or_credentials_stop_the_server_with_a_clear_error():
    assert "S3 bucket 'no-such-bucket' does not exist" in start_failure("--artifacts-destination", "s3://no-such-bucket/x")
    bare = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    assert "No S3 credentials" in start_failure("--artifacts-destination", "s3://tally/x", env={**bare, "HOME": tempfile.gettempdir()})
    wrong = {**os.environ, "AWS_SECRET_ACCESS_KEY": "wrong"}
    assert "S3 bucket 'tally'" in start_failure("--artifacts-destination", "s3://tally/x", env=wrong)


def test_export_reads_artifacts_from_an_s3_store():
    dest = s3_prefix("export")
    s = Server("--artifacts-destination", dest)
    b = MlflowServer()
    try:
        c = MlflowClient(s.url)
        rid = c.create_run(c.create_experiment("s3-export")).info.run_id
        tree = tempfile.mkdtemp(prefix="tally-s3-exp-")
        big = os.urandom(3 * 1024 * 1024)
        for rel, data in {"m/weights.bin": big, "notes.txt": b"notes"}.items():
            os.makedirs(os.path.dirname(os.path.join(tree, rel)) or tree, exist_ok=True)
            open(os.path.join(tree, rel), "wb").write(data)
        c.log_artifacts(rid, tree)
        c.set_terminated(rid)
        s.stop(keep=True)
        out = subprocess.run([TALLY, "export", "mlflow", "--to", b.url, "--data-dir", os.path.join(s.dir, "data"), "--artifacts-destination", dest],
                             capture_output=True, text=True, timeout=600)
        assert out.returncode == 0 and "warning" not in out.stderr, out.stdout + out.stderr
        assert re.search(r"artifact files\s+2\b", out.stdout), out.stdout
        new = MlflowClient(b.url).search_runs([MlflowClient(b.url).get_experiment_by_name("s3-export").experiment_id])[0].info.run_id
        assert artifact_files(b.url, new) == {"m/weights.bin": len(big), "notes.txt": 5}
        assert artifact_bytes(b.url, new, "m/weights.bin") == big
    finally:
        b.stop()
        shutil.rmtree(s.dir, ignore_errors=True)


@pytest.mark.parametrize("kind", ["db", "url"])
def test_import_reads_artifacts_from_s3_roots(kind):
    """An MLflow server whose runs keep their artifacts in S3 themselves (`--default-artifact-root s3://…
    --no-serve-artifacts`: the client writes to the bucket, the runs' URIs are `s3://`): the import reads every file
    from the bucket (SQL source: directly, with the endpoint and credentials MLflow takes; URL source: through the
    server), and Tally serves them byte for byte."""
    m = MlflowServer("--default-artifact-root", s3_prefix("direct"), "--no-serve-artifacts")
    d = tempfile.mkdtemp(prefix="tally-import-s3-")
    try:
        ids = populate(m.url, m.work, prefix="s3roots", points=1000)
        run = MlflowClient(m.url).get_run(ids["runs"][0])
        assert run.info.artifact_uri.startswith("s3://tally/direct-"), run.info.artifact_uri
        out = import_into(m, os.path.join(d, "data"), kind=kind)
        assert "warning" not in out.stderr, out.stderr
        assert int(re.search(r"artifact files\s+(\d+)", out.stdout).group(1)) > 0, out.stdout
        expect_same_served(m, d, ids)
    finally:
        m.stop()
        shutil.rmtree(d, ignore_errors=True)


def test_a_servers_artifacts_move_into_s3():
    """`tally artifacts migrate --from DATA/artifacts --to s3://…`: the same paths, so the runs' mlflow-artifacts: URIs
    stay valid on the server restarted with --artifacts-destination s3://…; a rerun copies nothing again."""
    s = Server()
    dest = s3_prefix("migrated")
    try:
        c = MlflowClient(s.url)
        rid = c.create_run(c.create_experiment("to-s3")).info.run_id
        tree = tempfile.mkdtemp(prefix="tally-s3-mig-")
        files = {"model/w.bin": os.urandom(2_000_000), "a b/ü.txt": "ü".encode(), "x.json": b"{}"}
        for rel, data in files.items():
            os.makedirs(os.path.dirname(os.path.join(tree, rel)) or tree, exist_ok=True)
            open(os.path.join(tree, rel), "wb").write(data)
        c.log_artifacts(rid, tree)
        s.stop(keep=True)
        migrate = [TALLY, "artifacts", "migrate", "--from", os.path.join(s.dir, "data", "artifacts"), "--to", dest]
        out = subprocess.run(migrate, capture_output=True, text=True, timeout=300)
        assert out.returncode == 0 and "copied 3 files" in out.stdout, out.stdout + out.stderr
        again = subprocess.run(migrate, capture_output=True, text=True, timeout=300)
        assert "copied 0 files (0 bytes), 3 already there" in again.stdout, again.stdout + again.stderr
        shutil.rmtree(os.path.join(s.dir, "data", "artifacts"))  # nothing is read from the disk any more
        s = Server("--artifacts-destination", dest, directory=s.dir)
        assert artifact_files(s.url, rid) == {rel: len(d) for rel, d in files.items()}
        for rel, data in files.items():
            assert artifact_bytes(s.url, rid, rel) == data, rel
        bad = subprocess.run([TALLY, "artifacts", "migrate", "--from", "/nonexistent", "--to", dest], capture_output=True, text=True)
        assert bad.returncode != 0 and "No artifact directory at /nonexistent" in bad.stderr, bad.stderr
    finally:
        s.stop()


def test_an_s3_outage_answers_503_and_the_artifacts_come_back():
    """S3 gone for a while (its process killed): uploads and downloads answer 503 TEMPORARILY_UNAVAILABLE — not a
    500, not a hang — and once it is back on the same address every artifact written before is served again and new
    ones are taken."""
    script = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "scripts", "s3-test")
    d = tempfile.mkdtemp(prefix="tally-s3-outage-")
    env = {**os.environ, "S3_TEST_PORT": str(free_port())}
    endpoint = subprocess.run([script, "start", d + "/s3"], env=env, capture_output=True, text=True, check=True).stdout.strip()
    s = Server("--artifacts-destination", "s3://tally/outage", env={"MLFLOW_S3_ENDPOINT_URL": endpoint})
    base = s.url + "/api/2.0/mlflow-artifacts/artifacts/1/r/artifacts/"
    try:
        assert requests.put(base + "before.txt", data=b"before", timeout=60).status_code == 200
        subprocess.run([script, "kill", d + "/s3"], check=True)
        for r in [requests.put(base + "during.txt", data=b"during", timeout=120), requests.get(base + "before.txt", timeout=120)]:
            assert r.status_code == 503 and r.json()["error_code"] == "TEMPORARILY_UNAVAILABLE" and "S3" in r.json()["message"], r.text
        subprocess.run([script, "start", d + "/s3"], env=env, capture_output=True, check=True)
        assert requests.get(base + "before.txt", timeout=60).content == b"before"
        assert requests.put(base + "after.txt", data=b"after", timeout=60).status_code == 200
        listing = requests.get(s.url + "/api/2.0/mlflow-artifacts/artifacts", params={"path": "1/r/artifacts"}, timeout=60).json()
        assert sorted(f["path"] for f in listing["files"]) == ["after.txt", "before.txt"], listing
    finally:
        s.stop()
        subprocess.run([script, "stop", d + "/s3"])
        shutil.rmtree(d, ignore_errors=True)



def test_large_files_go_up_in_parts_and_down_by_presigned_urls(monkeypatch):
    """With S3 behind it the server offers what MLflow's does (server-info): the real client uploads a large file in
    parts straight to the bucket through presigned URLs (the server only starts and completes the upload) and
    downloads by ranged GETs of a presigned URL; small files still go through the proxy. MLflow's errors for what a
    client may get wrong, and the experiment's permissions on each request."""
    small_parts(monkeypatch)
    dest = s3_prefix("parts")
    prefix = dest[len("s3://tally/"):]
    s = Server("--artifacts-destination", dest, "--access-log")
    tree = tempfile.mkdtemp(prefix="tally-s3-parts-")
    try:
        info = requests.get(s.url + "/api/3.0/mlflow/server-info", timeout=60).json()
        assert info["multipart_uploads_enabled"] is True and info["multipart_downloads_enabled"] is True, info
        c = MlflowClient(s.url)
        eid = c.create_experiment("s3-parts")
        rid = c.create_run(eid).info.run_id
        files = {"big.bin": os.urandom(12 * 1024 * 1024 + 7), "small.txt": b"tiny"}
        for name, data in files.items():
            with open(os.path.join(tree, name), "wb") as f:
                f.write(data)
        c.log_artifacts(rid, tree, "m")
        keys = bucket_keys(prefix)
        assert {k: v for k, v in keys.items() if k.startswith(f"{eid}/{rid}/")} == {f"{eid}/{rid}/artifacts/m/{n}": len(d) for n, d in files.items()}
        obj = boto3.client("s3", endpoint_url=ENDPOINT, region_name="us-east-1").get_object(Bucket="tally", Key=f"{prefix}/{eid}/{rid}/artifacts/m/big.bin")
        assert hashlib.sha256(obj["Body"].read()).digest() == hashlib.sha256(files["big.bin"]).digest()
        run = f"/api/2.0/mlflow-artifacts/%s/{eid}/{rid}/artifacts/m"
        assert logged(s, "POST", run % 'mpu/create', 200) and logged(s, "POST", run % 'mpu/complete', 200)
        assert not logged(s, "PUT", f"{run % 'artifacts'}/big.bin") and logged(s, "PUT", f"{run % 'artifacts'}/small.txt", 200)
        back = c.download_artifacts(rid, "m", tempfile.mkdtemp(prefix="tally-s3-parts-back-"))
        for name, data in files.items():
            assert open(os.path.join(back, name), "rb").read() == data, name
        assert logged(s, "GET", f"{run % 'presigned'}/big.bin", 200) and not logged(s, "GET", f"{run % 'artifacts'}/big.bin")

        # What a client may get wrong, answered in MLflow's error JSON.
        api = s.url + "/api/2.0/mlflow-artifacts"

        def post(path, body):
            return requests.post(api + path, json=body, timeout=60)

        for path, body, status, code, fragment in [
            (f"/mpu/create/{eid}/{rid}/artifacts", {"num_parts": 2}, 400, "INVALID_PARAMETER_VALUE", "'path'"),
            (f"/mpu/create/{eid}/{rid}/artifacts", {"path": "/tmp/a.bin", "num_parts": 0}, 400, "INVALID_PARAMETER_VALUE", "num_parts"),
            (f"/mpu/create/{eid}/{rid}/artifacts", {"path": "/tmp/a.bin", "num_parts": 10001}, 400, "INVALID_PARAMETER_VALUE", "num_parts"),
            (f"/mpu/create/{eid}/{rid}/artifacts", {"path": "/tmp/..", "num_parts": 1}, 400, "INVALID_PARAMETER_VALUE", "filename"),
            (f"/mpu/create/{eid}/{rid}/artifacts/m/big.bin", {"path": "/tmp/a.bin", "num_parts": 1}, 400, "INVALID_PARAMETER_VALUE", "Invalid path"),
            (f"/mpu/create/{eid}/%2e%2e/%2e%2e/x", {"path": "/tmp/a.bin", "num_parts": 1}, 400, "INVALID_PARAMETER_VALUE", "Invalid path"),
            (f"/mpu/complete/{eid}/{rid}/artifacts", {"path": "a.bin", "upload_id": "nope", "parts": [{"part_number": 1, "etag": "e"}]},
             404, "RESOURCE_DOES_NOT_EXIST", "NoSuchUpload"),
            (f"/mpu/complete/{eid}/{rid}/artifacts", {"path": "a.bin", "upload_id": "u", "parts": []}, 400, "INVALID_PARAMETER_VALUE", "'parts'"),
            (f"/mpu/complete/{eid}/{rid}/artifacts", {"path": "a.bin", "upload_id": "u", "parts": [{"part_number": "x", "etag": "e"}]},
             400, "INVALID_PARAMETER_VALUE", "part_number"),
            (f"/mpu/abort/{eid}/{rid}/artifacts", {"path": "a.bin", "upload_id": "nope"}, 404, "RESOURCE_DOES_NOT_EXIST", "NoSuchUpload"),
        ]:
            r = post(path, body)
            assert r.status_code == status and r.json()["error_code"] == code and fragment in r.json()["message"], (path, body, r.text)
        r = requests.get(f"{api}/presigned/{eid}/{rid}/artifacts/m/none.bin", timeout=60)
        assert r.status_code == 404 and r.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST", r.text
        # A part the client never sent: S3 refuses the completion, which is the client's mistake (S3 answers 400
        # InvalidPart; SeaweedFS, which keeps no upload without parts, 404 NoSuchUpload), and the upload is aborted.
        start = post(f"/mpu/create/{eid}/{rid}/artifacts", {"path": "/tmp/late.bin", "num_parts": 1}).json()
        assert [p["part_number"] for p in start["credentials"]] == [1] and "X-Amz-Signature=" in start["credentials"][0]["url"], start
        r = post(f"/mpu/complete/{eid}/{rid}/artifacts", {"path": "/tmp/late.bin", "upload_id": start["upload_id"],
                                                          "parts": [{"part_number": 1, "etag": '"0123456789abcdef0123456789abcdef"'}]})
        assert (r.status_code, r.json()["error_code"]) in [(400, "INVALID_PARAMETER_VALUE"), (404, "RESOURCE_DOES_NOT_EXIST")], r.text
        assert post(f"/mpu/abort/{eid}/{rid}/artifacts", {"path": "/tmp/late.bin", "upload_id": start["upload_id"]}).status_code == 200
        assert f"{eid}/{rid}/artifacts/late.bin" not in bucket_keys(prefix)
    finally:
        s.stop()
        shutil.rmtree(tree, ignore_errors=True)


def test_permissions_guard_uploads_in_parts_and_presigned_downloads(monkeypatch):
    """Basic auth: starting, completing or aborting an upload needs EDIT on the experiment, as a proxied upload
    does; a presigned download needs READ."""
    dest = s3_prefix("parts-auth")
    s = Server("--artifacts-destination", dest, "--auth", "basic",
               env={"MLFLOW_AUTH_ADMIN_USERNAME": "admin", "MLFLOW_AUTH_ADMIN_PASSWORD": "admin-password-1"})
    try:
        admin = ("admin", "admin-password-1")
        api = s.url + "/api/2.0/mlflow"
        assert requests.post(api + "/users/create", json={"username": "reader", "password": "reader-password-1"}, auth=admin, timeout=60).ok
        eid = requests.post(api + "/experiments/create", json={"name": "guarded"}, auth=admin, timeout=60).json()["experiment_id"]
        assert requests.post(s.url + "/api/3.0/mlflow/users/permissions/grant", auth=admin, timeout=60,
                             json={"username": "reader", "resource_type": "experiment", "resource_id": eid, "permission": "READ"}).ok
        base = s.url + "/api/2.0/mlflow-artifacts"
        assert requests.put(f"{base}/artifacts/{eid}/r/artifacts/a.txt", data=b"a", auth=admin, timeout=60).ok
        reader = ("reader", "reader-password-1")
        for path in ["mpu/create", "mpu/complete", "mpu/abort"]:
            r = requests.post(f"{base}/{path}/{eid}/r/artifacts", json={"path": "x.bin", "num_parts": 1, "upload_id": "u",
                                                                        "parts": [{"part_number": 1, "etag": "e"}]}, auth=reader, timeout=60)
            assert r.status_code == 403 and r.json()["error_code"] == "PERMISSION_DENIED", (path, r.text)
            assert requests.post(f"{base}/{path}/{eid}/r/artifacts", json={}, timeout=60).status_code == 401
        r = requests.get(f"{base}/presigned/{eid}/r/artifacts/a.txt", auth=reader, timeout=60)
        assert r.status_code == 200 and r.json()["file_size"] == 1 and requests.get(r.json()["url"], timeout=60).content == b"a", r.text
        assert requests.get(f"{base}/presigned/{eid}/r/artifacts/a.txt", timeout=60).status_code == 401
        # A run's own presigned URLs: an upload URL needs EDIT (checked once the run is known), a download URL READ.
        rid = requests.post(api + "/runs/create", json={"experiment_id": eid}, auth=admin, timeout=60).json()["run"]["info"]["run_id"]
        r = requests.post(api + "/artifacts/presigned-upload-url", json={"run_id": rid, "path": "a.txt"}, auth=reader, timeout=60)
        assert r.status_code == 403 and r.json()["error_code"] == "PERMISSION_DENIED", r.text
        r = requests.post(api + "/artifacts/presigned-download-url", json={"run_id": rid, "path": "a.txt"}, auth=reader, timeout=60)
        assert r.status_code == 400 and "proxied artifact storage" in r.json()["message"], r.text  # allowed, and then MLflow's refusal
        ok = requests.post(f"{base}/mpu/create/{eid}/r/artifacts", json={"path": "x.bin", "num_parts": 1}, auth=admin, timeout=60)
        assert ok.status_code == 200, ok.text
        assert requests.post(f"{base}/mpu/abort/{eid}/r/artifacts", json={"path": "x.bin", "upload_id": ok.json()["upload_id"]}, auth=admin,
                             timeout=60).status_code == 200
    finally:
        s.stop()


def test_presigned_download_lifetime_follows_mlflows_variable():
    """MLFLOW_PRESIGNED_DOWNLOAD_URL_TTL_SECONDS, as MLflow's server reads it: the URLs' X-Amz-Expires; a value S3
    would refuse when the URL is used stops the server with a clear error instead."""
    s = Server("--artifacts-destination", s3_prefix("ttl"), env={"MLFLOW_PRESIGNED_DOWNLOAD_URL_TTL_SECONDS": "120"})
    try:
        base = s.url + "/api/2.0/mlflow-artifacts"
        assert requests.put(base + "/artifacts/0/r/artifacts/a.txt", data=b"a", timeout=60).ok
        url = requests.get(base + "/presigned/0/r/artifacts/a.txt", timeout=60).json()["url"]
        assert "X-Amz-Expires=120&" in url and requests.get(url, timeout=60).content == b"a", url
    finally:
        s.stop()
    for bad in ["0", "604801", "soon"]:
        out = start_failure("--artifacts-destination", s3_prefix("ttl"), env={**os.environ, "MLFLOW_PRESIGNED_DOWNLOAD_URL_TTL_SECONDS": bad})
        assert "MLFLOW_PRESIGNED_DOWNLOAD_URL_TTL_SECONDS is '%s'" % bad in out, out


def test_without_presigned_urls_every_byte_goes_through_the_server(monkeypatch):
    """`--no-presigned-artifact-urls` (a bucket clients cannot reach): server-info offers nothing, and a client told
    to use parts and presigned downloads anyway (MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD/DOWNLOAD) gets MLflow's 501
    NOT_IMPLEMENTED and falls back to the proxy, as from a store on disk."""
    small_parts(monkeypatch)
    monkeypatch.setenv("MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD", "true")
    monkeypatch.setenv("MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD", "true")
    dest = s3_prefix("no-presign")
    s = Server("--artifacts-destination", dest, "--no-presigned-artifact-urls", "--access-log")
    try:
        info = requests.get(s.url + "/api/3.0/mlflow/server-info", timeout=60).json()
        assert info["multipart_uploads_enabled"] is False and info["multipart_downloads_enabled"] is False, info
        expect_proxy_fallback(s)
        assert bucket_keys(dest[len("s3://tally/"):]), "the files are in the bucket, sent by the server"
    finally:
        s.stop()



def test_presigned_urls_of_a_runs_own_s3_root_match_mlflow():
    """`artifacts/presigned-upload-url` and `presigned-download-url` (AWS's SageMaker client): for a run whose
    artifact root is `s3://` itself, a URL the client PUTs to (with the headers answered) and one it GETs from, as a
    real `mlflow server` answers them; MLflow's refusals for a proxied root, a root on disk and bad requests."""
    import uuid
    # Tally on a store on disk (a client made for the request) and on S3 (the store's own client reused).
    tally, tally_s3, oracle = Server(), Server("--artifacts-destination", s3_prefix("store")), MlflowServer()
    local_root = tempfile.mkdtemp(prefix="tally-local-root-")
    try:
        answers = {}
        for name, url in (("tally", tally.url), ("tally-s3", tally_s3.url), ("mlflow", oracle.url)):
            api = url + "/api/2.0/mlflow"
            c = MlflowClient(url)
            direct = c.create_experiment("direct-" + uuid.uuid4().hex[:8], artifact_location=s3_prefix("direct"))
            run = c.create_run(direct).info.run_id
            up = requests.post(api + "/artifacts/presigned-upload-url", json={"run_id": run, "path": "sub/data.json"}, timeout=60)
            assert up.status_code == 200, (name, up.text)
            put = requests.put(up.json()["presigned_url"], data=b'{"a": 1}', headers=up.json()["headers"], timeout=60)
            assert put.status_code == 200, (name, put.text)
            down = requests.post(api + "/artifacts/presigned-download-url", json={"run_id": run, "path": "sub/data.json", "expiration": 60},
                                 timeout=60)
            assert down.status_code == 200, (name, down.text)
            got = requests.get(down.json()["presigned_url"], timeout=60)
            assert got.content == b'{"a": 1}' and "attachment" in got.headers.get("Content-Disposition", ""), (name, got.headers)
            assert [f.path for f in c.list_artifacts(run, "sub")] == ["sub/data.json"]  # where the client's own listing finds it
            proxied = c.create_run("0").info.run_id
            on_disk = c.create_run(c.create_experiment("disk-" + uuid.uuid4().hex[:8], artifact_location=local_root)).info.run_id
            model = c.create_logged_model(experiment_id=direct).model_id  # a logged model's root in S3 takes uploads too
            rows = [(sorted(up.json()), sorted(down.json()), "X-Amz-Expires=60&" in down.json()["presigned_url"], down.json()["file_size"])]
            for path, body in [("upload-url", {"run_id": proxied, "path": "a.txt"}), ("download-url", {"run_id": proxied, "path": "a.txt"}),
                               ("upload-url", {"run_id": run, "model_id": "m-1", "path": "a.txt"}), ("upload-url", {"path": "a.txt"}),
                               ("download-url", {"run_id": run, "path": "a.txt", "expiration": 0}),
                               ("download-url", {"run_id": run, "path": "none.txt"}), ("upload-url", {"run_id": run, "path": "../x"}),
                               ("upload-url", {"run_id": "0" * 32, "path": "a.txt"}), ("upload-url", {"run_id": on_disk, "path": "a.txt"}),
                               ("download-url", {"run_id": on_disk, "path": "a.txt"}), ("upload-url", {"model_id": model, "path": "w.bin"})]:
                r = requests.post(api + "/artifacts/presigned-" + path, json=body, timeout=60)
                j = r.json()
                rows.append((path, sorted(body), r.status_code, j.get("error_code"), j.get("message", "").replace(proxied, "<run>")))
            answers[name] = rows
        for ours, theirs in [pair for name in ("tally", "tally-s3") for pair in zip(answers[name], answers["mlflow"])]:
            if ours[-1] != theirs[-1] and ours[:-1] == theirs[:-1] and ours[2] in (404,):  # 404 messages name what is missing their own way
                continue
            assert ours == theirs, (ours, theirs)
    finally:
        tally.stop()
        tally_s3.stop()
        oracle.stop()
        shutil.rmtree(local_root, ignore_errors=True)
