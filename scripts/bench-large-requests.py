#!/usr/bin/env python3
"""Times requests that each carry many rows, against one `tally server`.

    scripts/bench-large-requests.py path/to/tally [postgresql://…/db | -] [--n N]

Starts `tally server` on a free port (a scratch data directory under /tmp; `-`, the default, is the embedded SQLite
store), then prints the seconds each request took, one line per request:

- `model-versions/create` with N tags;
- `logged-models/{id}/params` and `logged-models/{id}/tags` with N entries each;
- `runs/log-inputs` with N datasets (each with a tag) to one run;
- `runs/search` over 7·N experiment ids (a body under 1 MB at N = 10,000) (the existing experiment, then ids that do not exist);
- `runs/search` ordered by N/10 keys.

Then the server's peak RSS (VmHWM). Every request is checked for a 200; the version's tags, the model's params and the run's inputs are read back and
counted."""
import json, os, shutil, socket, subprocess, sys, tempfile, time, urllib.error, urllib.request

args = [a for a in sys.argv[1:] if not a.startswith("--")]
n = int(sys.argv[sys.argv.index("--n") + 1]) if "--n" in sys.argv else 10_000
if "--n" in sys.argv: args.remove(str(n))
bin, uri = args[0], (args[1] if len(args) > 1 else "-")
s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
d = tempfile.mkdtemp(prefix="tally-large-")
p = subprocess.Popen([bin, "server", "--host", "127.0.0.1", "--port", str(port), "--data-dir", d]
                     + (["--backend-store-uri", uri] if uri != "-" else []), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
base = f"http://127.0.0.1:{port}/api/2.0/mlflow/"


def call(path, body=None, method="POST"):
    data = None if body is None else json.dumps(body).encode()
    r = urllib.request.Request(base + path, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        return json.loads(urllib.request.urlopen(r, timeout=900).read() or b"{}")
    except urllib.error.HTTPError as e:
        sys.exit(f"{path}: HTTP {e.code} {e.read()[:300]!r}")


def peak_rss_mb():
    """The server's peak resident memory so far (VmHWM), MB."""
    for line in open(f"/proc/{p.pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def timed(label, path, body, method="POST"):
    t = time.time(); out = call(path, body, method); print(f"{label}: {time.time() - t:.2f} s", flush=True); return out


try:
    for _ in range(300):
        try: urllib.request.urlopen(base + "experiments/search?max_results=1", timeout=5); break
        except Exception: time.sleep(0.1)
    e = call("experiments/create", {"name": "large"})["experiment_id"]
    run = call("runs/create", {"experiment_id": e})["run"]["info"]["run_id"]
    call("registered-models/create", {"name": "big"})
    src = call(f"runs/get?run_id={run}", method="GET")["run"]["info"]["artifact_uri"] + "/model"
    v = timed(f"model-versions/create, {n} tags", "model-versions/create",
              {"name": "big", "source": src, "run_id": run, "tags": [{"key": f"t{i}", "value": "v"} for i in range(n)]})
    got = call(f"model-versions/get?name=big&version={v['model_version']['version']}", method="GET")["model_version"]
    assert len(got.get("tags", [])) == n, len(got.get("tags", []))
    m = call("logged-models", {"experiment_id": e, "source_run_id": run})["model"]["info"]["model_id"]
    timed(f"logged-models params, {n}", f"logged-models/{m}/params", {"model_id": m, "params": [{"key": f"p{i}", "value": "v"} for i in range(n)]})
    timed(f"logged-models tags, {n}", f"logged-models/{m}/tags", {"model_id": m, "tags": [{"key": f"t{i}", "value": "v"} for i in range(n)]},
          method="PATCH")
    lm = call(f"logged-models/{m}", method="GET")["model"]
    assert len(lm["data"]["params"]) == n and len(lm["info"]["tags"]) == n
    timed(f"runs/log-inputs, {n} datasets", "runs/log-inputs", {"run_id": run, "datasets": [
        {"dataset": {"name": f"d{i}", "digest": f"{i:08x}", "source_type": "local", "source": f"/data/{i}"},
         "tags": [{"key": "mlflow.data.context", "value": "train"}]} for i in range(n)]})
    inputs = call(f"runs/get?run_id={run}", method="GET")["run"]["inputs"]["dataset_inputs"]
    assert len(inputs) == n, len(inputs)
    ids = [e] + [str(10_000_000 + i) for i in range(7 * n - 1)]
    found = timed(f"runs/search, {7 * n} experiment ids", "runs/search", {"experiment_ids": ids, "max_results": 10})
    assert len(found["runs"]) == 1
    timed(f"runs/search, {n // 10} order_by keys", "runs/search",
          {"experiment_ids": [e], "order_by": [f"params.p{i} DESC" for i in range(n // 10)], "max_results": 10})
    print(f"server peak RSS: {peak_rss_mb():.1f} MB", flush=True)
finally:
    p.terminate(); p.wait()
    shutil.rmtree(d, ignore_errors=True)
