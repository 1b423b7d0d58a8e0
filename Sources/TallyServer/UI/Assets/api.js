// Calls to the MLflow API (/ajax-api/2.0/mlflow, /ajax-api/3.0/mlflow) and Tally's native API. Errors carry
// MLflow's message. With access control on, the browser's session cookie authenticates every call; state-changing
// calls carry the session's CSRF token, and a 401 sends the user to the login page.
/// Where the server's paths start: "/", or the `--static-prefix` the UI is served under ("/mlflow/"), read from where
/// this script was loaded (`<base>static/api.js`). Leading slashes are one: the router takes `//` for `/`, and a path
/// starting with `//` would name another host.
export const BASE = new URL("..", import.meta.url).pathname.replace(/^\/+/, "/");
const MLFLOW = BASE + "ajax-api/2.0/mlflow";
const MLFLOW3 = BASE + "ajax-api/3.0/mlflow";
const TALLY = BASE + "api/tally/v1";

export class ApiError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

/// Who is signed in: `enabled` (access control on), `user` ({id, username, is_admin}) and the CSRF token.
export const session = { enabled: false, user: null, csrf: null, onUnauthenticated: () => {} };

/// Reads the session from the server (`enabled` false when access control is off).
export async function loadSession() {
  const r = await fetch(TALLY + "/session", { headers: { "X-Tally-UI": "1" } });
  const j = await r.json().catch(() => ({}));
  session.enabled = !!j.is_basic_auth;
  session.user = r.ok ? j.user || null : null;
  session.csrf = r.ok ? j.csrf || null : null;
  return session;
}

/// fetch with the CSRF token on state-changing methods; a 401 (session gone) calls `session.onUnauthenticated`.
async function send(method, path, init = {}) {
  init.method = method;
  init.headers = init.headers || {};
  init.headers["X-Tally-UI"] = "1";  // no browser password prompt: the UI has its own login page
  if (method !== "GET" && method !== "HEAD" && session.csrf) init.headers["X-CSRF-Token"] = session.csrf;
  const r = await fetch(path, init);
  if (r.status === 401 && session.enabled) session.onUnauthenticated();
  return r;
}

async function call(method, path, body) {
  const init = {};
  if (body !== undefined) { init.body = JSON.stringify(body); init.headers = { "Content-Type": "application/json" }; }
  const r = await send(method, path, init);
  const text = await r.text();
  let json = {};
  try { json = text ? JSON.parse(text) : {}; } catch { /* not JSON */ }
  if (!r.ok) throw new ApiError(r.status, json.error_code || String(r.status), json.message || text || r.statusText);
  return json;
}

const withQuery = (path, params) => path + (params ? "?" + new URLSearchParams(params) : "");

export const mlflow = {
  get: (path, params) => call("GET", withQuery(MLFLOW + path, params)),
  post: (path, body) => call("POST", MLFLOW + path, body),
  patch: (path, body) => call("PATCH", MLFLOW + path, body),
  del: (path, body) => call("DELETE", MLFLOW + path, body),
};

/// MLflow 3's endpoints: permissions, traces, evaluation datasets.
export const mlflow3 = {
  get: (path, params) => call("GET", withQuery(MLFLOW3 + path, params)),
  post: (path, body) => call("POST", MLFLOW3 + path, body),
  del: (path, body) => call("DELETE", MLFLOW3 + path, body),
  patch: (path, body) => call("PATCH", MLFLOW3 + path, body),
};

/// A trace's spans (`{"spans": [...]}`, the `traces.json` its client wrote to the artifact store), or `null` when none
/// were written (404).
export async function traceData(traceID) {
  const r = await send("GET", withQuery(MLFLOW3 + "/get-trace-artifact", { request_id: traceID }));
  const text = await r.text();
  if (r.status === 404) return null;
  let json = {};
  try { json = JSON.parse(text); } catch { if (r.ok) throw new ApiError(r.status, "INVALID_STATE", "The trace's spans are not JSON"); }
  if (!r.ok) throw new ApiError(r.status, json.error_code || String(r.status), json.message || text || r.statusText);
  return json;
}

/// Tally's own API (tokens, sessions, per-resource grants).
export const tally = {
  get: (path, params) => call("GET", withQuery(TALLY + path, params)),
  post: (path, body) => call("POST", TALLY + path, body),
  del: (path) => call("DELETE", TALLY + path),
};

/// Compare in the binary form: JSON metadata plus Float64 steps and Float32 values per series (docs/api.md).
export async function compare(query) {
  const r = await send("POST", TALLY + "/compare", {
    headers: { "Content-Type": "application/json" }, body: JSON.stringify({ ...query, format: "binary" }),
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
  return call("POST", TALLY + "/scoreboard", query);
}
