"""The Run logger, the binary batch encoder and a compare helper (standard library only; numpy optional)."""
import http.client
import json
import os
import queue
import struct
import threading
import time
import urllib.parse
import uuid
from array import array

_HEADER = struct.Struct("<4sBBHII")
_SERIES = struct.Struct("<BBI")
_LITTLE = struct.pack("=H", 1) == struct.pack("<H", 1)


class TallyError(Exception):
    """A request the server refused (4xx), with MLflow's error code and message."""

    def __init__(self, status, code, message):
        super().__init__(f"{status} {code}: {message}")
        self.status, self.error_code, self.message = status, code, message


def _column(values, typecode):
    """Little-endian bytes of a sequence (array, list, or numpy array)."""
    if hasattr(values, "dtype"):  # numpy, without importing it
        return values.astype({"q": "<i8", "d": "<f8", "f": "<f4"}[typecode], copy=False).tobytes()
    a = values if isinstance(values, array) and values.typecode == typecode else array(typecode, values)
    if not _LITTLE:
        a = array(typecode, a)
        a.byteswap()
    return a.tobytes()


def encode_batch(series, batch_id=None, float32=False):
    """The binary body of POST /api/tally/v1/runs/{run_id}/metrics.

    series: iterable of (key, steps, timestamps, values); columns are sequences of equal length.
    """
    parts = []
    bid = (batch_id or "").encode()
    parts.append(struct.pack("<H", len(bid)) + bid)
    count = 0
    for key, steps, timestamps, values in series:
        k = key.encode()
        n = len(steps)
        if len(timestamps) != n or len(values) != n:
            raise ValueError(f"{key}: steps, timestamps and values differ in length")
        parts.append(struct.pack("<H", len(k)) + k + _SERIES.pack(4 if float32 else 8, 0, n))
        parts.append(_column(steps, "q"))
        parts.append(_column(timestamps, "q"))
        parts.append(_column(values, "f" if float32 else "d"))
        count += 1
    payload = b"".join(parts)
    return _HEADER.pack(b"TLYC", 1, 0, 0, len(payload), count) + payload


def _authorization():
    """The credentials MLflow's client sends, from the same variables: a token, else a user name and password."""
    token = os.environ.get("MLFLOW_TRACKING_TOKEN")
    if token:
        return "Bearer " + token
    user, password = os.environ.get("MLFLOW_TRACKING_USERNAME"), os.environ.get("MLFLOW_TRACKING_PASSWORD")
    if user and password is not None:
        import base64
        return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    return None


class _Connection:
    def __init__(self, url, timeout):
        u = urllib.parse.urlparse(url)
        self.host, self.port, self.base = u.hostname, u.port or 80, u.path.rstrip("/")
        self.timeout = timeout
        self.conn = None
        self.authorization = _authorization()
        self.retry_after = 0.0  # the last answer's Retry-After, seconds

    def request(self, method, path, body=None, content_type="application/json"):
        """(status, parsed JSON or None); reconnects once on a dropped keep-alive connection."""
        self.retry_after = 0.0
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                headers = {"Content-Type": content_type} if body is not None else {}
                if self.authorization:
                    headers["Authorization"] = self.authorization
                self.conn.request(method, self.base + path, body=body, headers=headers)
                r = self.conn.getresponse()
                data = r.read()
                try:
                    self.retry_after = float(r.getheader("Retry-After") or 0)
                except ValueError:
                    self.retry_after = 0.0
                try:
                    parsed = json.loads(data) if data else None
                except ValueError:
                    parsed = None
                return r.status, parsed
            except (http.client.HTTPException, ConnectionError, OSError):
                self.conn.close()
                self.conn = None
                if attempt == 1:
                    raise

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def _check(status, body):
    if status >= 400:
        body = body if isinstance(body, dict) else {}
        raise TallyError(status, body.get("error_code", "HTTP_%d" % status), body.get("message", ""))
    return body


class Run:
    """Logs metrics of one run through Tally's columnar API.

    Run(run_id=...) logs into an existing run (one created by mlflow, say); Run(experiment="name") creates a run in
    that experiment (created if missing) through the MLflow API. The tracking URI comes from `tracking_uri` or
    MLFLOW_TRACKING_URI; credentials, as MLflow's client takes them, from MLFLOW_TRACKING_TOKEN or
    MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD.
    """

    def __init__(self, run_id=None, experiment=None, tracking_uri=None, run_name=None, flush_points=50_000,
                 flush_interval=1.0, float32=False, max_retries=8, timeout=120):
        self.url = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or "http://127.0.0.1:5000"
        self._api = _Connection(self.url, timeout)
        self._created = run_id is None
        self.run_id = run_id or self._create_run(experiment, run_name)
        self.flush_points = flush_points
        self.flush_interval = flush_interval
        self.float32 = float32
        self.max_retries = max_retries
        self._frames = {}  # key tuple -> [steps, timestamps, [value arrays]]
        self._series = {}  # key -> [steps, timestamps, values] from log_series
        self._pending = 0
        self._client_id = uuid.uuid4().hex
        self._seq = 0
        self._error = None
        self._lock = threading.Lock()
        self._queue = queue.Queue(maxsize=4)
        self._sender = _Connection(self.url, timeout)
        self._thread = threading.Thread(target=self._send_loop, name="tally-sender", daemon=True)
        self._thread.start()
        self._last_flush = time.monotonic()
        self.points_sent = 0
        self._closed = False

    # MLflow API: runs and experiments

    def _create_run(self, experiment, run_name):
        exp_id = "0"
        if experiment is not None:
            status, body = self._api.request("GET", "/api/2.0/mlflow/experiments/get-by-name?experiment_name="
                                             + urllib.parse.quote(experiment))
            if status == 200:
                exp_id = body["experiment"]["experiment_id"]
            else:
                exp_id = _check(*self._api.request("POST", "/api/2.0/mlflow/experiments/create",
                                                    json.dumps({"name": experiment})))["experiment_id"]
        req = {"experiment_id": exp_id, "start_time": int(time.time() * 1000)}
        if run_name:
            req["run_name"] = run_name
        body = _check(*self._api.request("POST", "/api/2.0/mlflow/runs/create", json.dumps(req)))
        return body["run"]["info"]["run_id"]

    # Logging

    def log(self, step, timestamp=None, **metrics):
        """Buffers one value per metric at `step` (timestamp: Unix ms, default now)."""
        if self._error is not None:
            self._raise()
        keys = tuple(metrics)
        frame = self._frames.get(keys)
        if frame is None:
            frame = self._frames[keys] = [array("q"), array("q"), [array("d") for _ in keys]]
        frame[0].append(step)
        frame[1].append(int(time.time() * 1000) if timestamp is None else timestamp)
        for col, v in zip(frame[2], metrics.values()):
            col.append(v)
        self._pending += len(keys)
        if self._pending >= self.flush_points or time.monotonic() - self._last_flush > self.flush_interval:
            self._hand_off()

    def log_series(self, key, steps, values, timestamps=None):
        """Buffers whole columns of one metric (lists, arrays or numpy arrays)."""
        if self._error is not None:
            self._raise()
        n = len(steps)
        if timestamps is None:
            timestamps = array("q", [int(time.time() * 1000)]) * n
        if len(values) != n or len(timestamps) != n:
            raise ValueError("steps, values and timestamps must have the same length")
        self._series.setdefault(key, []).append((steps, timestamps, values))
        self._pending += n
        if self._pending >= self.flush_points:
            self._hand_off()

    def _hand_off(self):
        series = []
        for keys, (steps, ts, cols) in self._frames.items():
            for k, col in zip(keys, cols):
                series.append((k, steps, ts, col))
        for k, chunks in self._series.items():
            for steps, ts, values in chunks:
                series.append((k, steps, ts, values))
        self._frames, self._series, self._pending = {}, {}, 0
        self._last_flush = time.monotonic()
        if series:
            self._seq += 1
            self._queue.put((f"{self._client_id}-{self._seq}", series))

    def flush(self):
        """Sends everything buffered and waits until the server has it."""
        self._hand_off()
        self._queue.join()
        if self._error is not None:
            self._raise()

    def _raise(self):
        e, self._error = self._error, None
        raise e

    def _send_loop(self):
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                batch_id, series = item
                points = sum(len(s[1]) for s in series)
                body = encode_batch(series, batch_id, self.float32)
                self._post(body)
                self.points_sent += points
            except Exception as e:  # surfaced on the next log/flush/close
                self._error = e
            finally:
                self._queue.task_done()

    def _post(self, body):
        path = "/api/tally/v1/runs/%s/metrics" % urllib.parse.quote(self.run_id)
        delay = 0.1
        for attempt in range(self.max_retries + 1):
            try:
                status, parsed = self._sender.request("POST", path, body, "application/x-tally-columns")
            except (OSError, http.client.HTTPException):
                if attempt == self.max_retries:
                    raise
            else:
                if status < 400:
                    return parsed
                if status not in (408, 429, 500, 502, 503, 504) or attempt == self.max_retries:
                    _check(status, parsed)
            # Same batch id: the server stores a retried batch once. A 429 says when to come back.
            time.sleep(max(delay, min(self._sender.retry_after, 30.0)))
            delay = min(delay * 2, 5.0)

    def close(self, status="FINISHED"):
        """Flushes, stops the sender and, for a run this object created, ends it with `status` (None: leave it)."""
        if self._closed:
            return
        self._closed = True
        try:
            self.flush()
        finally:
            self._queue.put(None)
            self._thread.join()
            self._sender.close()
        if self._created and status:
            _check(*self._api.request("POST", "/api/2.0/mlflow/runs/update", json.dumps(
                {"run_id": self.run_id, "status": status, "end_time": int(time.time() * 1000)})))
        self._api.close()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.close("FAILED" if exc_type is not None else "FINISHED")
        return False


def compare(run_ids, metric_keys, tracking_uri=None, buckets=1000, mode="m4", start_step=None, end_step=None, max_points=None,
            align=True):
    """POST /api/tally/v1/compare: aligned, downsampled curves, summaries and differing params/tags (JSON).

    align: let the server snap the grid to its rollup pyramid (about `buckets` power-of-two-wide buckets; faster).
    """
    url = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or "http://127.0.0.1:5000"
    req = {"run_ids": list(run_ids), "metric_keys": list(metric_keys), "buckets": buckets, "mode": mode, "align": align}
    if start_step is not None or end_step is not None:
        req["start_step"], req["end_step"] = start_step, end_step
    if max_points is not None:
        req["max_points"] = max_points
    c = _Connection(url, 120)
    try:
        return _check(*c.request("POST", "/api/tally/v1/compare", json.dumps(req)))
    finally:
        c.close()
