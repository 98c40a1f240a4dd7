// Text helpers the pages share: HTML escaping, and an API error as one line for the user.
import { ApiError } from "./api.js";

export function escapeHtml(s) {
  return String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

/** ``409: ...``: the status and the problem's detail (a 422's field messages joined). */
export function problemText(e) {
  if (!(e instanceof ApiError)) return String(e?.message || e);
  const detail = e.problem?.detail;
  if (Array.isArray(detail)) return `${e.status}: ${detail.map((d) => d.msg || JSON.stringify(d)).join("; ")}`;
  return `${e.status}: ${e.message}`;
}
