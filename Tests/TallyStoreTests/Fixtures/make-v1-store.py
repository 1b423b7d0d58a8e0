# Writes a store fixture: make-v1-store.py TALLY_BINARY DATA_DIR, then copy DATA_DIR/metrics (without LOCK) to
# Fixtures/vN-store and put the two printed run ids in PackTests.fixtures. v1-store: the last version-1 build;
# v2-store: 705f083 (format 2); v3-store: 75a405e (format 3); v4-store: bb1ab70 (format 4).
import json, sys, urllib.request, subprocess, time, os, signal, socket
BIN, DATA = sys.argv[1], sys.argv[2]
def free():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p
def start():
    port = free()
    p = subprocess.Popen([BIN, "server", "--port", str(port), "--data-dir", DATA], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health"); return p, port
        except Exception: time.sleep(0.1)
    raise SystemExit("no server")
def post(port, path, body):
    req = urllib.request.Request(f"http://127.0.0.1:{port}/api/2.0/mlflow/{path}", json.dumps(body).encode(), {"Content-Type": "application/json"})
    return json.load(urllib.request.urlopen(req))
def val(key, step):
    # exactly representable values so the test can recompute them: k/1024
    return ((hash_key(key) * 7 + step * 13) % 2048) / 1024.0
def hash_key(k): return sum(k.encode()) 
p, port = start()
r1 = post(port, "runs/create", {"experiment_id": "0", "start_time": 1})["run"]["info"]["run_id"]
r2 = post(port, "runs/create", {"experiment_id": "0", "start_time": 1})["run"]["info"]["run_id"]
ms = []
for s in range(3000): ms.append({"key": "loss", "value": val("loss", s), "timestamp": 1_700_000_000_000 + s * 250, "step": s})
ms.append({"key": "acc", "value": val("acc", 7), "timestamp": 1_700_000_000_000, "step": 7})
for i in range(50): ms.append({"key": f"suite/task_{i:02d}/acc", "value": val(f"suite/task_{i:02d}/acc", 100), "timestamp": 1_700_000_001_000, "step": 100})
for i in range(0, len(ms), 1000): post(port, "runs/log-batch", {"run_id": r1, "metrics": ms[i:i+1000]})
post(port, "runs/log-batch", {"run_id": r2, "metrics": [{"key": "x", "value": 1.5, "timestamp": 5, "step": 1}]})
p.send_signal(signal.SIGTERM); p.wait()
p, port = start()
post(port, "runs/log-batch", {"run_id": r2, "metrics": [{"key": "x", "value": 2.5, "timestamp": 6, "step": 2}, {"key": "y", "value": -0.25, "timestamp": 6, "step": 2}]})
p.send_signal(signal.SIGTERM); p.wait()
print(r1, r2)
