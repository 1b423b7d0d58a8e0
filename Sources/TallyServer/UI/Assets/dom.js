// The page-building pieces every view shares: markup to an element, an API error as text and as the page's error
// line, a key–value table, and a search table's sortable head. Every value goes through escape().
import { ApiError } from "./api.js";
import { escape } from "./chart.js";

/// The first element of `html` (markup the caller has escaped).
export const h = (html) => { const t = document.createElement("template"); t.innerHTML = html.trim(); return t.content.firstElementChild; };
/// An error as the UI shows it: `CODE: message` for the API's, the text of any other.
export const message = (e) => (e instanceof ApiError ? `${e.code}: ${e.message}` : String(e));
/// Replaces `where`'s content with the error, announced to screen readers.
export const showError = (where, e) => { where.innerHTML = `<p class="error" role="alert">${escape(message(e))}</p>`; };
/// A two-column table of `[key, value]` rows (a missing value as empty).
export const kv = (rows) => `<table class="kv">${rows.map(([k, v]) => `<tr><td>${escape(k)}</td><td>${escape(v ?? "")}</td></tr>`).join("")}</table>`;

/// A table head over `cols` ([label, order key or null]) whose keyed columns sort the search: a click (or Enter, Space)
/// orders by the column, again the other way. `state.order` is "key ASC|DESC"; a change goes back to the first page
/// (`state.tokens`, `state.page`) and calls `reload`.
export function sortableHead(table, cols, state, reload) {
  table.tHead.innerHTML = "<tr>" + cols.map(([label, key]) => {
    if (!key) return `<th>${escape(label)}</th>`;
    const sort = state.order.startsWith(key + " ") ? (state.order.endsWith("DESC") ? "descending" : "ascending") : "none";
    return `<th class="sortable" tabindex="0" data-key="${key}" aria-sort="${sort}">${escape(label)}</th>`;
  }).join("") + "</tr>";
  table.tHead.querySelectorAll("th.sortable").forEach((th) => {
    const go = () => {
      state.order = state.order === th.dataset.key + " ASC" ? th.dataset.key + " DESC" : th.dataset.key + " ASC";
      state.tokens = [null]; state.page = 0; reload();
    };
    th.onclick = go;
    th.onkeydown = (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); go(); } };
  });
}
