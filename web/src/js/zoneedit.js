// Editing an existing zone (supervisors, admins): kind, name, buffer, dwell and a weekly
// schedule, saved as a new version with PUT /zones/{id} (the whole definition, geometry
// unchanged); its versions from GET /zones/{id}/versions, oldest first.
import { call } from "./api.js";
import { t } from "./i18n.js";
import { escapeHtml, problemText } from "./text.js";
import { formatIn } from "./time.js";

const DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const TIME = "([01]?\\d|2[0-3]):[0-5]\\d|24:00"; // HH:MM, 00:00 to 24:00 (the API's)
const NUMBERS = ["buffer_m", "dwell_open_fixes", "dwell_open_s", "dwell_close_fixes", "dwell_close_s"];

export class ZoneEditor {
  /** ``els``: picker (select), form, schedule (container), addWindow (button), message, versions (list). */
  constructor({ els, zoneOf, onSaved }) {
    Object.assign(this, { els, zoneOf, onSaved });
    this.zones = new Map();
    this.current = null;
    els.picker.addEventListener("change", () => this.open(els.picker.value).catch((e) => this.fail(e)));
    els.addWindow.addEventListener("click", () => this.addWindow({ days: DAYS.slice(0, 5), start: "22:00", end: "24:00" }));
    els.form.addEventListener("submit", (ev) => { ev.preventDefault(); this.save().catch((e) => this.fail(e)); });
  }

  fail(e) { this.els.message.textContent = problemText(e); }

  /** The zones the map shows for the chosen subject (masked ones cannot be edited here). */
  setZones(zones) {
    this.zones = new Map(zones.filter((z) => z.geometry).map((z) => [z.id, z]));
    const picker = this.els.picker;
    const keep = picker.value;
    picker.replaceChildren(new Option(t("choose_zone"), ""));
    for (const z of this.zones.values()) picker.append(new Option(`${z.id} (${z.name})`, z.id));
    if (this.zones.has(keep)) picker.value = keep;
    else { this.current = null; this.els.form.hidden = true; this.els.versions.replaceChildren(); }
  }

  async open(zoneId) {
    this.els.message.textContent = "";
    if (!zoneId) { this.current = null; this.els.form.hidden = true; this.els.versions.replaceChildren(); return; }
    const z = await call(`/zones/${encodeURIComponent(zoneId)}`);
    this.current = z;
    const f = this.els.form;
    f.hidden = false;
    f.elements.name.value = z.name;
    f.elements.kind.value = z.kind;
    for (const k of NUMBERS) f.elements[k].value = z[k];
    this.els.schedule.replaceChildren();
    for (const w of z.schedule || []) this.addWindow(w);
    await this.loadVersions();
  }

  addWindow(w) {
    const row = document.createElement("div");
    row.className = "schedule-row";
    row.innerHTML = DAYS.map((d) => `<label class="check"><input type="checkbox" value="${d}"${w.days?.includes(d) ? " checked" : ""}>`
      + `${escapeHtml(t(`day_${d}`))}</label>`).join("")
      + `<input class="start" value="${escapeHtml(w.start)}" pattern="${TIME}" size="5" required aria-label="start">–`
      + `<input class="end" value="${escapeHtml(w.end)}" pattern="${TIME}" size="5" required aria-label="end">`
      + `<button type="button" class="remove">${escapeHtml(t("remove"))}</button>`;
    row.querySelector(".remove").addEventListener("click", () => row.remove());
    this.els.schedule.append(row);
  }

  readSchedule() {
    return [...this.els.schedule.querySelectorAll(".schedule-row")].map((row) => ({
      days: [...row.querySelectorAll("input[type=checkbox]:checked")].map((c) => c.value),
      start: row.querySelector(".start").value,
      end: row.querySelector(".end").value,
    }));
  }

  async save() {
    const z = this.current;
    if (!z) return;
    const f = this.els.form;
    const schedule = this.readSchedule();
    if (schedule.some((w) => !w.days.length)) { this.els.message.textContent = t("schedule_days_required"); return; }
    const body = { id: z.id, name: f.elements.name.value, kind: f.elements.kind.value, subject_id: z.subject_id,
      category: z.category, geometry: z.geometry, radius_m: z.radius_m, victim_sensitive: z.victim_sensitive, schedule };
    for (const k of NUMBERS) body[k] = Number(f.elements[k].value);
    const saved = await call(`/zones/${encodeURIComponent(z.id)}`, { method: "PUT", body });
    this.current = saved;
    this.els.message.textContent = `${t("zone_saved")} (v${saved.version})`;
    this.els.message.dataset.version = String(saved.version);
    await this.loadVersions();
    await this.onSaved?.(saved);
  }

  async loadVersions() {
    const z = this.current;
    const rows = await call(`/zones/${encodeURIComponent(z.id)}/versions`);
    const tz = this.zoneOf(z.subject_id);
    const list = this.els.versions;
    list.replaceChildren();
    for (const v of rows) {
      const li = document.createElement("li");
      li.dataset.version = String(v.version);
      li.textContent = `v${v.version} · ${v.change} · ${v.changed_by} · ${formatIn(v.valid_from, tz)} → `
        + `${v.valid_until ? formatIn(v.valid_until, tz) : t("current")} · ${t(v.kind)} · ${t("buffer")}: ${v.buffer_m}`
        + ` · ${t("schedule")} ${v.schedule.length ? v.schedule.map((w) => `${w.days.join(",")} ${w.start}–${w.end}`).join("; ") : t("always")}`;
      list.append(li);
    }
    list.dataset.count = String(rows.length);
  }
}
