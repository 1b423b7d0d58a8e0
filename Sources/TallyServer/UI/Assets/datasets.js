// MLflow 3 evaluation datasets in the UI: an experiment's datasets (MLflow's search grammar, sortable columns, pages,
// delete) and one dataset (its fields, tags, experiments, the schema MLflow derives, and its records page by page).
import { mlflow, mlflow3 } from "./api.js";
import { escape } from "./chart.js";
import { h, showError, kv, sortableHead } from "./dom.js";

const when = (msValue) => (msValue ? new Date(Number(msValue)).toISOString().replace("T", " ").replace(/\.\d+Z$/, "") : "");
/// The value of a JSON text, `null` when it is not one (a field MLflow keeps as text).
const parsed = (text) => { try { return JSON.parse(text); } catch { return null; } };
/// A JSON value as compact text; a string as it is.
const show = (v) => (v === undefined || v === null ? "" : typeof v === "string" ? v : JSON.stringify(v));

// ---- An experiment's datasets ------------------------------------------------------------------------------------

/// The evaluation datasets linked to experiment `exp` (its `experiments/get` entity).
export async function datasetsPage(main, exp, setCrumbs) {
  setCrumbs([["Experiments", "#/"], [exp.name, `#/experiments/${encodeURIComponent(exp.experiment_id)}`], ["Datasets"]]);
  const state = { filter: "", order: "created_time DESC", tokens: [null], page: 0, datasets: [], selected: new Set() };
  main.innerHTML = "";
  const box = h(`<section>
    <h1>${escape(exp.name)}: evaluation datasets</h1>
    <div class="toolbar">
      <label for="dataset-filter" class="sr-only">Filter datasets</label>
      <input id="dataset-filter" type="search" placeholder="name LIKE 'qa%' AND tags.team = 'nlp'" style="min-width:28rem">
      <button id="dataset-apply">Filter</button>
      <button id="dataset-delete" disabled>Delete selected</button>
      <span id="dataset-count" class="muted"></span>
    </div>
    <div id="dataset-error"></div>
    <div class="tablewrap"><table id="dataset-table"><thead></thead><tbody></tbody></table></div>
    <div class="pager"><button id="dataset-prev">Previous</button><span id="dataset-page" class="muted"></span><button id="dataset-next">Next</button></div>
  </section>`);
  main.append(box);
  const table = box.querySelector("#dataset-table");
  const del = box.querySelector("#dataset-delete");
  const cols = [["", null], ["Name", "name"], ["Records", null], ["Created", "created_time"], ["Updated", "last_update_time"],
    ["Created by", null], ["Digest", null], ["Tags", null]];

  const render = () => {
    sortableHead(table, cols, state, load);
    table.tBodies[0].replaceChildren(...state.datasets.map((d) => {
      const id = d.dataset_id, tags = parsed(d.tags) || {};
      const userTags = Object.entries(tags).filter(([k]) => !k.startsWith("mlflow."));
      const row = h(`<table><tr data-dataset="${escape(id)}">
        <td><input type="checkbox" aria-label="Select ${escape(d.name)}" ${state.selected.has(id) ? "checked" : ""}></td>
        <td><a href="#/datasets/${encodeURIComponent(id)}">${escape(d.name)}</a></td>
        <td class="num">${escape(show(parsed(d.profile)?.num_records ?? 0))}</td>
        <td>${escape(when(d.created_time))}</td>
        <td>${escape(when(d.last_update_time))}</td>
        <td>${escape(d.created_by || "")}</td>
        <td><code>${escape(d.digest || "")}</code></td>
        <td>${userTags.map(([k, v]) => `<span class="pill">${escape(k)}=${escape(show(v))}</span>`).join(" ")}</td></tr></table>`).querySelector("tr");
      row.querySelector("input").onchange = (e) => {
        if (e.target.checked) state.selected.add(id); else state.selected.delete(id);
        del.disabled = state.selected.size === 0;
      };
      return row;
    }));
    box.querySelector("#dataset-count").textContent = `${state.datasets.length} datasets on this page`;
    box.querySelector("#dataset-page").textContent = `page ${state.page + 1}`;
    box.querySelector("#dataset-prev").disabled = state.page === 0;
    box.querySelector("#dataset-next").disabled = !state.tokens[state.page + 1];
    del.disabled = state.selected.size === 0;
  };

  const load = async () => {
    const err = box.querySelector("#dataset-error");
    err.innerHTML = "";
    try {
      const body = { experiment_ids: [exp.experiment_id], max_results: 50, order_by: [state.order] };
      if (state.filter) body.filter_string = state.filter;
      if (state.tokens[state.page]) body.page_token = state.tokens[state.page];
      const r = await mlflow3.post("/datasets/search", body);
      state.selected.clear();  // what "Delete selected" deletes is always on screen
      state.datasets = r.datasets || [];
      state.tokens[state.page + 1] = r.next_page_token || null;
      render();
    } catch (e) { showError(err, e); }
  };
  box.querySelector("#dataset-apply").onclick = () => {
    state.filter = box.querySelector("#dataset-filter").value.trim(); state.tokens = [null]; state.page = 0; load();
  };
  box.querySelector("#dataset-filter").addEventListener("keydown", (e) => { if (e.key === "Enter") box.querySelector("#dataset-apply").click(); });
  box.querySelector("#dataset-prev").onclick = () => { state.page--; load(); };
  box.querySelector("#dataset-next").onclick = () => { state.page++; load(); };
  del.onclick = async () => {
    if (!confirm(`Delete ${state.selected.size} dataset(s) with their records?`)) return;
    try {
      for (const id of state.selected) await mlflow3.del(`/datasets/${encodeURIComponent(id)}`);
      state.selected.clear(); load();
    } catch (e) { showError(box.querySelector("#dataset-error"), e); }
  };
  await load();
}

// ---- One dataset -------------------------------------------------------------------------------------------------

/// Dataset `datasetID`: its fields, tags, experiments and schema, then its records, 100 a page.
export async function datasetPage(main, datasetID, setCrumbs) {
  const path = `/datasets/${encodeURIComponent(datasetID)}`;
  const d = (await mlflow3.get(path)).dataset;
  const experimentIDs = (await mlflow3.get(path + "/experiment-ids")).experiment_ids || [];
  const experiments = await Promise.all(experimentIDs.map((id) => mlflow.get("/experiments/get", { experiment_id: id })
    .then((r) => r.experiment).catch(() => ({ experiment_id: id, name: id }))));
  const first = experiments[0];
  setCrumbs(first ? [["Experiments", "#/"], [first.name, `#/experiments/${encodeURIComponent(first.experiment_id)}`],
    ["Datasets", `#/experiments/${encodeURIComponent(first.experiment_id)}/datasets`], [d.name]] : [["Experiments", "#/"], [d.name]]);
  const tags = parsed(d.tags) || {}, schema = parsed(d.schema) || {};
  const schemaRows = ["inputs", "outputs", "expectations"].flatMap((part) => {
    const s = schema[part];
    if (typeof s === "string") return [[part, s]];
    return Object.entries(s || {}).map(([k, t]) => [`${part}.${k}`, show(t)]);
  });
  main.innerHTML = "";
  const box = h(`<section>
    <h1>${escape(d.name)}</h1>
    <div class="grid">
      <div class="card" id="dataset-info"><h2>Dataset</h2>${kv([["id", d.dataset_id], ["records", show(parsed(d.profile)?.num_records ?? 0)],
        ["digest", d.digest], ["created", when(d.created_time)], ["updated", when(d.last_update_time)], ["created by", d.created_by],
        ["updated by", d.last_updated_by]])}</div>
      <div class="card" id="dataset-experiments"><h2>Experiments</h2><ul>${experiments.map((e) =>
        `<li><a href="#/experiments/${encodeURIComponent(e.experiment_id)}/datasets">${escape(e.name)}</a></li>`).join("")}</ul></div>
      <div class="card" id="dataset-tags"><h2>Tags</h2>${kv(Object.entries(tags).map(([k, v]) => [k, show(v)]))}</div>
      <div class="card" id="dataset-schema"><h2>Schema</h2>${kv(schemaRows)}</div>
    </div>
    <h2>Records</h2>
    <div id="record-error"></div>
    <div class="tablewrap"><table id="record-table"><thead><tr><th>Inputs</th><th>Expectations</th><th>Outputs</th><th>Source</th>
      <th>Tags</th><th>Updated</th></tr></thead><tbody></tbody></table></div>
    <div class="pager"><button id="record-prev">Previous</button><span id="record-page" class="muted"></span><button id="record-next">Next</button></div>
  </section>`);
  main.append(box);
  const state = { tokens: [null], page: 0 };
  const load = async () => {
    const err = box.querySelector("#record-error");
    err.innerHTML = "";
    try {
      const q = { max_results: 100 };
      if (state.tokens[state.page]) q.page_token = state.tokens[state.page];
      const r = await mlflow3.get(path + "/records", q);
      const records = parsed(r.records) || [];
      state.tokens[state.page + 1] = r.next_page_token || null;
      box.querySelector("#record-table").tBodies[0].replaceChildren(...records.map((rec) => h(`<table><tr data-record="${escape(rec.dataset_record_id)}">
        <td><pre>${escape(JSON.stringify(rec.inputs ?? {}, null, 1))}</pre></td>
        <td><pre>${escape(rec.expectations ? JSON.stringify(rec.expectations, null, 1) : "")}</pre></td>
        <td><pre>${escape(rec.outputs === undefined ? "" : JSON.stringify(rec.outputs, null, 1))}</pre></td>
        <td>${escape(rec.source_type || "")}${rec.source_id ? ` <code>${escape(rec.source_id)}</code>` : ""}</td>
        <td>${Object.entries(rec.tags || {}).map(([k, v]) => `<span class="pill">${escape(k)}=${escape(show(v))}</span>`).join(" ")}</td>
        <td>${escape(when(rec.last_update_time))}</td></tr></table>`).querySelector("tr")));
      box.querySelector("#record-page").textContent = `page ${state.page + 1}, ${records.length} records`;
      box.querySelector("#record-prev").disabled = state.page === 0;
      box.querySelector("#record-next").disabled = !state.tokens[state.page + 1];
    } catch (e) { showError(err, e); }
  };
  box.querySelector("#record-prev").onclick = () => { state.page--; load(); };
  box.querySelector("#record-next").onclick = () => { state.page++; load(); };
  await load();
}
