// Calls to the MLflow API (/ajax-api/2.0/mlflow) and Tally's native API. Errors carry MLflow's message.
const MLFLOW = "/ajax-api/2.0/mlflow";

export class ApiError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

async function call(method, path, body) {
  const init = { method, headers: {} };
  if (body !== undefined) { init.body = JSON.stringify(body); init.headers["Content-Type"] = "application/json"; }
  const r = await fetch(path, init);
  const text = await r.text();
  let json = {};
  try { json = text ? JSON.parse(text) : {}; } catch { /* not JSON */ }
  if (!r.ok) throw new ApiError(r.status, json.error_code || String(r.status), json.message || text || r.statusText);
  return json;
}

export const mlflow = {
  get: (path, params) => call("GET", MLFLOW + path + (params ? "?" + new URLSearchParams(params) : "")),
  post: (path, body) => call("POST", MLFLOW + path, body),
};

/// Compare in the binary form: JSON metadata plus Float64 steps and Float32 values per series (docs/api.md).
export async function compare(query) {
  const r = await fetch("/api/tally/v1/compare", {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ ...query, format: "binary" }),
  });
  const buf = await r.arrayBuffer();
  if (!r.ok) {
    let j = {};
    try { j = JSON.parse(new TextDecoder().decode(buf)); } catch { /* ignore */ }
    throw new ApiError(r.status, j.error_code || String(r.status), j.message || r.statusText);
  }
  const view = new DataView(buf);
  const jsonLength = view.getUint32(8, true);
  const meta = JSON.parse(new TextDecoder().decode(new Uint8Array(buf, 12, jsonLength)));
  let at = Math.ceil((12 + jsonLength) / 8) * 8;
  for (const s of meta.series) {
    const n = s.points;
    s.steps = new Float64Array(buf, at, n);
    s.values = new Float32Array(buf, at + 8 * n, n);
    at = Math.ceil((at + 12 * n) / 8) * 8;
  }
  return meta;
}

/// A scoreboard (docs/api.md): keys × runs with ranks, group means and baseline deltas.
export async function scoreboard(query) {
  return call("POST", "/api/tally/v1/scoreboard", query);
}
