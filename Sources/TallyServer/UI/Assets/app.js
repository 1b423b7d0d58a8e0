// Tally's web UI: hash routes over the MLflow API and Tally's compare API. No framework, no build step.
import { mlflow, compare, scoreboard, session, loadSession, BASE } from "./api.js";
import { loginPage, adminPage, permissionsPanel, renderWho } from "./access.js";
import { tracesPage, tracePage } from "./traces.js";
import { datasetsPage, datasetPage } from "./datasets.js";
import { scorersPage } from "./scorers.js";
import { reviewPage } from "./review.js";
import { issuesPage } from "./issues.js";
import { Chart, COLORS, fmt, escape } from "./chart.js";
import { h, showError, kv as kvTable } from "./dom.js";

const main = document.getElementById("main");
const crumbs = document.getElementById("crumbs");
const when = (ms) => (ms ? new Date(Number(ms)).toISOString().replace("T", " ").slice(0, 19) : "");
const duration = (a, b) => (a && b ? fmt((Number(b) - Number(a)) / 1000) + " s" : "");

function setCrumbs(items) {
  crumbs.innerHTML = items.map(([label, href]) => (href ? `<a href="${href}">${escape(label)}</a>` : escape(label))).join(" / ");
}

// ---- Experiments ---------------------------------------------------------------------------------------------

async function experiments() {
  setCrumbs([["Experiments"]]);
  main.innerHTML = "";
  const box = h(`<section>
    <h1>Experiments</h1>
    <div class="toolbar">
      <label for="exp-filter" class="sr-only">Filter experiments</label>
      <input id="exp-filter" type="search" placeholder="name LIKE '%mnist%'">
      <label><input id="exp-deleted" type="checkbox"> show deleted</label>
      <input id="exp-new" type="text" placeholder="new experiment name" aria-label="New experiment name">
      <button id="exp-create" class="primary">Create</button>
    </div>
    <div id="exp-error"></div>
    <table><thead><tr><th>Name</th><th>ID</th><th>Created</th><th>Stage</th><th>Actions</th></tr></thead><tbody id="exp-rows"></tbody></table>
  </section>`);
  main.append(box);
  const load = async () => {
    const err = box.querySelector("#exp-error");
    err.innerHTML = "";
    try {
      const body = { max_results: 1000, view_type: box.querySelector("#exp-deleted").checked ? "ALL" : "ACTIVE_ONLY" };
      const f = box.querySelector("#exp-filter").value.trim();
      if (f) body.filter = f.includes(" ") || f.includes("=") ? f : `name LIKE '%${f.replace(/'/g, "")}%'`;
      const r = await mlflow.post("/experiments/search", body);
      box.querySelector("#exp-rows").replaceChildren(...(r.experiments || []).map((e) => {
        const row = h(`<table><tr><td><a href="#/experiments/${e.experiment_id}">${escape(e.name)}</a></td><td>${e.experiment_id}</td>
          <td>${when(e.creation_time)}</td><td>${e.lifecycle_stage}</td><td></td></tr></table>`).querySelector("tr");
        const act = row.lastElementChild;
        const rename = h(`<button>Rename</button>`);
        rename.onclick = async () => {
          const name = prompt("New name", e.name);
          if (name) { try { await mlflow.post("/experiments/update", { experiment_id: e.experiment_id, new_name: name }); load(); } catch (x) { showError(err, x); } }
        };
        const del = h(`<button>${e.lifecycle_stage === "deleted" ? "Restore" : "Delete"}</button>`);
        del.onclick = async () => {
          try { await mlflow.post(e.lifecycle_stage === "deleted" ? "/experiments/restore" : "/experiments/delete", { experiment_id: e.experiment_id }); load(); }
          catch (x) { showError(err, x); }
        };
        act.append(rename, " ", del);
        return row;
      }));
    } catch (e) { showError(err, e); }
  };
  box.querySelector("#exp-filter").addEventListener("change", load);
  box.querySelector("#exp-deleted").addEventListener("change", load);
  box.querySelector("#exp-create").onclick = async () => {
    const name = box.querySelector("#exp-new").value.trim();
    if (!name) return;
    try { await mlflow.post("/experiments/create", { name }); box.querySelector("#exp-new").value = ""; load(); }
    catch (e) { showError(box.querySelector("#exp-error"), e); }
  };
  await load();
}

// ---- Runs table ----------------------------------------------------------------------------------------------

async function runs(experimentID) {
  const exp = (await mlflow.get("/experiments/get", { experiment_id: experimentID })).experiment;
  setCrumbs([["Experiments", "#/"], [exp.name]]);
  main.innerHTML = "";
  const state = { filter: "", order: "attributes.start_time DESC", tokens: [null], page: 0, selected: new Set(), runs: [], hidden: new Set() };
  const box = h(`<section>
    <h1>${escape(exp.name)}</h1>
    <div class="toolbar">
      <label for="run-filter" class="sr-only">Filter runs</label>
      <input id="run-filter" type="search" placeholder="metrics.loss < 0.5 and params.lr = '0.01'" style="min-width:28rem">
      <button id="run-apply">Filter</button>
      <button id="run-compare" class="primary" disabled>Compare selected</button>
      <button id="run-scoreboard" disabled>Scoreboard</button>
      <details id="run-columns"><summary>Columns</summary>
        <input type="search" id="run-column-filter" placeholder="filter columns" aria-label="Filter columns">
        <div id="run-column-list"></div></details>
      <span id="run-count" class="muted"></span>
      <a id="run-traces" href="#/experiments/${encodeURIComponent(experimentID)}/traces">Traces</a>
      <a id="run-datasets" href="#/experiments/${encodeURIComponent(experimentID)}/datasets">Datasets</a>
      <a id="run-scorers" href="#/experiments/${encodeURIComponent(experimentID)}/scorers">Scorers</a>
      <a id="run-review" href="#/experiments/${encodeURIComponent(experimentID)}/review">Review</a>
      <a id="run-issues" href="#/experiments/${encodeURIComponent(experimentID)}/issues">Issues</a>
    </div>
    <div id="run-error"></div>
    <div class="tablewrap"><table id="run-table"><thead></thead><tbody></tbody></table></div>
    <div class="pager"><button id="prev">Previous</button><span id="page" class="muted"></span><button id="next">Next</button></div>
  </section>`);
  main.append(box);
  permissionsPanel("experiment", experimentID).then((p) => p && box.append(p));
  const table = box.querySelector("#run-table");
  const compareButton = box.querySelector("#run-compare");
  compareButton.onclick = () => { location.hash = `#/compare?runs=${[...state.selected].join(",")}`; };
  const boardButton = box.querySelector("#run-scoreboard");
  boardButton.onclick = () => { location.hash = `#/scoreboard?runs=${[...state.selected].join(",")}`; };
  const sortKey = { Name: "attributes.run_name", Status: "attributes.status", Started: "attributes.start_time" };

  // The chooser lists every key of the page (thousands for benchmark suites): a text filter narrows it.
  const filterColumns = () => {
    const f = (box.querySelector("#run-column-filter").value || "").toLowerCase();
    for (const l of box.querySelectorAll("#run-column-list label")) l.hidden = f !== "" && !l.dataset.text.includes(f);
  };
  box.querySelector("#run-column-filter").oninput = filterColumns;
  const render = () => {
    const rs = state.runs;
    const allMetrics = [...new Set(rs.flatMap((r) => (r.data.metrics || []).map((m) => m.key)))].sort();
    const allParams = [...new Set(rs.flatMap((r) => (r.data.params || []).map((p) => p.key)))].sort();
    const allTags = [...new Set(rs.flatMap((r) => (r.data.tags || []).map((t) => t.key)).filter((k) => !k.startsWith("mlflow.")))].sort();
    // Column chooser: every metric and param of the page, the first 12 of each shown unless chosen otherwise.
    const list = box.querySelector("#run-column-list");
    const of = { metric: allMetrics, param: allParams, tag: allTags };
    list.replaceChildren(...[...allMetrics.map((k) => ["metric", k]), ...allParams.map((k) => ["param", k]), ...allTags.map((k) => ["tag", k])].map(([kind, k]) => {
      const id = `${kind}:${k}`;
      if (!state.seen?.has(id)) { (state.seen ??= new Set()).add(id); if (of[kind].indexOf(k) >= (kind === "tag" ? 6 : 12)) state.hidden.add(id); }
      const label = h(`<label style="display:block"><input type="checkbox" ${state.hidden.has(id) ? "" : "checked"}> ${kind} ${escape(k)}</label>`);
      label.querySelector("input").onchange = (e) => { if (e.target.checked) state.hidden.delete(id); else state.hidden.add(id); render(); };
      label.dataset.text = `${kind} ${k}`.toLowerCase();
      return label;
    }));
    filterColumns();
    const metricKeys = allMetrics.filter((k) => !state.hidden.has(`metric:${k}`));
    const paramKeys = allParams.filter((k) => !state.hidden.has(`param:${k}`));
    const tagKeys = allTags.filter((k) => !state.hidden.has(`tag:${k}`));
    const cols = [["", null], ["Name", sortKey.Name], ["Status", sortKey.Status], ["Started", sortKey.Started], ["Duration", null],
      ...metricKeys.map((k) => [k, `metrics.\`${k}\``]), ...paramKeys.map((k) => [k, `params.\`${k}\``]),
      ...tagKeys.map((k) => [k, `tags.\`${k}\``])];
    table.tHead.innerHTML = "<tr>" + cols.map(([label, key]) => {
      const sort = key && state.order.startsWith(key) ? (state.order.endsWith("DESC") ? "descending" : "ascending") : "none";
      return key ? `<th class="sortable" tabindex="0" data-key="${escape(key)}" aria-sort="${sort}">${escape(label)}</th>` : `<th>${escape(label)}</th>`;
    }).join("") + "</tr>";
    table.tHead.querySelectorAll("th.sortable").forEach((th) => {
      const go = () => {
        const key = th.dataset.key;
        state.order = state.order === key + " ASC" ? key + " DESC" : key + " ASC";
        state.tokens = [null]; state.page = 0; load();
      };
      th.onclick = go;
      th.onkeydown = (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); go(); } };
    });
    table.tBodies[0].replaceChildren(...rs.map((r) => {
      const m = Object.fromEntries((r.data.metrics || []).map((x) => [x.key, x.value]));
      const p = Object.fromEntries((r.data.params || []).map((x) => [x.key, x.value]));
      const t = Object.fromEntries((r.data.tags || []).map((x) => [x.key, x.value]));
      const id = r.info.run_id;
      const row = h(`<table><tr tabindex="0" data-run="${id}" class="${state.selected.has(id) ? "selected" : ""}">
        <td><input type="checkbox" aria-label="Select ${escape(r.info.run_name)}" ${state.selected.has(id) ? "checked" : ""}></td>
        <td><a href="#/runs/${id}">${escape(r.info.run_name || id)}</a></td>
        <td class="status-${r.info.status}">${r.info.status}</td><td>${when(r.info.start_time)}</td>
        <td class="num">${duration(r.info.start_time, r.info.end_time)}</td>
        ${metricKeys.map((k) => `<td class="num">${k in m ? fmt(Number(m[k])) : ""}</td>`).join("")}
        ${paramKeys.map((k) => `<td>${escape(p[k] ?? "")}</td>`).join("")}
        ${tagKeys.map((k) => `<td>${escape(t[k] ?? "")}</td>`).join("")}</tr></table>`).querySelector("tr");
      const check = row.querySelector("input");
      const toggle = () => {
        if (state.selected.has(id)) state.selected.delete(id); else state.selected.add(id);
        check.checked = state.selected.has(id);
        row.classList.toggle("selected", check.checked);
        compareButton.disabled = state.selected.size === 0;
        boardButton.disabled = state.selected.size === 0;
      };
      check.onchange = () => { check.checked = !check.checked; toggle(); };
      row.onkeydown = (e) => {
        if (e.key === " ") { e.preventDefault(); toggle(); }
        else if (e.key === "Enter") location.hash = `#/runs/${id}`;
        else if (e.key === "ArrowDown") { e.preventDefault(); row.nextElementSibling?.focus(); }
        else if (e.key === "ArrowUp") { e.preventDefault(); row.previousElementSibling?.focus(); }
      };
      return row;
    }));
    box.querySelector("#run-count").textContent = `${rs.length} runs on this page`;
    box.querySelector("#page").textContent = `page ${state.page + 1}`;
    box.querySelector("#prev").disabled = state.page === 0;
    box.querySelector("#next").disabled = !state.tokens[state.page + 1];
  };

  const load = async () => {
    const err = box.querySelector("#run-error");
    err.innerHTML = "";
    try {
      const body = { experiment_ids: [experimentID], max_results: 100, order_by: [state.order] };
      if (state.filter) body.filter = state.filter;
      if (state.tokens[state.page]) body.page_token = state.tokens[state.page];
      const r = await mlflow.post("/runs/search", body);
      state.runs = r.runs || [];
      state.tokens[state.page + 1] = r.next_page_token || null;
      render();
    } catch (e) { showError(err, e); }
  };
  box.querySelector("#run-apply").onclick = () => { state.filter = box.querySelector("#run-filter").value.trim(); state.tokens = [null]; state.page = 0; load(); };
  box.querySelector("#run-filter").addEventListener("keydown", (e) => { if (e.key === "Enter") box.querySelector("#run-apply").click(); });
  box.querySelector("#prev").onclick = () => { state.page--; load(); };
  box.querySelector("#next").onclick = () => { state.page++; load(); };
  await load();
}

// ---- Run page ------------------------------------------------------------------------------------------------

async function runPage(runID) {
  const run = (await mlflow.get("/runs/get", { run_id: runID })).run;
  const exp = (await mlflow.get("/experiments/get", { experiment_id: run.info.experiment_id })).experiment;
  setCrumbs([["Experiments", "#/"], [exp.name, `#/experiments/${exp.experiment_id}`], [run.info.run_name || runID]]);
  const kv = (rows) => `<table class="kv">${rows.map(([k, v]) => `<tr><td>${escape(k)}</td><td>${escape(v)}</td></tr>`).join("")}</table>`;
  const metrics = (run.data.metrics || []).map((m) => m.key).sort();
  main.innerHTML = "";
  main.append(h(`<section>
    <h1>${escape(run.info.run_name || runID)}</h1>
    <div class="grid">
      <div class="card"><h2>Run</h2>${kv([["id", runID], ["status", run.info.status], ["started", when(run.info.start_time)],
        ["ended", when(run.info.end_time)], ["duration", duration(run.info.start_time, run.info.end_time)], ["artifacts", run.info.artifact_uri]])}</div>
      <div class="card"><h2>Params</h2>${kv((run.data.params || []).map((p) => [p.key, p.value]))}</div>
      <div class="card"><h2>Tags</h2>${kv((run.data.tags || []).filter((t) => !t.key.startsWith("mlflow.")).map((t) => [t.key, t.value]))}</div>
      <div class="card"><h2>Inputs</h2>${kv(((run.inputs || {}).dataset_inputs || []).map((d) => [d.dataset.name, d.dataset.digest]))}</div>
    </div>
    <h2>Metrics</h2><div class="grid" id="metric-cards"></div>
    <h2>Artifacts</h2><div id="artifacts"></div>
    <p><a id="run-trace-link" href="#/experiments/${encodeURIComponent(exp.experiment_id)}/traces?filter=${encodeURIComponent(`trace.run_id = '${runID}'`)}">Traces of this run</a></p>
  </section>`));
  const outputs = (run.outputs || {}).model_outputs || [];
  if (outputs.length) {
    const card = h(`<div class="card" id="run-models"><h2>Logged models</h2><table class="kv"></table></div>`);
    main.querySelector(".grid").append(card);
    for (const o of outputs) {
      const m = (await mlflow.get(`/logged-models/${encodeURIComponent(o.model_id)}`)).model.info;
      card.querySelector("table").append(h(`<table><tr data-model="${escape(m.model_id)}"><td>${escape(m.name)}</td>
        <td>${escape(m.model_id)} <span class="muted">${escape(m.status.replace("LOGGED_MODEL_", "").toLowerCase())} · step ${o.step}</span></td></tr></table>`).querySelector("tr"));
    }
  }
  await metricCards(main.querySelector("#metric-cards"), runID, metrics);
  artifactList(main.querySelector("#artifacts"), run.info, "");
}

/// One chart card per metric of a run (the compare API takes up to 100 keys per query).
async function metricCards(cards, runID, metrics) {
  for (let i = 0; i < metrics.length; i += 100) {
    const r = await compare({ run_ids: [runID], metric_keys: metrics.slice(i, i + 100), buckets: 200 });
    for (const s of r.series) {
      const card = h(`<div class="card"><strong>${escape(s.key)}</strong>
        <div class="muted">${s.summary.count} points · last ${fmt(s.summary.last?.value)} · min ${fmt(s.summary.min?.value)} @ ${s.summary.min?.step ?? ""} · max ${fmt(s.summary.max?.value)} @ ${s.summary.max?.step ?? ""}</div></div>`);
      cards.append(card);
      const chart = new Chart(card, { height: 140, title: s.key });
      chart.canvas.setAttribute("aria-label", `${s.key}: ${s.summary.count} points, last ${fmt(s.summary.last?.value)}`);
      chart.set([{ label: s.key, color: COLORS[0], steps: s.steps, values: s.values }], [r.start_step, r.end_step],
        { start: r.start_step, width: (r.end_step - r.start_step + 1) / r.buckets });
    }
  }
  if (!metrics.length) cards.innerHTML = `<p class="muted">No metrics.</p>`;
}

// ---- Model Registry --------------------------------------------------------------------------------------------

const modelHref = (name, version) => `#/models/${encodeURIComponent(name)}` + (version ? `/${encodeURIComponent(version)}` : "");

async function modelsPage() {
  setCrumbs([["Models"]]);
  main.innerHTML = "";
  const box = h(`<section>
    <h1>Registered models</h1>
    <div class="toolbar"><label for="models-filter" class="sr-only">Filter models</label>
      <input id="models-filter" type="search" placeholder="name contains…"></div>
    <div id="models-error"></div>
    <table><thead><tr><th>Name</th><th>Latest versions</th><th>Aliases</th><th>Tags</th><th>Updated</th></tr></thead><tbody id="models-rows"></tbody></table>
  </section>`);
  main.append(box);
  const load = async () => {
    const err = box.querySelector("#models-error");
    err.innerHTML = "";
    try {
      const f = box.querySelector("#models-filter").value.trim().replace(/'/g, "");
      const params = { max_results: 1000 };
      if (f) params.filter = `name ILIKE '%${f}%'`;
      const r = await mlflow.get("/registered-models/search", params);
      box.querySelector("#models-rows").replaceChildren(...(r.registered_models || []).map((m) => h(`<table><tr data-model="${escape(m.name)}">
        <td><a href="${modelHref(m.name)}">${escape(m.name)}</a></td>
        <td>${(m.latest_versions || []).map((v) => `<a href="${modelHref(m.name, v.version)}">v${escape(v.version)}</a> <span class="muted">${escape(v.current_stage)}</span>`).join(" · ")}</td>
        <td>${(m.aliases || []).map((a) => `<span class="pill">@${escape(a.alias)} → v${escape(a.version)}</span>`).join(" ")}</td>
        <td class="wrap">${(m.tags || []).map((t) => `${escape(t.key)}=${escape(t.value)}`).join(", ")}</td>
        <td>${when(m.last_updated_timestamp)}</td></tr></table>`).querySelector("tr")));
    } catch (e) { showError(err, e); }
  };
  box.querySelector("#models-filter").addEventListener("input", load);
  await load();
}

async function modelPage(name) {
  const m = (await mlflow.get("/registered-models/get", { name })).registered_model;
  setCrumbs([["Models", "#/models"], [name]]);
  const aliasesOf = {};
  for (const a of m.aliases || []) (aliasesOf[a.version] ??= []).push(a.alias);
  const versions = (await mlflow.get("/model-versions/search", { filter: name.includes("'") ? `name = "${name}"` : `name = '${name}'`, order_by: "version_number DESC" })).model_versions || [];
  main.innerHTML = "";
  main.append(h(`<section>
    <h1>${escape(name)}</h1>
    <div class="grid">
      <div class="card"><h2>Model</h2>${kvTable([["description", m.description], ["created", when(m.creation_timestamp)], ["updated", when(m.last_updated_timestamp)]])}</div>
      <div class="card"><h2>Tags</h2>${kvTable((m.tags || []).map((t) => [t.key, t.value]))}</div>
      <div class="card"><h2>Aliases</h2>${kvTable((m.aliases || []).map((a) => ["@" + a.alias, "v" + a.version]))}</div>
    </div>
    <h2>Versions</h2>
    <table id="versions"><thead><tr><th>Version</th><th>Stage</th><th>Aliases</th><th>Source run</th><th>Created</th><th>Description</th></tr></thead>
    <tbody>${versions.map((v) => `<tr data-version="${escape(v.version)}"><td><a href="${modelHref(name, v.version)}">v${escape(v.version)}</a></td>
      <td>${escape(v.current_stage)}</td><td>${(aliasesOf[v.version] || []).map((a) => `<span class="pill">@${escape(a)}</span>`).join(" ")}</td>
      <td>${v.run_id ? `<a href="#/runs/${encodeURIComponent(v.run_id)}">${escape(v.run_id.slice(0, 8))}</a>` : ""}</td>
      <td>${when(v.creation_timestamp)}</td><td class="wrap">${escape(v.description || "")}</td></tr>`).join("")}</tbody></table>
  </section>`));
  const panel = await permissionsPanel("registered_model", name);
  if (panel) main.firstElementChild.append(panel);
}

async function versionPage(name, version) {
  const v = (await mlflow.get("/model-versions/get", { name, version })).model_version;
  setCrumbs([["Models", "#/models"], [name, modelHref(name)], ["v" + version]]);
  const modelID = v.source.startsWith("models:/m-") ? v.source.slice("models:/".length).split("/")[0] : null;
  const logged = modelID ? (await mlflow.get(`/logged-models/${encodeURIComponent(modelID)}`)).model : null;
  const run = v.run_id ? (await mlflow.get("/runs/get", { run_id: v.run_id })).run : null;
  main.innerHTML = "";
  main.append(h(`<section>
    <h1>${escape(name)} v${escape(version)}</h1>
    <div class="grid">
      <div class="card"><h2>Version</h2>${kvTable([["stage", v.current_stage], ["aliases", (v.aliases || []).map((a) => "@" + a).join(" ")],
        ["source", v.source], ["created", when(v.creation_timestamp)], ["description", v.description]])}
        ${run ? `<p>Source run: <a id="version-run" href="#/runs/${encodeURIComponent(v.run_id)}">${escape(run.info.run_name || v.run_id)}</a></p>` : ""}</div>
      <div class="card"><h2>Logged model</h2>${logged ? kvTable([["id", logged.info.model_id], ["name", logged.info.name],
        ["status", logged.info.status], ["artifacts", logged.info.artifact_uri]]) : `<p class="muted">None.</p>`}</div>
      <div class="card"><h2>Params</h2>${kvTable(((logged && logged.data.params) || []).map((p) => [p.key, p.value]))}</div>
      <div class="card"><h2>Model metrics</h2>${kvTable(((logged && logged.data.metrics) || []).map((m) => [m.key + (m.dataset_name ? ` (${m.dataset_name})` : ""), fmt(m.value)]))}</div>
    </div>
    <h2>Artifacts</h2><div id="version-artifacts">${logged ? "" : `<p class="muted">No logged model.</p>`}</div>
    <h2>Training curves of the source run</h2><div class="grid" id="version-curves"></div>
  </section>`));
  if (logged) {
    const id = encodeURIComponent(logged.info.model_id);
    artifactList(main.querySelector("#version-artifacts"), { artifact_uri: logged.info.artifact_uri }, "",
      (p) => mlflow.get(`/logged-models/${id}/artifacts/directories`, p ? { artifact_directory_path: p } : undefined));
  }
  const keys = run ? (run.data.metrics || []).map((m) => m.key).sort() : [];
  await metricCards(main.querySelector("#version-curves"), v.run_id, keys);
}

/// The files under `path` of a run's artifacts (`info`: the run's info), or of anything whose listing `lister(path)`
/// gives (a logged model's), with downloads and previews.
async function artifactList(where, info, path, lister = (p) => mlflow.get("/artifacts/list", p ? { run_id: info.run_id, path: p } : { run_id: info.run_id })) {
  // Proxied artifacts (mlflow-artifacts:/…) download through the server.
  const root = (info.artifact_uri || "").replace(/^mlflow-artifacts:\/*/, "");
  try {
    const r = await lister(path);
    const files = r.files || [];
    if (!files.length) { where.innerHTML = `<p class="muted">No artifacts${path ? " in " + escape(path) : ""}.</p>`; return; }
    const list = h(`<ul></ul>`);
    for (const f of files) {
      const li = document.createElement("li");
      if (f.is_dir) {
        const a = h(`<a href="#">${escape(f.path)}/</a>`);
        const sub = document.createElement("div");
        a.onclick = (e) => { e.preventDefault(); artifactList(sub, info, f.path, lister); };
        li.append(a, sub);
      } else {
        const url = `${BASE}api/2.0/mlflow-artifacts/artifacts/${root}/${f.path.split("/").map(encodeURIComponent).join("/")}`;
        li.innerHTML = `<a href="${url}" download>${escape(f.path)}</a> <span class="muted">${f.file_size ?? ""} B</span> <button>Preview</button>`;
        li.querySelector("button").onclick = async () => {
          const pre = document.createElement(/\.(png|jpe?g|gif|svg|webp)$/i.test(f.path) ? "img" : "pre");
          if (pre.tagName === "IMG") { pre.src = url; pre.alt = f.path; pre.style.maxWidth = "100%"; }
          else pre.textContent = (await (await fetch(url)).text()).slice(0, 20000);
          li.append(pre);
        };
      }
      list.append(li);
    }
    where.replaceChildren(list);
  } catch (e) { showError(where, e); }
}

// ---- Compare -------------------------------------------------------------------------------------------------

async function comparePage(params) {
  const runIDs = (params.get("runs") || "").split(",").filter(Boolean);
  setCrumbs([["Experiments", "#/"], ["Compare"]]);
  main.innerHTML = "";
  if (!runIDs.length) { main.innerHTML = `<p>Select runs in a runs table, then Compare.</p>`; return; }
  const infos = await Promise.all(runIDs.map((id) => mlflow.get("/runs/get", { run_id: id }).then((r) => r.run)));
  const allMetrics = [...new Set(infos.flatMap((r) => (r.data.metrics || []).map((m) => m.key)))].sort();
  const chosen = (params.get("metrics") || allMetrics.slice(0, 4).join(",")).split(",").filter(Boolean);
  const box = h(`<section>
    <h1>Compare ${runIDs.length} runs</h1>
    <div class="toolbar">
      <input type="search" id="cmp-metric-filter" placeholder="filter metrics" aria-label="Filter metrics">
      <label>Metrics <select id="cmp-metrics" multiple size="3">${allMetrics.map((k) => `<option ${chosen.includes(k) ? "selected" : ""}>${escape(k)}</option>`).join("")}</select></label>
      <label><input type="checkbox" id="cmp-log"> log scale</label>
      <label>smoothing <input type="range" id="cmp-smooth" min="0" max="0.99" step="0.01" value="0"></label>
      <label>x axis <select id="cmp-x"><option value="step">step</option><option value="time">wall time (s since the run's first point)</option></select></label>
      <span class="muted">drag to zoom · double-click to reset</span>
    </div>
    <div class="legend" id="cmp-legend"></div>
    <div id="cmp-error"></div>
    <div id="cmp-charts"></div>
    <h2>Summaries</h2><div class="tablewrap"><table id="cmp-summary"></table></div>
    <h2>Params that differ</h2><div class="tablewrap"><table id="cmp-params"></table></div>
  </section>`);
  main.append(box);
  const names = Object.fromEntries(infos.map((r) => [r.info.run_id, r.info.run_name || r.info.run_id]));
  const color = Object.fromEntries(runIDs.map((id, i) => [id, COLORS[i % COLORS.length]]));
  box.querySelector("#cmp-legend").innerHTML = runIDs.map((id) => `<span style="--c:${color[id]}">${escape(names[id])}</span>`).join("");
  const charts = {};
  let metrics = chosen;
  const xMode = () => box.querySelector("#cmp-x").value;
  // Wall time: each run's step → timestamp mapping, interpolated between MLflow's sampled history (≤ 1,000 rows).
  const clocks = {};
  const clock = async (key) => {
    if (clocks[key]) return clocks[key];
    const out = {};
    for (let i = 0; i < runIDs.length; i += 100) {
      const r = await mlflow.get("/metrics/get-history-bulk-interval",
        new URLSearchParams([...runIDs.slice(i, i + 100).map((id) => ["run_ids", id]), ["metric_key", key], ["max_results", "1000"]]));
      for (const m of r.metrics || []) (out[m.run_id] ??= []).push([Number(m.step), Number(m.timestamp)]);
    }
    for (const v of Object.values(out)) v.sort((a, b) => a[0] - b[0]);
    return (clocks[key] = out);
  };
  const toTime = (samples, steps) => {
    const t0 = samples[0][1];
    const out = new Float64Array(steps.length);
    let j = 0;
    for (let i = 0; i < steps.length; i++) {
      const s = steps[i];
      while (j < samples.length - 2 && samples[j + 1][0] < s) j++;
      const [s0, a] = samples[j], [s1, b] = samples[Math.min(j + 1, samples.length - 1)];
      out[i] = ((s1 > s0 ? a + (b - a) * (s - s0) / (s1 - s0) : a) - t0) / 1000;
    }
    return out;
  };
  const draw = async (window) => {
    const err = box.querySelector("#cmp-error");
    err.innerHTML = "";
    try {
      const q = { run_ids: runIDs, metric_keys: metrics, buckets: Math.max(200, Math.min(2000, Math.round(box.clientWidth))) };
      if (window) { q.start_step = window[0]; q.end_step = window[1]; }
      const t0 = performance.now();
      const r = await compare(q);
      const grid = { start: r.start_step, width: (r.end_step - r.start_step + 1) / r.buckets };
      for (const key of metrics) {
        if (!charts[key]) {
          const card = h(`<div class="card"><strong>${escape(key)}</strong></div>`);
          box.querySelector("#cmp-charts").append(card);
          const chart = new Chart(card, {
            title: key,
            // Step axis: refetch the window at full resolution. Time axis: narrow the view (steps differ per run).
            onZoom: (a, b) => { if (xMode() === "step") draw([Math.round(a), Math.round(b)]); else { chart.range = [a, b]; chart.draw(); } },
            onReset: () => draw(null),
          });
          charts[key] = chart;
        }
        let series = r.series.filter((s) => s.key === key)
          .map((s) => ({ label: names[s.run_id], color: color[s.run_id], steps: s.steps, values: s.values, summary: s.summary, run: s.run_id }));
        const c = charts[key];
        c.log = box.querySelector("#cmp-log").checked;
        c.smoothing = Number(box.querySelector("#cmp-smooth").value);
        c.xLabel = xMode() === "time" ? "t (s)" : "step";
        if (xMode() === "time") {
          const samples = await clock(key);
          series = series.filter((s) => samples[s.run]?.length).map((s) => ({ ...s, steps: toTime(samples[s.run], s.steps) }));
          c.set(series, null, null);
        } else {
          c.set(series, r.start_step === undefined ? null : [window ? window[0] : r.start_step, window ? window[1] : r.end_step], grid);
        }
        c.canvas.setAttribute("aria-label", `${key}: ` + series.map((s) => `${s.label} last ${fmt(s.summary.last?.value)}, min ${fmt(s.summary.min?.value)}`).join("; "));
        c.el.dataset.window = `${window ? window[0] : r.start_step}-${window ? window[1] : r.end_step}`;
        c.el.dataset.lines = String(series.length);
      }
      box.dataset.renderMs = String(Math.round(performance.now() - t0));
      box.querySelector("#cmp-summary").innerHTML = "<tr><th>run</th><th>metric</th><th>points</th><th>first</th><th>last</th><th>min</th><th>max</th><th>NaN/Inf</th></tr>"
        + r.series.map((s) => `<tr><td>${escape(names[s.run_id])}</td><td>${escape(s.key)}</td><td class="num">${s.summary.count}</td>
          <td class="num">${fmt(s.summary.first?.value)}</td><td class="num">${fmt(s.summary.last?.value)}</td>
          <td class="num">${fmt(s.summary.min?.value)} @ ${s.summary.min?.step ?? ""}</td><td class="num">${fmt(s.summary.max?.value)} @ ${s.summary.max?.step ?? ""}</td>
          <td class="num">${s.summary.nan_count + s.summary.pos_inf_count + s.summary.neg_inf_count}</td></tr>`).join("");
      box.querySelector("#cmp-params").innerHTML = `<tr><th>param</th>${r.runs.map((x) => `<th>${escape(names[x.run_id])}</th>`).join("")}</tr>`
        + r.params.map((p) => `<tr><td>${escape(p.key)}</td>${p.values.map((v) => `<td>${escape(v ?? "—")}</td>`).join("")}</tr>`).join("");
    } catch (e) { showError(err, e); }
  };
  box.querySelector("#cmp-metric-filter").oninput = (e) => {
    const f = e.target.value.toLowerCase();
    for (const o of box.querySelector("#cmp-metrics").options) o.hidden = f !== "" && !o.value.toLowerCase().includes(f) && !o.selected;
  };
  box.querySelector("#cmp-metrics").onchange = (e) => {
    metrics = [...e.target.selectedOptions].map((o) => o.value);
    box.querySelector("#cmp-charts").innerHTML = "";
    for (const k of Object.keys(charts)) delete charts[k];
    draw(null);
  };
  box.querySelector("#cmp-x").onchange = () => draw(null);
  for (const id of ["#cmp-log", "#cmp-smooth"]) {
    box.querySelector(id).addEventListener("input", () => {
      for (const c of Object.values(charts)) { c.log = box.querySelector("#cmp-log").checked; c.smoothing = Number(box.querySelector("#cmp-smooth").value); c.draw(); }
    });
  }
  await draw(null);
}

// ---- Scoreboard ------------------------------------------------------------------------------------------------

// Keys grouped by prefix (collapsible) as rows, runs as columns; the best value of each row highlighted, deltas to a
// baseline run coloured (better / worse), rows sorted by any run's value, keys filtered by text.
async function scoreboardPage(params) {
  const runIDs = (params.get("runs") || "").split(",").filter(Boolean);
  setCrumbs([["Experiments", "#/"], ["Scoreboard"]]);
  main.innerHTML = "";
  if (!runIDs.length) { main.innerHTML = `<p>Select runs in a runs table, then Scoreboard.</p>`; return; }
  const box = h(`<section>
    <h1>Scoreboard of ${runIDs.length} runs</h1>
    <div class="toolbar">
      <input type="search" id="sb-filter" placeholder="filter keys" aria-label="Filter keys">
      <label>value <select id="sb-value"><option value="latest">latest</option><option value="best">best</option></select></label>
      <label>baseline <select id="sb-baseline"><option value="">none</option></select></label>
      <span id="sb-count" class="muted"></span>
    </div>
    <div id="sb-error"></div>
    <div class="tablewrap"><table id="sb-table"><thead></thead><tbody></tbody></table></div>
  </section>`);
  main.append(box);
  const state = { collapsed: new Set(), sort: null, board: null };
  const table = box.querySelector("#sb-table");
  const cellText = (v) => (v === null || v === undefined ? "—" : fmt(typeof v === "string" ? Number(v) : v));
  const render = () => {
    const b = state.board;
    const f = box.querySelector("#sb-filter").value.toLowerCase();
    table.tHead.innerHTML = "<tr><th>key</th>" + b.runs.map((r, i) => {
      const sort = state.sort && state.sort.run === i ? (state.sort.desc ? "descending" : "ascending") : "none";
      return `<th class="sortable num" tabindex="0" data-run="${i}" aria-sort="${sort}">${escape(r.run_name || r.run_id)}</th>`;
    }).join("") + "</tr>";
    table.tHead.querySelectorAll("th[data-run]").forEach((th) => {
      th.onclick = () => {
        const run = Number(th.dataset.run);
        state.sort = state.sort && state.sort.run === run ? { run, desc: !state.sort.desc } : { run, desc: true };
        render();
      };
    });
    const rowsOf = {};
    for (const row of b.rows) (rowsOf[row.group] ??= []).push(row);
    const value = (row, i) => (row.values[i] === null ? null : Number(row.values[i]));
    let shown = 0;
    const body = [];
    for (const g of b.groups) {
      let rows = (rowsOf[g.group] || []).filter((r) => f === "" || r.key.toLowerCase().includes(f));
      if (!rows.length) continue;
      if (state.sort) {
        const i = state.sort.run, sign = state.sort.desc ? -1 : 1;
        rows = [...rows].sort((a, c) => {
          const x = value(a, i), y = value(c, i);
          if (x === null || Number.isNaN(x)) return 1;
          if (y === null || Number.isNaN(y)) return -1;
          return sign * (x - y);
        });
      }
      const open = !state.collapsed.has(g.group);
      body.push(`<tr class="sb-group" data-group="${escape(g.group)}" tabindex="0" aria-expanded="${open}"><th>${open ? "▾" : "▸"} ${escape(g.group || "(top level)")} <span class="muted">${g.keys} keys · mean</span></th>`
        + (g.means ?? rowsOf[g.group][0].values).map((m) => `<td class="num">${cellText(m)}</td>`).join("") + "</tr>");
      if (!open) continue;
      for (const row of rows) {
        shown++;
        body.push(`<tr class="sb-key" data-key="${escape(row.key)}"><td>${escape(row.key)}${row.lower_is_better ? ' <span class="muted">↓</span>' : ""}</td>`
          + row.values.map((v, i) => {
            const cls = ["num"];
            if (row.ranks[i] === 1) cls.push("best");
            let delta = "";
            const d = row.baseline_deltas ? row.baseline_deltas[i] : null;
            if (d !== null && d !== undefined && Number(d) !== 0 && b.baseline_run_id !== b.runs[i].run_id) {
              const better = (Number(d) > 0) !== row.lower_is_better;
              cls.push(better ? "up" : "down");
              delta = ` <small>(${Number(d) > 0 ? "+" : ""}${fmt(Number(d))})</small>`;
            }
            return `<td class="${cls.join(" ")}">${cellText(v)}${delta}</td>`;
          }).join("") + "</tr>");
      }
    }
    table.tBodies[0].innerHTML = body.join("");
    table.tBodies[0].querySelectorAll("tr.sb-group").forEach((tr) => {
      const toggle = () => {
        const g = tr.dataset.group;
        if (state.collapsed.has(g)) state.collapsed.delete(g); else state.collapsed.add(g);
        render();
      };
      tr.onclick = toggle;
      tr.onkeydown = (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); toggle(); } };
    });
    box.querySelector("#sb-count").textContent = `${shown} of ${b.rows.length} keys`;
  };
  const load = async () => {
    const err = box.querySelector("#sb-error");
    err.innerHTML = "";
    try {
      const q = { run_ids: runIDs, value: box.querySelector("#sb-value").value, group_depth: 1 };  // groups: top-level suites
      const base = box.querySelector("#sb-baseline").value;
      if (base) q.baseline_run_id = base;
      state.board = await scoreboard(q);
      const sel = box.querySelector("#sb-baseline");
      if (sel.options.length === 1) {
        for (const r of state.board.runs) sel.append(new Option(r.run_name || r.run_id, r.run_id));
      }
      render();
    } catch (e) { showError(err, e); }
  };
  box.querySelector("#sb-filter").oninput = () => state.board && render();
  box.querySelector("#sb-value").onchange = load;
  box.querySelector("#sb-baseline").onchange = load;
  await load();
}

// ---- Router --------------------------------------------------------------------------------------------------

async function route() {
  const [path, query] = location.hash.slice(1).split("?");
  const parts = (path || "/").split("/").filter(Boolean);
  try {
    if (parts[0] === "login") await loginPage(main, new URLSearchParams(query || ""));
    else if (session.enabled && !session.user) { location.hash = "#/login?next=" + encodeURIComponent(location.hash || "#/"); return; }
    else if (parts[0] === "admin") { setCrumbs([["Account"]]); await adminPage(main); }
    else if (parts[0] === "experiments" && parts[1] && (parts[2] === "traces" || parts[2] === "evaluation-runs")) {
      // MLflow's UI addresses, which its client prints: `…/traces`, and `…/evaluation-runs?selectedRunUuid=<run>` after
      // `mlflow.genai.evaluate` (here: the run's traces, with their assessments).
      const params = new URLSearchParams(query || "");
      const run = parts[2] === "evaluation-runs" ? params.get("selectedRunUuid") : null;
      if (run) params.set("filter", `trace.run_id = '${run.replace(/'/g, "")}'`);
      const exp = (await mlflow.get("/experiments/get", { experiment_id: decodeURIComponent(parts[1]) })).experiment;
      await tracesPage(main, exp, setCrumbs, params);
    }
    else if (parts[0] === "experiments" && parts[1] && parts[2] === "datasets") {
      const exp = (await mlflow.get("/experiments/get", { experiment_id: decodeURIComponent(parts[1]) })).experiment;
      await datasetsPage(main, exp, setCrumbs);
    }
    else if (parts[0] === "experiments" && parts[1] && parts[2] === "scorers") {
      const exp = (await mlflow.get("/experiments/get", { experiment_id: decodeURIComponent(parts[1]) })).experiment;
      await scorersPage(main, exp, setCrumbs);
    }
    else if (parts[0] === "experiments" && parts[1] && parts[2] === "review") {
      const exp = (await mlflow.get("/experiments/get", { experiment_id: decodeURIComponent(parts[1]) })).experiment;
      await reviewPage(main, exp, setCrumbs);
    }
    else if (parts[0] === "experiments" && parts[1] && parts[2] === "issues") {
      const exp = (await mlflow.get("/experiments/get", { experiment_id: decodeURIComponent(parts[1]) })).experiment;
      await issuesPage(main, exp, setCrumbs);
    }
    else if (parts[0] === "datasets" && parts[1]) await datasetPage(main, decodeURIComponent(parts[1]), setCrumbs);
    else if (parts[0] === "experiments" && parts[1]) await runs(decodeURIComponent(parts[1]));
    else if (parts[0] === "traces" && parts[1]) await tracePage(main, decodeURIComponent(parts[1]), setCrumbs);
    else if (parts[0] === "runs" && parts[1]) await runPage(decodeURIComponent(parts[1]));
    else if (parts[0] === "compare") await comparePage(new URLSearchParams(query || ""));
    else if (parts[0] === "scoreboard") await scoreboardPage(new URLSearchParams(query || ""));
    else if (parts[0] === "models" && parts[2]) await versionPage(decodeURIComponent(parts[1]), decodeURIComponent(parts[2]));
    else if (parts[0] === "models" && parts[1]) await modelPage(decodeURIComponent(parts[1]));
    else if (parts[0] === "models") await modelsPage();
    else await experiments();
  } catch (e) { showError(main, e); }
  document.body.dataset.ready = location.hash || "#/";
}

// A 401 means the session is gone (expired, logged out elsewhere): sign in again, then come back.
session.onUnauthenticated = () => {
  session.user = null;
  renderWho();
  if (!location.hash.startsWith("#/login")) location.hash = "#/login?next=" + encodeURIComponent(location.hash || "#/");
};
window.addEventListener("hashchange", route);
loadSession().then(renderWho, () => {}).finally(route);
