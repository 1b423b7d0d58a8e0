// The page-building pieces every view shares: markup to an element, an API error as text and as the page's error
// line, and a key–value table. Every value goes through escape().
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
