// The supervisor's escalations view: the unit's open alerts that escalated (the API scopes
// GET /alerts to the caller's unit), newest escalation first, each with how long it has
// been unacknowledged; a click opens the alert.
import { call } from "./api.js";
import { t } from "./i18n.js";
import { escapeHtml } from "./text.js";
import { formatIn } from "./time.js";

/** "1 h 05 min" from seconds. */
export function duration(seconds) {
  const m = Math.max(0, Math.floor(seconds / 60));
  return m >= 60 ? `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, "0")} min` : `${m} min`;
}

export class Escalations {
  constructor({ list, zoneOf, onOpen }) {
    this.list = list;
    this.zoneOf = zoneOf;
    this.onOpen = onOpen;
    this.rows = [];
  }

  async load() {
    const rows = [];
    for (let before; ;) {
      const page = await call("/alerts", { query: { status: "open", limit: 1000, before_id: before } });
      rows.push(...page.filter((a) => a.escalation_level > 0));
      if (page.length < 1000) break;
      before = Math.min(...page.map((a) => a.id));
    }
    this.rows = rows.sort((a, b) => Date.parse(b.escalated_at) - Date.parse(a.escalated_at) || b.id - a.id);
    this.render();
  }

  render() {
    this.list.replaceChildren();
    if (!this.rows.length) { this.list.innerHTML = `<li class="empty">${escapeHtml(t("no_escalations"))}</li>`; return; }
    const now = Date.now();
    for (const a of this.rows) {
      const li = document.createElement("li");
      li.className = `sev-${a.severity} status-${a.status}`;
      li.dataset.id = a.id;
      const waited = duration((now - Date.parse(a.created_at)) / 1000);
      li.innerHTML = `<span class="sev"></span><span><span class="badge ${escapeHtml(a.severity)}">${escapeHtml(t(a.severity))}</span>
        <strong>${escapeHtml(a.kind.replaceAll("_", " "))}</strong> · ${escapeHtml(a.subject_id ?? a.device_id ?? "—")}<br>
        <span class="status">${escapeHtml(t("escalation_level"))} ${a.escalation_level} · ${escapeHtml(formatIn(a.escalated_at, this.zoneOf(a.subject_id)))}</span></span>
        <span class="status unacked">${escapeHtml(t("unacked_for"))}<br><strong>${escapeHtml(waited)}</strong></span>`;
      li.addEventListener("click", () => this.onOpen(a.id));
      this.list.append(li);
    }
  }
}
