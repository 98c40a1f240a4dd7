// The console's appeals queue (docs/appeals.md): the appeals the officer may see with
// their deadlines and overdue marks; a supervisor's overdue list and the reviewer's
// assignment; the evidence bundle captured at filing beside the appeal (its own map);
// the assigned reviewer's decision with a required reasoned text.
import { call } from "./api.js";
import { escapeHtml, problemText } from "./text.js";
import { applyTo, t } from "./i18n.js";
import { MonitorMap } from "./map.js";
import { formatIn } from "./time.js";

const $ = (sel) => document.querySelector(sel);
const OPEN = new Set(["submitted", "under_review"]);

export class AppealsQueue {
  /** ``me``: GET /auth/me; ``zoneOf(subjectId)``: the time zone times are shown in. */
  constructor({ me, zoneOf, tileUrl, tileAttribution }) {
    this.me = me;
    this.zoneOf = zoneOf;
    this.tiles = { tileUrl, tileAttribution };
    this.appeals = new Map();
    this.selected = null;
    this.map = null;
    this.manager = ["supervisor", "admin"].includes(me.role);
    $("#appeal-state").addEventListener("change", () => this.load());
    $("#appeals-refresh").addEventListener("click", () => this.load());
    $("#reviewer-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      this.assign(Number(ev.target.reviewer_id.value));
    });
    $("#review-myself").addEventListener("click", () => this.assign(this.me.account_id));
    $("#extend-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      const reason = ev.target.reason.value.trim();
      if (!reason) { $("#appeal-error").textContent = t("reason_required"); ev.target.reason.focus(); return; }
      this.step("extend", { reason, until: ev.target.until.value || null }).then((ok) => { if (ok) ev.target.reset(); });
    });
    $("#study").addEventListener("click", () => this.step("study"));
    $("#decide-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      const reason = ev.target.reason.value.trim();
      if (!reason) { $("#appeal-error").textContent = t("reason_required"); ev.target.reason.focus(); return; }
      this.step("decide", { decision: ev.target.decision.value, reason }).then((ok) => { if (ok) ev.target.reset(); });
    });
  }

  lang() { return document.documentElement.lang === "en" ? "en" : "uz-Latn"; }

  async load() {
    const err = $("#appeal-error");
    try {
      const chosen = $("#appeal-state").value;
      const rows = await call("/appeals", { query: { lang: this.lang(), limit: 500,
                                                     state: chosen === "open" ? null : chosen } });
      this.appeals = new Map(rows.filter((a) => chosen !== "open" || OPEN.has(a.state)).map((a) => [a.id, a]));
      this.renderList($("#appeal-list"), [...this.appeals.values()]);
      if (this.manager) {
        const late = await call("/appeals/overdue", { query: { lang: this.lang() } });
        this.renderList($("#overdue-list"), late, t("no_overdue"));
      }
      $("#appeals-pane").dataset.loaded = String(Date.now());
      if (this.selected) await this.select(this.selected);
    } catch (e) { err.textContent = problemText(e); }
  }

  renderList(list, rows, empty = t("no_appeals_queue")) {
    list.replaceChildren();
    if (!rows.length) list.innerHTML = `<li class="empty">${escapeHtml(empty)}</li>`;
    for (const a of rows) {
      const li = document.createElement("li");
      li.dataset.id = a.id;
      li.dataset.state = a.state;
      li.className = `state-${a.state}${a.overdue ? " overdue" : ""}${this.selected === a.id ? " selected" : ""}`;
      const what = a.track === "contest" ? `${t("kind_contest")} #${a.alert_id}` : t(`kind_${a.kind}`);
      li.innerHTML = `<span><strong>#${a.id}</strong> ${escapeHtml(what)}<br>
          <span class="status">${escapeHtml(a.subject_id)} · ${escapeHtml(t(`state_${a.state}`))}
          ${a.reviewer_id ? ` · ${escapeHtml(t("reviewer"))} ${a.reviewer_id}` : ""}</span></span>
        <span class="status">${escapeHtml(t("due_by"))}<br><span class="due">${escapeHtml(a.due_on)}</span>
          ${a.overdue ? `<span class="badge critical">${escapeHtml(t("overdue_mark"))}</span>` : ""}
          ${a.decided_late ? `<span class="badge high">${escapeHtml(t("decided_late"))}</span>` : ""}</span>`;
      li.addEventListener("click", () => this.select(a.id));
      list.append(li);
    }
  }

  async select(id) {
    this.selected = id;
    for (const li of document.querySelectorAll(".appeal-list li[data-id]")) {
      li.classList.toggle("selected", Number(li.dataset.id) === id);
    }
    $("#appeal-error").textContent = "";
    try {
      const a = await call(`/appeals/${id}`, { query: { lang: this.lang() } });
      const bundle = a.track === "contest" ? await call(`/appeals/${id}/evidence`) : null;
      if (this.selected !== id) return; // another appeal was chosen meanwhile
      this.appeals.set(id, { ...this.appeals.get(id), ...a });
      this.renderDetail(a);
      this.showEvidence(a, bundle);
    } catch (e) { $("#appeal-error").textContent = problemText(e); }
  }

  renderDetail(a) {
    const tz = this.zoneOf(a.subject_id);
    const row = (k, v) => `<dt>${escapeHtml(t(k))}</dt><dd>${escapeHtml(v ?? "—")}</dd>`;
    const steps = a.events.map((e) => `<li>${escapeHtml(formatIn(e.at, tz))} · ${escapeHtml(e.actor)}: ${escapeHtml(e.text)}
        ${e.note ? `<br><em>${escapeHtml(e.note)}</em>` : ""}</li>`).join("");
    const files = a.attachments.map((f) => `<li>${escapeHtml(f.filename)} (${escapeHtml(f.media_type)},
        ${Math.ceil(f.size_bytes / 1024)} KiB, sha256 ${escapeHtml(f.sha256.slice(0, 12))}…)</li>`).join("");
    const what = a.track === "contest" ? `${t("kind_contest")} #${a.alert_id}` : t(`kind_${a.kind}`);
    $("#appeal-detail").innerHTML = `<h3>#${a.id} ${escapeHtml(what)} — <span id="appeal-status">${escapeHtml(t(`state_${a.state}`))}</span>
        ${a.overdue ? `<span class="badge critical">${escapeHtml(t("overdue_mark"))}</span>` : ""}</h3>
      <dl>${row("subject", a.subject_id)}${row("submitted_at", `${formatIn(a.submitted_at, tz)} (${tz})`)}
        ${row("due_by", a.due_on)}${row("reviewer", a.reviewer_id)}
        ${a.decision_reason ? row("decision", `${t(`state_${a.state}`)}: ${a.decision_reason}`) : ""}</dl>
      <h4>${escapeHtml(t("appellant_text"))}</h4><p class="appellant-text">${escapeHtml(a.text)}</p>
      ${files ? `<h4>${escapeHtml(t("attachments"))}</h4><ul>${files}</ul>` : ""}
      <h4>${escapeHtml(t("steps"))}</h4><ul class="steps">${steps}</ul>`;
    const open = OPEN.has(a.state);
    $("#reviewer-form").hidden = !(this.manager && open);
    const mine = a.reviewer_id !== null && a.reviewer_id === this.me.account_id;
    // ZRU-445: a general appeal's term extended once (supervisors); further study (also the reviewer)
    $("#extend-form").hidden = !(open && a.track === "general" && (this.manager || mine));
    $("#extend-form [type=submit]").hidden = !this.manager || Boolean(a.extended_at);
    for (const el of $("#extend-form").querySelectorAll("label")) el.hidden = !this.manager || Boolean(a.extended_at);
    $("#study").hidden = a.needs_study || Boolean(a.extended_at);
    $("#decide-form").hidden = !(open && mine);
    $("#decide-form [name=decision] option[value=answered]").hidden = a.track === "contest";
    if (a.track === "contest" && $("#decide-form [name=decision]").value === "answered") $("#decide-form [name=decision]").value = "upheld";
    if (open && a.reviewer_id && !mine) $("#appeal-error").textContent = t("only_reviewer");
  }

  showEvidence(a, bundle) {
    $("#appeal-map").hidden = !bundle; // a general appeal has no evidence bundle
    this.map ??= new MonitorMap($("#appeal-map"), this.tiles);
    const features = bundle?.features || [];
    const zones = features.filter((f) => f.properties?.kind === "zone").map((f) => ({
      ...f.properties, kind: f.properties.zone_kind, geometry: f.geometry }));
    this.map.setZones(zones);
    this.map.setTrackCollection(null);
    this.map.setEvidence(bundle);
    this.map.invalidate();
    this.map.fit();
    const fixes = features.filter((f) => f.properties?.kind === "fix");
    const tz = this.zoneOf(a.subject_id);
    $("#appeal-evidence").innerHTML = bundle ? `<h4>${escapeHtml(t("evidence"))}
        (${escapeHtml(formatIn(bundle.captured_at, tz))}): ${fixes.length} ${escapeHtml(t("evidence_fixes"))}</h4>
      <ul>${fixes.map((f) => `<li${f.properties.role === "alert_fix" ? ' class="alert-fix"' : ""}>
        ${escapeHtml(formatIn(f.properties.device_time, tz))} ±${escapeHtml(f.properties.accuracy_m ?? "?")} m
        ${escapeHtml(f.properties.source ?? "")}</li>`).join("")}</ul>` : "";
    $("#appeals-pane").dataset.selected = String(a.id);
  }

  async assign(reviewerId) {
    if (!reviewerId) return;
    await this.step("assign", { reviewer_id: reviewerId });
  }

  async step(path, body) {
    const err = $("#appeal-error");
    err.textContent = "";
    try {
      await call(`/appeals/${this.selected}/${path}`, { method: "POST", body, query: { lang: this.lang() } });
      await this.load();
      return true;
    } catch (e) { err.textContent = problemText(e); return false; }
  }

  relabel() {
    applyTo($("#appeals-pane"));
    this.map?.renderLegend();
    return this.load();
  }
}
