// MLflow 3 registered scorers in the UI: an experiment's scorers (kind, model, latest version, online scoring), and
// one scorer's versions with their instructions and definitions; deletes of a version or of a whole scorer.
import { mlflow3 } from "./api.js";
import { escape } from "./chart.js";
import { h, showError, kv } from "./dom.js";

const when = (msValue) => (msValue ? new Date(Number(msValue)).toISOString().replace("T", " ").replace(/\.\d+Z$/, "") : "");
const parsed = (text) => { try { return JSON.parse(text); } catch { return {}; } };

/// What a definition is, and its judge's model and instructions (MLflow's serialized scorer fields).
function describe(def) {
  const judge = def.instructions_judge_pydantic_data, builtin = def.builtin_scorer_pydantic_data, third = def.third_party_scorer_data;
  const memory = def.memory_augmented_judge_data;
  if (def.call_source) return { kind: "custom code", model: "", text: def.call_source };
  if (judge) return { kind: "LLM judge", model: judge.model || "", text: judge.instructions || "" };
  if (builtin) {
    const text = builtin.guidelines ? [].concat(builtin.guidelines).join("\n") : builtin.instructions || "";
    return { kind: `built-in: ${def.builtin_scorer_class || "?"}`, model: builtin.model || "", text };
  }
  if (memory) return { kind: "memory-augmented judge", model: describe(memory.base_judge || {}).model, text: "" };
  if (third) return { kind: "third-party", model: third.model || "", text: "" };
  if (def.ensemble_scorer_data) return { kind: "ensemble", model: "", text: "" };
  return { kind: "", model: "", text: "" };
}

/// The registered scorers of experiment `exp` (its `experiments/get` entity).
export async function scorersPage(main, exp, setCrumbs) {
  const id = exp.experiment_id;
  setCrumbs([["Experiments", "#/"], [exp.name, `#/experiments/${encodeURIComponent(id)}`], ["Scorers"]]);
  main.innerHTML = "";
  const box = h(`<section>
    <h1>${escape(exp.name)}: registered scorers</h1>
    <p class="muted">Kept for clients to load (<code>get_scorer</code>, <code>list_scorers</code>); Tally runs no scorer itself.</p>
    <div id="scorer-error"></div>
    <div class="tablewrap"><table id="scorer-table"><thead><tr><th>Name</th><th>Kind</th><th>Model</th><th>Version</th><th>Registered</th>
      <th>Online scoring</th><th></th></tr></thead><tbody></tbody></table></div>
    <div id="scorer-detail"></div>
  </section>`);
  main.append(box);
  const err = box.querySelector("#scorer-error");

  const showVersions = async (name) => {
    const detail = box.querySelector("#scorer-detail");
    try {
      const versions = (await mlflow3.get("/scorers/versions", { experiment_id: id, name })).scorers || [];
      detail.replaceChildren(h(`<div class="card"><h2>${escape(name)}: versions</h2>${versions.slice().reverse().map((v) => {
        const def = parsed(v.serialized_scorer), d = describe(def);
        return `<div class="scorer-version" data-version="${escape(String(v.scorer_version))}">
          <h3>Version ${escape(String(v.scorer_version))} <button class="delete-version">Delete this version</button></h3>
          ${kv([["kind", d.kind], ["model", d.model], ["registered", when(v.creation_time)], ["MLflow", def.mlflow_version || ""]])}
          ${d.text ? `<pre class="instructions">${escape(d.text)}</pre>` : ""}
          <details><summary>Definition</summary><pre>${escape(JSON.stringify(def, null, 1))}</pre></details></div>`;
      }).join("")}</div>`));
      for (const el of detail.querySelectorAll(".scorer-version")) {
        el.querySelector(".delete-version").onclick = async () => {
          if (!confirm(`Delete version ${el.dataset.version} of ${name}?`)) return;
          try {
            await mlflow3.del("/scorers/delete", { experiment_id: id, name, version: Number(el.dataset.version) });
            await load();
            if (versions.length > 1) await showVersions(name); else detail.innerHTML = "";
          } catch (e) { showError(err, e); }
        };
      }
    } catch (e) { showError(err, e); }
  };

  const load = async () => {
    err.innerHTML = "";
    try {
      const scorers = (await mlflow3.get("/scorers/list", { experiment_id: id })).scorers || [];
      const ids = scorers.map((s) => ["scorer_ids", s.scorer_id]);
      const configs = ids.length ? (await mlflow3.get("/scorers/online-configs", ids)).configs || [] : [];
      const online = Object.fromEntries(configs.map((c) => [c.scorer_id, c]));
      box.querySelector("#scorer-table").tBodies[0].replaceChildren(...scorers.map((s) => {
        const d = describe(parsed(s.serialized_scorer)), c = online[s.scorer_id];
        const row = h(`<table><tr data-scorer="${escape(s.scorer_name)}">
          <td><button class="scorer-name linklike">${escape(s.scorer_name)}</button></td><td>${escape(d.kind)}</td>
          <td><code>${escape(d.model)}</code></td><td class="num">${escape(String(s.scorer_version))}</td><td>${escape(when(s.creation_time))}</td>
          <td>${c ? escape(`${c.sample_rate > 0 ? `rate ${c.sample_rate}` : "off"}${c.filter_string ? `, ${c.filter_string}` : ""}`) : "—"}</td>
          <td><button class="delete-scorer">Delete</button></td></tr></table>`).querySelector("tr");
        row.querySelector(".scorer-name").onclick = () => showVersions(s.scorer_name);
        row.querySelector(".delete-scorer").onclick = async () => {
          if (!confirm(`Delete ${s.scorer_name} with all its versions?`)) return;
          try {
            await mlflow3.del("/scorers/delete", { experiment_id: id, name: s.scorer_name });
            box.querySelector("#scorer-detail").innerHTML = "";
            await load();
          } catch (e) { showError(err, e); }
        };
        return row;
      }));
    } catch (e) { showError(err, e); }
  };
  await load();
}
