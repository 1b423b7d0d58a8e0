#!/usr/bin/env python3
"""Times one `runs/outputs` naming a large logged model (10k params, 10k tags) 100 times.

    scripts/bench-run-outputs.py path/to/tally [postgresql://…/db | -]

Starts `tally server` on a free port (a scratch data directory under /tmp), builds the model through the REST API,
then prints the seconds the one request took. `-` (default) is the embedded SQLite store."""
import json, os, socket, subprocess, sys, tempfile, time, urllib.request
bin, uri = sys.argv[1], (sys.argv[2] if len(sys.argv) > 2 else "-")
s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
d = tempfile.mkdtemp(prefix="tally-outputs-")
p = subprocess.Popen([bin, "server", "--host", "127.0.0.1", "--port", str(port), "--data-dir", d] + (["--backend-store-uri", uri] if uri != "-" else []), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
base = f"http://127.0.0.1:{port}/api/2.0/mlflow/"
def call(path, body, method="POST"):
    r = urllib.request.Request(base + path, data=json.dumps(body).encode(), method=method, headers={"Content-Type": "application/json"})
    return json.loads(urllib.request.urlopen(r, timeout=600).read() or b"{}")
for _ in range(100):
    try: call("experiments/search", {"max_results": 1}); break
    except Exception: time.sleep(0.1)
e = call("experiments/create", {"name": "o"})["experiment_id"]
run = call("runs/create", {"experiment_id": e})["run"]["info"]["run_id"]
m = call("logged-models", {"experiment_id": e, "source_run_id": run})["model"]["info"]["model_id"]
for i in range(0, 10000, 100):
    call(f"logged-models/{m}/params", {"model_id": m, "params": [{"key": f"p{j}", "value": "v"} for j in range(i, i + 100)]})
    call(f"logged-models/{m}/tags", {"model_id": m, "tags": [{"key": f"t{j}", "value": "v"} for j in range(i, i + 100)]}, method="PATCH")
t = time.time(); call("runs/outputs", {"run_id": run, "models": [{"model_id": m, "step": 0}] * 100}); print(bin, uri[:12], "100 entries: %.2f s" % (time.time() - t))
p.terminate(); p.wait()
import shutil; shutil.rmtree(d, ignore_errors=True)
