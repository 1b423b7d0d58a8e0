"""What the benchmark scripts share: a free loopback port, starting and stopping a server on it, JSON calls to it."""
import json, os, shutil, signal, socket, statistics, subprocess, sys, time, urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(cmd, url):
    """Starts `cmd` and returns the process once `url`/health answers (killed, and an error raised, after 120 s)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url + "/health", timeout=1).read()
            return proc
        except Exception:
            if proc.poll() is not None:
                break
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("server did not start: " + " ".join(cmd))


def start_tally(binary, data_dir):
    """A `tally server` on a free port with its stores in `data_dir`: (process, url)."""
    url = "http://127.0.0.1:%d" % free_port()
    port = url.rsplit(":", 1)[1]
    return start([binary, "server", "--port", port, "--data-dir", os.path.join(data_dir, "data")], url), url


def start_mlflow(db, artifacts):
    """A real `mlflow server` from this venv (SQLite at `db`, proxied artifacts in `artifacts`, one worker) on a free
    port: (process, url)."""
    url = "http://127.0.0.1:%d" % free_port()
    port = url.rsplit(":", 1)[1]
    return start([sys.executable, "-m", "mlflow", "server", "--backend-store-uri", "sqlite:///" + db, "--host", "127.0.0.1",
                  "--port", port, "--workers", "1", "--artifacts-destination", artifacts], url), url


def start_server(server, backend, work, extra=()):
    """A server for a benchmark: `server` a `tally` binary (its stores in `work`, its metadata at `backend` unless that
    is `-`, `extra` more arguments) or `mlflow` (a real `mlflow server` from this venv on `backend`, one worker unless
    `extra` says `--workers N`, pricing spans from its bundled model catalog); `--health` waited for, its output in `work`/log: (process, url)."""
    url = "http://127.0.0.1:%d" % free_port()
    port = url.rsplit(":", 1)[1]
    if server == "mlflow":
        cmd = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", port, "--workers", "1",
               "--backend-store-uri", backend, "--artifacts-destination", os.path.join(work, "artifacts"), *extra]
    else:
        cmd = [os.path.abspath(server), "server", "--host", "127.0.0.1", "--port", port, "--data-dir", os.path.join(work, "data")]
        if backend != "-":
            cmd += ["--backend-store-uri", backend]
        cmd += list(extra)
    proc = subprocess.Popen(cmd, stdout=open(os.path.join(work, "log"), "w"), stderr=subprocess.STDOUT, cwd=work,
                            env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "MLFLOW_MODEL_CATALOG_URI": ""})
    for _ in range(1800):
        try:
            urllib.request.urlopen(url + "/health", timeout=1).read()
            return proc, url
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("server did not start: " + " ".join(cmd) + "; see " + os.path.join(work, "log"))


def call(url, method, path, body=None, timeout=600):
    """A JSON request (`body`, when given) to the server at `url`; its JSON answer (`{}` for an empty one)."""
    req = urllib.request.Request(url + path, method=method, data=None if body is None else json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read() or b"{}")


def median_ms(f, n):
    """The median of `n` calls of `f`, in milliseconds."""
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        f()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def stop_server(proc, work):
    """Stops a server `start_server` started and removes its directory."""
    proc.terminate()
    proc.wait(timeout=30)
    shutil.rmtree(work, ignore_errors=True)


def server_rss(proc):
    """(VmRSS, VmHWM) in MB of the server `proc` started: its own, or for `mlflow server` the largest of its children
    and grandchildren (the worker that serves the API)."""
    def rss(pid):
        fields = dict(line.split(":", 1) for line in open(f"/proc/{pid}/status") if ":" in line)
        return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024
    pids = [proc.pid] + [int(c) for c in open(f"/proc/{proc.pid}/task/{proc.pid}/children").read().split()]
    grand = [int(c) for p in pids[1:] for c in open(f"/proc/{p}/task/{p}/children").read().split()]
    return max(rss(p) for p in pids + grand)


def stop(proc):
    """SIGTERM (a graceful shutdown) and wait."""
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)


def read_curves(path):
    """[(name, width, steps, timestamps, values)] from a TCURVES1 file (scripts/gen-training-curves.py); width is
    the logged value's (4: float32, 8: float64)."""
    import struct
    import numpy as np
    data = open(path, "rb").read()
    assert data[:8] == b"TCURVES1", path
    (count,) = struct.unpack_from("<I", data, 8)
    at, out = 12, []
    for _ in range(count):
        (length,) = struct.unpack_from("<H", data, at)
        name = data[at + 2:at + 2 + length].decode()
        at += 2 + length
        width, n = struct.unpack_from("<BQ", data, at)
        at += 9
        cols = []
        for dtype in ("<i8", "<i8", "<f8"):
            cols.append(np.frombuffer(data, dtype, n, at))
            at += 8 * n
        out.append((name, width, *cols))
    return out


def pg(dir_, *sql):
    """Runs SQL as the superuser of the `scripts/pg-test` cluster in `dir_` (as the postgres user when this runs as root)."""
    port = open(os.path.join(dir_, "port")).read().strip()
    binary = sorted(d for d in os.listdir("/usr/lib/postgresql"))[-1]
    cmd = [f"/usr/lib/postgresql/{binary}/bin/psql", "-h", dir_, "-p", port, "-U", "postgres", "-d", "postgres", "-q", "-v", "ON_ERROR_STOP=1"]
    for s in sql:
        cmd += ["-c", s]
    if os.getuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--"] + cmd
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


def database(dir_, base_uri, name, relaxed=False):
    """A fresh database of the cluster in `dir_`, owned by `tally` (`base_uri` names the cluster's `tally` database);
    `relaxed`: commits not waiting for their WAL flush (synchronous_commit off), the guarantee SQLite gives in WAL mode
    with synchronous=NORMAL (a crash may undo the last commits, never corrupts). Its URI."""
    pg(dir_, f"DROP DATABASE IF EXISTS {name}", f"CREATE DATABASE {name} OWNER tally")
    if relaxed:
        pg(dir_, f"ALTER DATABASE {name} SET synchronous_commit = off")
    return base_uri.rsplit("/", 1)[0] + "/" + name
