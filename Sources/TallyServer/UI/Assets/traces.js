// MLflow 3 traces in the UI: an experiment's traces (MLflow's search grammar, sortable columns, pages, delete) and one
// trace (its info, assessments, tags, metadata and the span tree as a waterfall, each span's inputs, outputs,
// attributes and events). The spans come from the trace's artifacts (get-trace-artifact), as MLflow's UI reads them.
import { mlflow, mlflow3, traceData } from "./api.js";
import { escape } from "./chart.js";
import { h, showError, kv, sortableHead } from "./dom.js";

const time = (rfc3339) => (rfc3339 ? rfc3339.replace("T", " ").replace(/(\.\d+)?Z$/, "") : "");
/// A protobuf duration ("0.250s") in milliseconds, `null` when absent.
const durationMs = (d) => (d ? Number(String(d).replace(/s$/, "")) * 1000 : null);
/// Milliseconds to three significant digits: `60.7 ms`, `0.531 ms`, `12.3 s`.
const ms = (v) => (v === null || v === undefined || Number.isNaN(v) ? "" : v < 1000 ? `${Number(v.toPrecision(3))} ms` : `${Number((v / 1000).toPrecision(3))} s`);
const userPairs = (o) => Object.entries(o || {}).filter(([k]) => !k.startsWith("mlflow.")).sort(([a], [b]) => (a < b ? -1 : 1));

// ---- An experiment's traces ------------------------------------------------------------------------------------

/// The traces of experiment `exp` (its `experiments/get` entity); `params` may carry a `filter` (the run page links
/// here with `trace.run_id = '…'`).
export async function tracesPage(main, exp, setCrumbs, params) {
  setCrumbs([["Experiments", "#/"], [exp.name, `#/experiments/${encodeURIComponent(exp.experiment_id)}`], ["Traces"]]);
  const state = { filter: params.get("filter") || "", order: "timestamp_ms DESC", tokens: [null], page: 0, traces: [], selected: new Set() };
  main.innerHTML = "";
  const box = h(`<section>
    <h1>${escape(exp.name)}: traces</h1>
    <div class="toolbar">
      <label for="trace-filter" class="sr-only">Filter traces</label>
      <input id="trace-filter" type="search" placeholder="tags.topic = 'a' AND trace.status = 'OK'" style="min-width:28rem">
      <button id="trace-apply">Filter</button>
      <button id="trace-delete" disabled>Delete selected</button>
      <span id="trace-count" class="muted"></span>
    </div>
    <p id="trace-overview" class="muted"></p>
    <div id="trace-error"></div>
    <div class="tablewrap"><table id="trace-table"><thead></thead><tbody></tbody></table></div>
    <div class="pager"><button id="trace-prev">Previous</button><span id="trace-page" class="muted"></span><button id="trace-next">Next</button></div>
  </section>`);
  main.append(box);
  box.querySelector("#trace-filter").value = state.filter;
  const table = box.querySelector("#trace-table");
  const del = box.querySelector("#trace-delete");
  const cols = [["", null], ["Trace", "request_id"], ["Name", "name"], ["State", "status"], ["Requested", "timestamp_ms"],
    ["Duration", "execution_time_ms"], ["Request", null], ["Response", null], ["Run", null], ["Assessments", null], ["Tags", null]];

  const render = () => {
    sortableHead(table, cols, state, load);
    table.tBodies[0].replaceChildren(...state.traces.map((t) => {
      const id = t.trace_id, tags = t.tags || {}, meta = t.trace_metadata || {};
      const run = meta["mlflow.sourceRun"];
      const valid = (t.assessments || []).filter((a) => a.valid !== false);
      const row = h(`<table><tr data-trace="${escape(id)}">
        <td><input type="checkbox" aria-label="Select ${escape(id)}" ${state.selected.has(id) ? "checked" : ""}></td>
        <td><a href="#/traces/${encodeURIComponent(id)}">${escape(id)}</a></td>
        <td>${escape(tags["mlflow.traceName"] || "")}</td>
        <td class="state-${escape(t.state ?? "")}">${escape(t.state ?? "")}</td>
        <td>${escape(time(t.request_time))}</td>
        <td class="num">${ms(durationMs(t.execution_duration))}</td>
        <td class="preview">${escape(t.request_preview || "")}</td>
        <td class="preview">${escape(t.response_preview || "")}</td>
        <td>${run ? `<a href="#/runs/${encodeURIComponent(run)}">${escape(run.slice(0, 8))}</a>` : ""}</td>
        <td>${valid.map((a) => `<span class="pill">${escape(a.issue ? "issue" : a.assessment_name ?? "")}: ${escape(assessmentValue(a))}</span>`).join(" ")}</td>
        <td>${userPairs(tags).map(([k, v]) => `<span class="pill">${escape(k)}=${escape(v)}</span>`).join(" ")}</td></tr></table>`).querySelector("tr");
      row.querySelector("input").onchange = (e) => {
        if (e.target.checked) state.selected.add(id); else state.selected.delete(id);
        del.disabled = state.selected.size === 0;
      };
      return row;
    }));
    box.querySelector("#trace-count").textContent = `${state.traces.length} traces on this page`;
    box.querySelector("#trace-page").textContent = `page ${state.page + 1}`;
    box.querySelector("#trace-prev").disabled = state.page === 0;
    box.querySelector("#trace-next").disabled = !state.tokens[state.page + 1];
    del.disabled = state.selected.size === 0;
  };

  const load = async () => {
    const err = box.querySelector("#trace-error");
    err.innerHTML = "";
    try {
      const body = { locations: [{ type: "MLFLOW_EXPERIMENT", mlflow_experiment: { experiment_id: exp.experiment_id } }], max_results: 100,
        order_by: [state.order] };
      if (state.filter) body.filter = state.filter;
      if (state.tokens[state.page]) body.page_token = state.tokens[state.page];
      const r = await mlflow3.post("/traces/search", body);
      state.selected.clear();  // what "Delete selected" deletes is always on screen
      state.traces = r.traces || [];
      state.tokens[state.page + 1] = r.next_page_token || null;
      render();
    } catch (e) { showError(err, e); }
  };
  box.querySelector("#trace-apply").onclick = () => {
    state.filter = box.querySelector("#trace-filter").value.trim(); state.tokens = [null]; state.page = 0; load();
  };
  box.querySelector("#trace-filter").addEventListener("keydown", (e) => { if (e.key === "Enter") box.querySelector("#trace-apply").click(); });
  box.querySelector("#trace-prev").onclick = () => { state.page--; load(); };
  box.querySelector("#trace-next").onclick = () => { state.page++; load(); };
  del.onclick = async () => {
    if (!confirm(`Delete ${state.selected.size} trace(s)?`)) return;
    try {
      await mlflow.post("/traces/delete-traces", { experiment_id: exp.experiment_id, request_ids: [...state.selected] });
      state.selected.clear(); load();
    } catch (e) { showError(box.querySelector("#trace-error"), e); }
  };
  overview(box.querySelector("#trace-overview"), exp.experiment_id);
  await load();
}

/// The experiment's traces in one line, from `traces/metrics` (what MLflow's trace overview charts): how many and how
/// many failed, sessions, latency, tokens and cost. A part with no data is left out; a failure leaves the line empty.
async function overview(where, experimentID) {
  const ask = (view, metric, aggregations, extra = {}) => mlflow3.post("/traces/metrics", {
    experiment_ids: [experimentID], view_type: view, metric_name: metric, aggregations: aggregations.map((a) =>
      (a.startsWith("P") ? { aggregation_type: "PERCENTILE", percentile_value: Number(a.slice(1)) } : { aggregation_type: a })), ...extra,
  }).then((r) => r.data_points || []);
  try {
    const [states, sessions, latency, tokens, cost] = await Promise.all([
      ask("TRACES", "trace_count", ["COUNT"], { dimensions: ["trace_status"] }), ask("TRACES", "session_count", ["COUNT"]),
      ask("TRACES", "latency", ["P50", "P95"]), ask("TRACES", "total_tokens", ["SUM"]), ask("SPANS", "total_cost", ["SUM"])]);
    const count = (state) => states.filter((p) => state === undefined || p.dimensions.trace_status === state).reduce((n, p) => n + p.values.COUNT, 0);
    const parts = [`${count()} traces`];
    if (count("ERROR")) parts[0] += ` (${count("ERROR")} failed)`;
    if (sessions[0]?.values.COUNT) parts.push(`${sessions[0].values.COUNT} sessions`);
    if (latency[0]) parts.push(`latency p50 ${ms(latency[0].values["P50.0"])}, p95 ${ms(latency[0].values["P95.0"])}`);
    if (tokens[0]) parts.push(`${tokens[0].values.SUM.toLocaleString("en-US")} tokens`);
    if (cost[0]) parts.push(`cost $${Number(cost[0].values.SUM.toPrecision(4))}`);
    where.textContent = parts.join(" · ");
  } catch (e) { where.textContent = ""; }
}

/// What an assessment says, as text: a feedback's value (or its error), an expectation's value, an issue
/// reference's issue name.
function assessmentValue(a) {
  const v = a.feedback ? (a.feedback.error ? `error: ${a.feedback.error.error_message || a.feedback.error.error_code || ""}` : a.feedback.value)
    : a.expectation ? (a.expectation.value ?? a.expectation.serialized_value?.value) : a.issue ? a.issue.issue_name : "";
  return v === undefined || v === null ? "" : typeof v === "string" ? v : JSON.stringify(v);
}

// ---- One trace -------------------------------------------------------------------------------------------------

/// The prompt versions the client names in a trace's `mlflow.linkedPrompts` tag (`[{"name", "version"}]`), as
/// `name/version`: what `prompt = '…'` searches for. None when the tag is absent or not such a list.
function linkedPrompts(tag) {
  try {
    const list = JSON.parse(tag || "[]");
    return Array.isArray(list) ? list.filter((p) => p && p.name && p.version !== undefined).map((p) => `${p.name}/${p.version}`) : [];
  } catch {
    return [];
  }
}

/// Trace `traceID`: info, assessments, tags and metadata, then its spans (when its artifacts hold them).
export async function tracePage(main, traceID, setCrumbs) {
  const info = (await mlflow3.get(`/traces/${encodeURIComponent(traceID)}`)).trace.trace_info;
  const expID = info.trace_location?.mlflow_experiment?.experiment_id;
  const exp = (await mlflow.get("/experiments/get", { experiment_id: expID })).experiment;
  const expHref = `#/experiments/${encodeURIComponent(expID)}`;
  setCrumbs([["Experiments", "#/"], [exp.name, expHref], ["Traces", `${expHref}/traces`], [traceID]]);
  const meta = info.trace_metadata || {}, tags = info.tags || {};
  const prompts = linkedPrompts(tags["mlflow.linkedPrompts"]);
  main.innerHTML = "";
  main.append(h(`<section>
    <h1>${escape(tags["mlflow.traceName"] || traceID)}</h1>
    <div class="grid">
      <div class="card" id="trace-info"><h2>Trace</h2>${kv([["id", traceID], ["state", info.state], ["requested", time(info.request_time)],
        ["duration", ms(durationMs(info.execution_duration))], ["request", info.request_preview], ["response", info.response_preview],
        ...(meta["mlflow.sourceRun"] ? [["run", meta["mlflow.sourceRun"]]] : []), ...(prompts.length ? [["prompts", ""]] : [])])}</div>
      <div class="card"><h2>Tags</h2>${kv(userPairs(tags))}</div>
      <div class="card"><h2>Metadata</h2>${kv(userPairs(meta))}</div>
    </div>
    <h2>Assessments</h2><div id="trace-assessments"></div>
    <h2>Spans</h2><div id="trace-spans"><p class="muted">Loading…</p></div>
  </section>`));
  const cell = (name) => [...main.querySelectorAll("#trace-info tr")].find((r) => r.cells[0].textContent === name)?.cells[1];
  if (meta["mlflow.sourceRun"]) {
    cell("run").replaceChildren(h(`<a href="#/runs/${encodeURIComponent(meta["mlflow.sourceRun"])}">${escape(meta["mlflow.sourceRun"])}</a>`));
  }
  if (prompts.length) {  // each prompt version links to the experiment's traces that used it
    cell("prompts").innerHTML = prompts.map((p) => `<a class="pill" href="${expHref}/traces?filter=${encodeURIComponent(`prompt = '${p}'`)}">${escape(p)}</a>`).join(" ");
  }
  const assessments = info.assessments || [];
  main.querySelector("#trace-assessments").innerHTML = assessments.length ? `<table id="assessment-table"><thead><tr><th>Name</th><th>Value</th>
      <th>Kind</th><th>Source</th><th>Rationale</th><th>Valid</th><th>Updated</th></tr></thead><tbody>${assessments.map((a) => `<tr>
      <td>${escape(a.assessment_name ?? "")}</td><td class="wrap">${escape(assessmentValue(a))}</td><td>${a.feedback ? "feedback" : a.expectation ? "expectation" : a.issue ? `<a href="#/experiments/${encodeURIComponent(expID)}/issues">issue</a>` : ""}</td>
      <td>${escape([a.source?.source_type, a.source?.source_id].filter(Boolean).join(" "))}</td><td class="wrap">${escape(a.rationale || "")}</td>
      <td>${a.valid === false ? "overridden" : "yes"}</td><td>${escape(time(a.last_update_time))}</td></tr>`).join("")}</tbody></table>`
    : `<p class="muted">No assessments.</p>`;
  const where = main.querySelector("#trace-spans");
  try {
    const data = await traceData(traceID);
    if (!data) { where.innerHTML = `<p class="muted">No spans were written for this trace.</p>`; return; }
    spanTree(where, data.spans || []);
  } catch (e) { showError(where, e); }
}

/// A span of either layout MLflow has written to `traces.json`: 3.x's (`span_id`, `parent_span_id`,
/// `start_time_unix_nano`, `status.code`) or 2.x's (`context.span_id`, `parent_id`, `start_time`, `status_code`),
/// which an import from an older server brings.
function normalSpan(s) {
  const num = (v) => (Number.isFinite(Number(v)) ? Number(v) : 0);
  const start = num(s.start_time_unix_nano ?? s.start_time);
  const end = s.end_time_unix_nano ?? s.end_time;
  const code = String(s.status?.code ?? s.status_code ?? "");
  return {
    id: String(s.span_id ?? s.context?.span_id ?? ""), parent: s.parent_span_id ?? s.parent_id ?? null, name: String(s.name ?? "(unnamed)"),
    start, end: num(end) || start, failed: code.includes("ERROR"),  // unfinished (no end, or 0): no duration
    status: code.replace("STATUS_CODE_", "") + (s.status?.message || s.status_message ? `: ${s.status?.message || s.status_message}` : ""),
    attributes: s.attributes && typeof s.attributes === "object" ? s.attributes : {},
    events: Array.isArray(s.events) ? s.events : [],
  };
}

/// The spans as a waterfall: one row per span in tree order (children by start time), indented by depth, with a bar
/// placed on the trace's time line; choosing a row shows the span's inputs, outputs, attributes and events. A span
/// whose parent is not among them is a root; of spans that only a cycle of parents reaches, the first is.
function spanTree(where, raw) {
  const spans = raw.filter((s) => s && typeof s === "object").map(normalSpan);
  if (!spans.length) { where.innerHTML = `<p class="muted">The trace has no spans.</p>`; return; }
  const ids = new Set(spans.map((s) => s.id));
  const children = new Map();
  for (const s of spans) {
    const parent = s.parent && s.parent !== s.id && ids.has(s.parent) ? s.parent : null;
    if (!children.has(parent)) children.set(parent, []);
    children.get(parent).push(s);
  }
  for (const list of children.values()) list.sort((a, b) => a.start - b.start);
  const t0 = spans.reduce((m, s) => Math.min(m, s.start), Infinity);
  const total = Math.max(1, spans.reduce((m, s) => Math.max(m, s.end), -Infinity) - t0);
  const ordered = [], seen = new Set();
  const walk = (root) => {  // depth first with a stack of its own: a chain of thousands of spans is no recursion
    const stack = [[root, 0]];
    while (stack.length) {
      const [s, depth] = stack.pop();
      if (seen.has(s)) continue;
      seen.add(s);
      ordered.push([s, depth]);
      const kids = children.get(s.id) || [];
      for (let i = kids.length - 1; i >= 0; i--) stack.push([kids[i], depth + 1]);
    }
  };
  for (const s of children.get(null) || []) walk(s);
  for (const s of spans) walk(s);  // reached by no root (a cycle of parents): the first of the cycle becomes a root
  where.innerHTML = "";
  const layout = h(`<div class="spans"><div class="tablewrap"><table id="span-table"><thead><tr><th>Span</th><th>Type</th><th>Duration</th>
    <th style="width:40%">Time line</th></tr></thead><tbody></tbody></table></div><div class="card" id="span-detail"></div></div>`);
  where.append(layout);
  const detail = layout.querySelector("#span-detail");
  const rows = ordered.map(([s, depth]) => {
    const left = ((s.start - t0) / total) * 100, width = Math.max(0.3, ((s.end - s.start) / total) * 100);
    const type = attribute(s, "mlflow.spanType");
    const row = h(`<table><tr tabindex="0" class="span${s.failed ? " span-error" : ""}" data-span="${escape(s.id)}">
      <td style="padding-left:${(0.5 + Math.min(depth, 40) * 1.2).toFixed(1)}rem">${escape(s.name)}</td><td>${escape(type ?? "")}</td>
      <td class="num">${ms((s.end - s.start) / 1e6)}</td>
      <td><div class="bar"><span style="left:${left.toFixed(2)}%;width:${width.toFixed(2)}%"></span></div></td></tr></table>`).querySelector("tr");
    const show = () => {
      for (const r of layout.querySelectorAll("tr.span")) r.classList.toggle("selected", r === row);
      spanDetail(detail, s);
    };
    row.onclick = show;
    row.onkeydown = (e) => {
      if (e.key === "Enter" || e.key === " ") { e.preventDefault(); show(); }
      else if (e.key === "ArrowDown") { e.preventDefault(); row.nextElementSibling?.focus(); }
      else if (e.key === "ArrowUp") { e.preventDefault(); row.previousElementSibling?.focus(); }
    };
    return [row, show];
  });
  layout.querySelector("tbody").replaceChildren(...rows.map(([r]) => r));
  rows[0][1]();
}

/// A span attribute's value: MLflow keeps each as JSON text (`"\"CHAIN\""`); the parsed value, or the text itself.
function attribute(span, key) {
  const raw = span.attributes[key];
  if (raw === undefined) return undefined;
  if (typeof raw !== "string") return raw;
  try { return JSON.parse(raw); } catch { return raw; }
}

function spanDetail(where, s) {
  const pretty = (v) => (v === undefined ? "" : typeof v === "string" ? v : JSON.stringify(v, null, 2));
  const attrs = Object.keys(s.attributes).filter((k) => !["mlflow.spanInputs", "mlflow.spanOutputs", "mlflow.traceRequestId"].includes(k)).sort();
  where.replaceChildren(h(`<div><h2>${escape(s.name)}</h2>
    ${kv([["status", s.status], ["duration", ms((s.end - s.start) / 1e6)]])}
    <h3>Inputs</h3><pre class="json" id="span-inputs"></pre>
    <h3>Outputs</h3><pre class="json" id="span-outputs"></pre>
    <h3>Attributes</h3>${kv(attrs.map((k) => [k, pretty(attribute(s, k))]))}
    <h3>Events</h3>${s.events.length ? kv(s.events.map((e) => [String(e?.name ?? ""), pretty(e?.attributes)])) : `<p class="muted">None.</p>`}</div>`));
  where.querySelector("#span-inputs").textContent = pretty(attribute(s, "mlflow.spanInputs"));
  where.querySelector("#span-outputs").textContent = pretty(attribute(s, "mlflow.spanOutputs"));
}
