// MLflow 3's human review in the UI: an experiment's questions (label schemas) and review queues, a queue's traces
// with their status, and labeling one: each question answered as an assessment on the trace, then the item completed.
import { mlflow3, session } from "./api.js";
import { escape } from "./chart.js";
import { h, showError } from "./dom.js";

const when = (msValue) => (msValue ? new Date(Number(msValue)).toISOString().replace("T", " ").replace(/\.\d+Z$/, "") : "");

/// How a question is answered, in words.
function inputText(input) {
  if (input.pass_fail) return `pass/fail: ${input.pass_fail.positive_label} / ${input.pass_fail.negative_label}`;
  if (input.categorical) return `${input.categorical.multi_select ? "any of" : "one of"}: ${(input.categorical.options || []).join(", ")}`;
  if (input.numeric) return `number${input.numeric.min_value !== undefined ? ` ≥ ${input.numeric.min_value}` : ""}${input.numeric.max_value !== undefined ? ` ≤ ${input.numeric.max_value}` : ""}`;
  return `text${input.text?.max_length ? ` (≤ ${input.text.max_length})` : ""}`;
}

/// The form field answering question `s` (its `name` attribute the question's id).
function field(s) {
  const i = s.input, id = escape(s.schema_id);
  if (i.pass_fail) {
    return `<select name="${id}"><option value="">—</option><option value="true">${escape(i.pass_fail.positive_label)}</option>
      <option value="false">${escape(i.pass_fail.negative_label)}</option></select>`;
  }
  if (i.categorical) {
    const options = (i.categorical.options || []).map((o) => `<option>${escape(o)}</option>`).join("");
    return i.categorical.multi_select ? `<select name="${id}" multiple>${options}</select>` : `<select name="${id}"><option value="">—</option>${options}</select>`;
  }
  const attr = (name, v) => (v !== undefined ? `${name}="${escape(String(v))}"` : "");
  if (i.numeric) return `<input name="${id}" type="number" step="any" ${attr("min", i.numeric.min_value)} ${attr("max", i.numeric.max_value)}>`;
  return `<textarea name="${id}" rows="2" ${attr("maxlength", i.text?.max_length || undefined)}></textarea>`;
}

/// Puts `value` (an earlier answer) into the field `el` of question `s`.
function fill(s, el, value) {
  if (s.input.categorical?.multi_select) {
    for (const o of el.options) o.selected = [].concat(value).includes(o.value);
  } else {
    el.value = String(value);
  }
}

/// The answer field `el` holds for question `s`, or `undefined` when left empty.
function answer(s, el) {
  if (s.input.categorical?.multi_select) {
    const picked = [...el.selectedOptions].map((o) => o.value);
    return picked.length ? picked : undefined;
  }
  if (el.value === "") return undefined;
  if (s.input.pass_fail) return el.value === "true";
  if (s.input.numeric) return Number(el.value);
  return el.value;
}

/// The review page of experiment `exp` (its `experiments/get` entity).
export async function reviewPage(main, exp, setCrumbs) {
  const id = exp.experiment_id;
  setCrumbs([["Experiments", "#/"], [exp.name, `#/experiments/${encodeURIComponent(id)}`], ["Review"]]);
  main.innerHTML = "";
  const box = h(`<section>
    <h1>${escape(exp.name)}: review</h1>
    <div id="review-error"></div>
    <h2>Questions</h2>
    <div class="tablewrap"><table id="schema-table"><thead><tr><th>Question</th><th>Type</th><th>Answer</th><th>Instruction</th><th></th></tr></thead><tbody></tbody></table></div>
    <form id="schema-form" class="toolbar">
      <input name="name" placeholder="Is the answer correct?" aria-label="Question" required>
      <select name="type" aria-label="Type"><option value="FEEDBACK">feedback</option><option value="EXPECTATION">expectation</option></select>
      <select name="kind" aria-label="Answer"><option value="pass_fail">pass/fail</option><option value="categorical">one of</option><option value="text">text</option><option value="numeric">number</option></select>
      <input name="options" placeholder="options or labels, comma-separated" aria-label="Options">
      <button class="primary">Add question</button>
    </form>
    <h2>Queues</h2>
    <div class="tablewrap"><table id="queue-table"><thead><tr><th>Queue</th><th>Kind</th><th>Reviewers</th><th>Owner</th><th>Created</th><th></th></tr></thead><tbody></tbody></table></div>
    <form id="queue-form" class="toolbar">
      <input name="name" placeholder="Queue name" aria-label="Queue name" required>
      <input name="users" placeholder="reviewers, comma-separated" aria-label="Reviewers">
      <button class="primary">Add queue</button>
    </form>
    <div id="queue-detail"></div>
  </section>`);
  main.append(box);
  const err = box.querySelector("#review-error");
  const fail = (e) => showError(err, e);
  const list = (text) => text.split(",").map((x) => x.trim()).filter(Boolean);
  let schemas = [];

  /// Edits question `s` in its row: its name, instruction, and (within its kind) its labels or options.
  const editSchema = (s, row) => {
    const i = s.input, words = i.pass_fail ? [i.pass_fail.positive_label, i.pass_fail.negative_label] : i.categorical?.options;
    const form = h(`<form class="schema-edit toolbar">
      <input name="name" value="${escape(s.name)}" aria-label="Question" required>
      <input name="instruction" value="${escape(s.instruction || "")}" placeholder="instruction" aria-label="Instruction">
      ${words ? `<input name="options" value="${escape(words.join(", "))}" aria-label="${i.pass_fail ? "Labels" : "Options"}">` : ""}
      <button class="primary">Save</button> <button type="button" class="cancel">Cancel</button></form>`);
    const cell = h(`<table><tr><td colspan="5"></td></tr></table>`).querySelector("tr");
    cell.cells[0].append(form);
    row.replaceWith(cell);
    form.querySelector(".cancel").onclick = () => loadSchemas().catch(fail);
    form.onsubmit = async (ev) => {
      ev.preventDefault();
      const parts = form.options ? list(form.options.value) : [];
      const input = i.pass_fail ? { pass_fail: { positive_label: parts[0] || "", negative_label: parts[1] || "" } }
        : i.categorical ? { categorical: { options: parts, multi_select: !!i.categorical.multi_select } } : undefined;
      try {
        await mlflow3.patch("/label-schemas/update", { schema_id: s.schema_id, name: form.name.value, instruction: form.instruction.value,
          ...(input ? { input } : {}) });
        await loadSchemas();
      } catch (e) { fail(e); }
    };
  };

  const loadSchemas = async () => {
    schemas = (await mlflow3.get("/label-schemas/list", { experiment_id: id, max_results: 1000 })).label_schemas || [];
    box.querySelector("#schema-table").tBodies[0].replaceChildren(...schemas.map((s) => {
      const row = h(`<table><tr data-schema="${escape(s.name)}"><td>${escape(s.name)}${s.is_default ? ' <span class="muted">(default)</span>' : ""}</td>
        <td>${escape(s.type.toLowerCase())}</td><td>${escape(inputText(s.input))}</td><td>${escape(s.instruction || "")}</td>
        <td>${s.is_default ? "" : '<button class="edit-schema">Edit</button> <button class="delete-schema">Delete</button>'}</td></tr></table>`).querySelector("tr");
      const editButton = row.querySelector(".edit-schema");
      if (editButton) editButton.onclick = () => editSchema(s, row);
      const del = row.querySelector(".delete-schema");
      if (del) del.onclick = async () => {
        if (!confirm(`Delete the question ${s.name}? Answers given stay.`)) return;
        try { await mlflow3.del("/label-schemas/delete", { schema_id: s.schema_id }); await loadSchemas(); } catch (e) { fail(e); }
      };
      return row;
    }));
  };

  const showQueue = async (q) => {
    const detail = box.querySelector("#queue-detail");
    const asked = q.queue_type === "USER" ? schemas : schemas.filter((s) => (q.schema_ids || []).includes(s.schema_id));
    const items = (await mlflow3.get("/review-queues/items/list", { queue_id: q.queue_id })).items || [];
    // A custom queue's reviewers and questions can change (its questions only while it holds no items).
    const settings = q.queue_type === "USER" ? "" : `<form id="queue-settings" class="toolbar">
        <input name="users" value="${escape((q.users || []).join(", "))}" placeholder="reviewers, comma-separated" aria-label="Reviewers">
        ${schemas.map((s) => `<label><input type="checkbox" name="q" value="${escape(s.schema_id)}" ${(q.schema_ids || []).includes(s.schema_id) ? "checked" : ""}
          ${items.length ? "disabled" : ""}> ${escape(s.name)}</label>`).join(" ")}
        <button>Save</button>${items.length ? ' <span class="muted">(questions are fixed while the queue holds traces)</span>' : ""}</form>`;
    const card = h(`<div class="card" id="queue-card"><h2>${escape(q.name)}: traces</h2>
      <p class="muted">Questions: ${asked.map((s) => escape(s.name)).join(", ") || "none"}</p>${settings}
      <form id="item-form" class="toolbar"><input name="ids" placeholder="trace ids, comma-separated" aria-label="Trace ids" style="min-width:28rem">
        <button>Add traces</button></form>
      <table id="item-table"><thead><tr><th>Trace</th><th>Status</th><th>By</th><th>When</th><th></th></tr></thead><tbody>${items.map((i) => `
        <tr data-item="${escape(i.item_id)}"><td><a href="#/traces/${encodeURIComponent(i.item_id)}">${escape(i.item_id)}</a></td>
        <td class="status">${escape(i.status.toLowerCase())}</td><td>${escape(i.completed_by || "")}</td><td>${escape(when(i.completed_time_ms))}</td>
        <td><button class="label-item">Label</button> <button class="decline-item">Decline</button> <button class="reopen-item">Reopen</button>
          <button class="remove-item">Remove</button></td></tr>`).join("")}</tbody></table>
      <div id="label-form"></div></div>`);
    detail.replaceChildren(card);
    const reviewer = () => session.user?.username || card.querySelector("#label-reviewer")?.value || "";
    const status = async (item, value) => {
      await mlflow3.post("/review-queues/items/set-status", { queue_id: q.queue_id, item_id: item, status: value,
        ...(value === "PENDING" ? {} : { completed_by: reviewer() || "reviewer" }) });
      await showQueue(q);
    };
    const form = card.querySelector("#queue-settings");
    if (form) form.onsubmit = async (ev) => {
      ev.preventDefault();
      const chosen = [...form.querySelectorAll("input[name=q]:checked")].map((c) => c.value);
      try {
        const updated = (await mlflow3.post("/review-queues/update", { queue_id: q.queue_id, update_users: true, users: list(form.users.value),
          ...(items.length ? {} : { update_schema_ids: true, schema_ids: chosen }) })).review_queue;
        await loadQueues();
        await showQueue(updated);
      } catch (e) { fail(e); }
    };
    card.querySelector("#item-form").onsubmit = async (ev) => {
      ev.preventDefault();
      try { await mlflow3.post("/review-queues/items/add", { queue_id: q.queue_id, item_ids: list(ev.target.ids.value) }); await showQueue(q); } catch (e) { fail(e); }
    };
    for (const row of card.querySelectorAll("#item-table tbody tr")) {
      const item = row.dataset.item;
      row.querySelector(".decline-item").onclick = () => status(item, "DECLINED").catch(fail);
      row.querySelector(".reopen-item").onclick = () => status(item, "PENDING").catch(fail);
      row.querySelector(".remove-item").onclick = async () => {
        try { await mlflow3.post("/review-queues/items/remove", { queue_id: q.queue_id, item_ids: [item] }); await showQueue(q); } catch (e) { fail(e); }
      };
      row.querySelector(".label-item").onclick = async () => {
        // The reviewer's earlier answers, by question: shown, and changed in place when saved again.
        let earlier = [];
        try { earlier = (await mlflow3.get(`/traces/${encodeURIComponent(item)}`)).trace?.trace_info?.assessments || []; } catch (e) { fail(e); return; }
        const mine = (s) => earlier.find((a) => a.assessment_name === s.name && a.valid !== false && a.source?.source_type === "HUMAN"
          && a.source?.source_id === reviewer());
        const form = h(`<form class="card" id="labeling"><h3>Label ${escape(item)}</h3>
          ${session.user ? "" : '<label>Reviewer <input id="label-reviewer" required></label>'}
          ${asked.map((s) => `<div class="question"><label><b>${escape(s.name)}</b>${s.instruction ? ` <span class="muted">${escape(s.instruction)}</span>` : ""}<br>${field(s)}</label>
            ${s.enable_comment ? `<input name="comment-${escape(s.schema_id)}" placeholder="comment" aria-label="Comment">` : ""}</div>`).join("")}
          <button class="primary">Save and complete</button></form>`);
        form.onsubmit = async (ev) => {
          ev.preventDefault();
          try {
            for (const s of asked) {
              const value = answer(s, form.elements[s.schema_id]);
              if (value === undefined) continue;
              const kind = s.type === "EXPECTATION" ? "expectation" : "feedback";
              const comment = form.elements[`comment-${s.schema_id}`]?.value;
              const before = mine(s), path = `/traces/${encodeURIComponent(item)}/assessments`;
              if (before) {
                await mlflow3.patch(`${path}/${encodeURIComponent(before.assessment_id)}`, { assessment: { [kind]: { value }, rationale: comment || "" },
                  update_mask: `${kind},rationale` });
              } else {
                await mlflow3.post(path, { assessment: { assessment_name: s.name, trace_id: item, source: { source_type: "HUMAN", source_id: reviewer() },
                  [kind]: { value }, ...(comment ? { rationale: comment } : {}) } });
              }
            }
            await status(item, "COMPLETE");
          } catch (e) { fail(e); }
        };
        card.querySelector("#label-form").replaceChildren(form);
        const prefill = () => {
          for (const s of asked) {
            const before = mine(s), value = before?.feedback?.value ?? before?.expectation?.value;
            if (value !== undefined) fill(s, form.elements[s.schema_id], value);
            if (before?.rationale && form.elements[`comment-${s.schema_id}`]) form.elements[`comment-${s.schema_id}`].value = before.rationale;
          }
        };
        prefill();
        form.querySelector("#label-reviewer")?.addEventListener("change", prefill);
      };
    }
  };

  const loadQueues = async () => {
    const queues = (await mlflow3.get("/review-queues/list", { experiment_id: id })).review_queues || [];
    box.querySelector("#queue-table").tBodies[0].replaceChildren(...queues.map((q) => {
      const row = h(`<table><tr data-queue="${escape(q.name)}"><td><button class="queue-name linklike">${escape(q.name)}</button></td>
        <td>${escape(q.queue_type.toLowerCase())}</td><td>${escape((q.users || []).join(", "))}</td><td>${escape(q.created_by || "")}</td>
        <td>${escape(when(q.creation_time_ms))}</td><td><button class="delete-queue">Delete</button></td></tr></table>`).querySelector("tr");
      row.querySelector(".queue-name").onclick = () => showQueue(q).catch(fail);
      row.querySelector(".delete-queue").onclick = async () => {
        if (!confirm(`Delete the queue ${q.name} with its items?`)) return;
        try { await mlflow3.post("/review-queues/delete", { queue_id: q.queue_id }); box.querySelector("#queue-detail").innerHTML = ""; await loadQueues(); } catch (e) { fail(e); }
      };
      return row;
    }));
  };

  box.querySelector("#schema-form").onsubmit = async (ev) => {
    ev.preventDefault();
    const f = ev.target, words = list(f.options.value);
    const input = f.kind.value === "pass_fail" ? { pass_fail: { positive_label: words[0] || "Pass", negative_label: words[1] || "Fail" } }
      : f.kind.value === "categorical" ? { categorical: { options: words } } : { [f.kind.value]: {} };
    try {
      await mlflow3.post("/label-schemas/create", { experiment_id: id, name: f.name.value, type: f.type.value, input });
      f.reset();
      await loadSchemas();
    } catch (e) { fail(e); }
  };
  box.querySelector("#queue-form").onsubmit = async (ev) => {
    ev.preventDefault();
    const f = ev.target;
    try {
      await mlflow3.post("/review-queues/create", { experiment_id: id, name: f.name.value, queue_type: "CUSTOM", users: list(f.users.value),
        schema_ids: schemas.map((s) => s.schema_id) });
      f.reset();
      await loadQueues();
    } catch (e) { fail(e); }
  };
  try {
    await loadSchemas();
    await loadQueues();
  } catch (e) { fail(e); }
}
