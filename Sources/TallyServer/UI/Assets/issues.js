// MLflow 3 issues in the UI: an experiment's issues (what `mlflow.genai.discover_issues` found, or people filed), the
// worst first, each with its status, how many traces it touches (a link to those traces), its categories and root
// causes and the run that found it; a status filter, pages, and resolving, rejecting or reopening one.
import { mlflow3 } from "./api.js";
import { escape } from "./chart.js";
import { h, showError } from "./dom.js";

const when = (msValue) => (msValue ? new Date(Number(msValue)).toISOString().replace("T", " ").replace(/\.\d+Z$/, "") : "");
/// What a status button does to an issue in `status`: [label, new status].
const actions = (status) => (status === "pending" ? [["Resolve", "resolved"], ["Reject", "rejected"]] : [["Reopen", "pending"]]);

/// The issues of experiment `exp` (its `experiments/get` entity), at `#/experiments/<id>/issues` (MLflow's address).
export async function issuesPage(main, exp, setCrumbs) {
  const id = exp.experiment_id, expHref = `#/experiments/${encodeURIComponent(id)}`;
  setCrumbs([["Experiments", "#/"], [exp.name, expHref], ["Issues"]]);
  const state = { status: "", tokens: [null], page: 0 };
  main.innerHTML = "";
  const box = h(`<section>
    <h1>${escape(exp.name)}: issues</h1>
    <div class="toolbar">
      <label for="issue-status">Status</label>
      <select id="issue-status"><option value="">any</option><option>pending</option><option>resolved</option><option>rejected</option></select>
      <span id="issue-count" class="muted"></span>
    </div>
    <div id="issue-error"></div>
    <div class="tablewrap"><table id="issue-table"><thead><tr><th>Severity</th><th>Issue</th><th>Status</th><th class="num">Traces</th>
      <th>Categories</th><th>Root causes</th><th>Found by</th><th>Created</th><th></th></tr></thead><tbody></tbody></table></div>
    <div class="pager"><button id="issue-prev">Previous</button><span id="issue-page" class="muted"></span><button id="issue-next">Next</button></div>
  </section>`);
  main.append(box);
  const err = box.querySelector("#issue-error"), body = box.querySelector("#issue-table tbody");

  const load = async () => {
    err.innerHTML = "";
    try {
      const answer = await mlflow3.post("/issues/search", {
        experiment_id: id, include_trace_count: true, max_results: 50, page_token: state.tokens[state.page] || undefined,
        filter_string: state.status ? `status = '${state.status}'` : undefined,
      });
      const issues = answer.issues || [];
      state.tokens[state.page + 1] = answer.next_page_token || null;
      body.replaceChildren(...issues.map((i) => {
        const traces = `${expHref}/traces?filter=${encodeURIComponent(`issue.id = '${i.issue_id}'`)}`;
        const row = h(`<table><tr data-issue="${escape(i.issue_id)}">
          <td class="severity-${escape(i.severity || "none")}">${escape((i.severity || "").replace(/_/g, " "))}</td>
          <td><strong>${escape(i.name)}</strong><div class="muted wrap">${escape(i.description)}</div></td>
          <td class="issue-status">${escape(i.status)}</td>
          <td class="num"><a class="issue-traces" href="${traces}">${escape(String(i.trace_count ?? 0))}</a></td>
          <td>${(i.categories || []).map((c) => `<span class="pill">${escape(c)}</span>`).join(" ")}</td>
          <td class="wrap">${escape((i.root_causes || []).join("; "))}</td>
          <td>${i.source_run_id ? `<a href="#/runs/${encodeURIComponent(i.source_run_id)}">${escape(i.source_run_id.slice(0, 8))}</a>` : escape(i.created_by || "")}</td>
          <td>${escape(when(i.created_timestamp))}</td>
          <td>${actions(i.status).map(([label, to]) => `<button data-to="${to}">${label}</button>`).join(" ")}</td>
        </tr></table>`).querySelector("tr");
        for (const b of row.querySelectorAll("button")) {
          b.onclick = async () => {
            try {
              await mlflow3.patch(`/issues/${encodeURIComponent(i.issue_id)}`, { issue_id: i.issue_id, status: b.dataset.to });
              await load();
            } catch (e) { showError(err, e); }
          };
        }
        return row;
      }));
      if (!issues.length) body.replaceChildren(h(`<table><tr><td colspan="9" class="muted">No issues${state.status ? ` ${state.status}` : ""}.</td></tr></table>`).querySelector("tr"));
      box.querySelector("#issue-count").textContent = `${issues.length} shown`;
      box.querySelector("#issue-page").textContent = `page ${state.page + 1}`;
      box.querySelector("#issue-prev").disabled = state.page === 0;
      box.querySelector("#issue-next").disabled = !state.tokens[state.page + 1];
    } catch (e) { showError(err, e); }
  };
  box.querySelector("#issue-status").onchange = (ev) => { state.status = ev.target.value; state.tokens = [null]; state.page = 0; load(); };
  box.querySelector("#issue-prev").onclick = () => { state.page -= 1; load(); };
  box.querySelector("#issue-next").onclick = () => { state.page += 1; load(); };
  await load();
}
