// The officers' console: sign-in, the live alert feed with filters and history paging,
// the alert's actions, the map, the zone editor, the appeals queue, the supervisor's
// escalations, officer filter and statistics.
import { ApiError, call, signOut } from "./api.js";
import { escapeHtml, problemText } from "./text.js";
import { AppealsQueue } from "./appeals.js";
import { loadCard, renderCardHtml } from "./card.js";
import { barChart } from "./charts.js";
import { Escalations } from "./escalations.js";
import { Feed } from "./feed.js";
import { applyTo, language, setLanguage, t } from "./i18n.js";
import { MonitorMap } from "./map.js";
import { Replay } from "./replay.js";
import { ZoneEditor } from "./zoneedit.js";
import { wireSignin } from "./signin.js";
import { browserZone, formatIn, wallTimeToIso, zoneLabel } from "./time.js";

const $ = (sel) => document.querySelector(sel);
const PAGE = 100;
const DEFAULT_TZ = "Asia/Tashkent";
const state = { me: null, alerts: new Map(), subjects: new Map(), kinds: new Set(), selected: null, oldest: null,
                filter: {}, feed: null, map: null, draft: { points: [] }, config: {} };
window.nazoratConsole = state; // for the browser tests and for a curious officer's devtools

function zoneOf(subjectId) {
  if ($("#tzmode").value === "browser") return browserZone();
  return state.subjects.get(subjectId)?.timezone || DEFAULT_TZ;
}

function showTzLabel() {
  const sid = state.selected ? state.alerts.get(state.selected)?.subject_id : null;
  $("#tz-label").textContent = zoneLabel(zoneOf(sid));
}

function showError(where, e) {
  where.textContent = problemText(e);
}

// ---- sign-in and session -------------------------------------------------------------

const signin = wireSignin({
  start: () => start(),
  leave: () => {
    state.feed?.stop();
    state.feed = null;
    $("#feed-state").hidden = true;
    $("#whoami").textContent = "";
  },
});

async function start() {
  const me = await call("/auth/me");
  state.me = me;
  if (me.role === "appellant") { location.assign("/console/appeal.html"); return; }
  if (!["officer", "supervisor", "admin", "auditor"].includes(me.role)) {
    await signOut();
    signin.show(t("not_allowed"));
    return;
  }
  document.body.classList.add(`role-${me.role}`);
  $("#whoami").textContent = `${me.username} · ${me.role}`;
  const seesAlerts = me.role !== "auditor";
  $("#alerts-pane").hidden = !seesAlerts;
  $("#detail-pane").hidden = !seesAlerts;
  $("#stats-pane").hidden = !["supervisor", "admin", "auditor"].includes(me.role);
  if (!$("#stats-pane").hidden) loadStatistics();
  if (!seesAlerts) return;
  state.config = await (await fetch("/console/config.json")).json();
  state.map ??= new MonitorMap($("#map"), { tileUrl: state.config.tile_url, tileAttribution: state.config.tile_attribution });
  state.map.clickHandler = onMapClick;
  state.zoneEditor ??= new ZoneEditor({ zoneOf, onSaved: (z) => (z.subject_id ? showSubject(z.subject_id, state.selected) : null),
    els: { picker: $("#zone-pick"), form: $("#zone-edit-form"), schedule: $("#zone-schedule"),
           addWindow: $("#zone-add-window"), message: $("#zone-edit-message"), versions: $("#zone-versions") } });
  state.replay ??= new Replay({ map: state.map, zoneOf, els: { form: $("#replay-form"), play: $("#replay-play"),
    speed: $("#replay-speed"), slider: $("#replay-slider"), time: $("#replay-time"), message: $("#replay-message") } });
  await loadSubjects();
  if (me.role === "supervisor") {
    await loadOfficers();
    $("#escalations-pane").hidden = false;
    state.escalations ??= new Escalations({ list: $("#escalation-list"), zoneOf, onOpen: select });
    state.escalations.load().catch((e) => showError($("#escalation-list"), e));
  }
  $("#appeals-pane").hidden = !["officer", "supervisor", "admin"].includes(me.role);
  if (!$("#appeals-pane").hidden) {
    state.appeals ??= new AppealsQueue({ me, zoneOf, tileUrl: state.config.tile_url,
                                         tileAttribution: state.config.tile_attribution });
    state.appeals.load();
  }
  startFeed();
  // the history is read once the feed has its starting point: nothing falls between them
  await Promise.race([state.feed.ready, new Promise((ok) => setTimeout(ok, 5000))]);
  await reloadAlerts();
}

// ---- subjects ---------------------------------------------------------------------------

async function loadSubjects() {
  try {
    for (let offset = 0; ; offset += 1000) {
      const page = await call("/subjects", { query: { limit: 1000, offset } });
      for (const s of page) state.subjects.set(s.id, s);
      if (page.length < 1000) break;
    }
  } catch (e) { if (!(e instanceof ApiError && e.status === 403)) throw e; }
  const select = $("#filters [name=subject_id]");
  for (const s of [...state.subjects.values()].sort((a, b) => a.id.localeCompare(b.id))) {
    select.append(new Option(`${s.id}`, s.id));
  }
}

// the supervisor's officer filter: the unit's officers by name
async function loadOfficers() {
  const select = $("#filters [name=officer]");
  for (const o of await call(`/units/${encodeURIComponent(state.me.unit_id)}/officers`)) {
    select.append(new Option(o.username, String(o.id)));
  }
  $("#officer-filter").hidden = false;
}

// ---- the alert list: history pages and live events ---------------------------------------

function readFilter() {
  const f = new FormData($("#filters"));
  const tz = zoneOf(f.get("subject_id") || null);
  return { kind: f.get("kind") || null, status: f.get("status") || null, severity: f.get("severity") || null,
           subject_id: f.get("subject_id") || null, since: wallTimeToIso(f.get("since"), tz),
           until: wallTimeToIso(f.get("until"), tz),
           assigned_to: f.get("mine") ? state.me.account_id : (Number(f.get("officer")) || null) };
}

function matches(a) {
  const f = state.filter;
  if (f.kind && a.kind !== f.kind) return false;
  if (f.status && a.status !== f.status) return false;
  if (f.severity && a.severity !== f.severity) return false;
  if (f.subject_id && a.subject_id !== f.subject_id) return false;
  if (f.assigned_to && a.assigned_to !== f.assigned_to) return false;
  if (f.since && Date.parse(a.created_at) < Date.parse(f.since)) return false;
  if (f.until && Date.parse(a.created_at) >= Date.parse(f.until)) return false;
  return true;
}

function addKind(kind) {
  if (!kind || state.kinds.has(kind)) return;
  state.kinds.add(kind);
  $("#filters [name=kind]").append(new Option(kind.replaceAll("_", " "), kind));
}

async function loadPage(before) {
  const page = await call("/alerts", { query: { ...state.filter, limit: PAGE, before_id: before } });
  for (const a of page) { state.alerts.set(a.id, { ...state.alerts.get(a.id), ...a }); addKind(a.kind); }
  if (page.length) state.oldest = Math.min(...page.map((a) => a.id));
  $("#older").disabled = page.length < PAGE;
  render();
}

async function reloadAlerts() {
  state.filter = readFilter();
  state.alerts.clear();
  state.oldest = null;
  // the rows of the previous filter go at once: never shown under the new one
  const list = $("#alert-list");
  list.dataset.loading = "1";
  list.innerHTML = `<li class="empty">${escapeHtml(t("loading"))}</li>`;
  try {
    await loadPage(undefined);
  } finally {
    delete list.dataset.loading;
    render();
  }
}

$("#filters").addEventListener("submit", (ev) => {
  ev.preventDefault();
  reloadAlerts().catch((e) => showError($("#action-error"), e));
});
// choosing a subject shows its zones and track (and is where a new zone goes)
$("#filters [name=subject_id]").addEventListener("change", (ev) => {
  if (ev.target.value) showSubject(ev.target.value, null).catch((e) => showError($("#action-error"), e));
});
$("#older").addEventListener("click", () => loadPage(state.oldest).catch((e) => showError($("#action-error"), e)));
$("#tzmode").addEventListener("change", () => { render(); renderDetail(); renderCard(); state.replay?.renderTime(); });

function onFeedEvent(event) {
  const a = event.alert;
  const known = state.alerts.get(a.id);
  addKind(a.kind);
  if (state.escalations && (a.escalation_level > 0 || state.escalations.rows.some((r) => r.id === a.id))) {
    state.escalations.load().catch((e) => showError($("#escalation-list"), e));
  }
  if (!known && !matches(a)) return;
  state.alerts.set(a.id, { ...known, ...a, fresh: event.action === "raised" });
  if (event.action === "raised" && a.severity === "critical") cueCritical(a);
  render();
  if (state.selected === a.id) renderDetail();
}

function cueCritical(a) {
  const banner = $("#critical-banner");
  banner.hidden = false;
  banner.textContent = `${t("critical")}: ${a.kind.replaceAll("_", " ")} · ${a.subject_id ?? a.device_id}`;
  clearTimeout(cueCritical.timer);
  cueCritical.timer = setTimeout(() => { banner.hidden = true; }, 15000);
  try { // a short tone, made here (no sound file to fetch)
    const ctx = (cueCritical.ctx ??= new AudioContext());
    const osc = ctx.createOscillator();
    osc.frequency.value = 880;
    osc.connect(ctx.destination);
    osc.start();
    osc.stop(ctx.currentTime + 0.25);
  } catch { /* no audio device */ }
}

function startFeed() {
  state.feed?.stop();
  state.feed = new Feed({
    onEvent: onFeedEvent,
    onState: (s) => {
      const el = $("#feed-state");
      el.hidden = false;
      el.className = `feed-state ${s}`;
      el.textContent = t(`feed_${s}`);
      el.dataset.state = s;
      if (s === "expired") signin.show(t("session_expired"));
    },
  });
  state.feed.start();
}

function render() {
  const list = $("#alert-list");
  if (list.dataset.loading) return; // reloadAlerts renders once its page is in
  const rows = [...state.alerts.values()].filter(matches).sort((a, b) => b.id - a.id);
  list.replaceChildren();
  if (!rows.length) { list.innerHTML = `<li class="empty">${escapeHtml(t("no_alerts"))}</li>`; }
  for (const a of rows) {
    const li = document.createElement("li");
    li.className = `sev-${a.severity} status-${a.status}${a.fresh ? " fresh" : ""}${state.selected === a.id ? " selected" : ""}`;
    li.dataset.id = a.id;
    li.dataset.status = a.status;
    const dist = a.distance_m != null ? ` · ${Math.round(a.distance_m)} m` : "";
    li.innerHTML = `<span class="sev"></span><span><span class="badge ${escapeHtml(a.severity)}">${escapeHtml(t(a.severity))}</span>
      <strong>${escapeHtml(a.kind.replaceAll("_", " "))}</strong><br>
      <span class="status">${escapeHtml([a.subject_id ?? "—", a.zone_id].filter(Boolean).join(" · "))}${escapeHtml(dist)}</span></span>
      <span class="status">${escapeHtml(formatIn(a.created_at, zoneOf(a.subject_id)))}<br>${escapeHtml(t(a.status))}</span>`;
    if (a.fix_time && a.subject_id) {
      const jump = document.createElement("button");
      jump.type = "button";
      jump.className = "jump";
      jump.textContent = `▶ ${t("jump_replay")}`;
      jump.addEventListener("click", (ev) => { ev.stopPropagation(); jumpToAlert(a.id).catch((e) => showError($("#action-error"), e)); });
      li.append(jump);
    }
    li.addEventListener("click", () => select(a.id));
    list.append(li);
    a.fresh = false;
  }
  showTzLabel();
}

// ---- the selected alert: detail, actions, map --------------------------------------------

async function select(id) {
  state.selected = id;
  render();
  renderDetail();
  $("#action-error").textContent = "";
  const a = state.alerts.get(id);
  try {
    const full = await call(`/alerts/${id}`);
    state.alerts.set(id, { ...a, ...full });
    renderDetail();
    await showSubject(full.subject_id, id);
  } catch (e) { showError($("#action-error"), e); }
}

function renderDetail() {
  const a = state.alerts.get(state.selected);
  if (!a) return;
  const tz = zoneOf(a.subject_id);
  const row = (k, v) => `<dt>${escapeHtml(t(k))}</dt><dd>${escapeHtml(v ?? "—")}</dd>`;
  $("#detail").innerHTML = `<h3><span class="badge ${escapeHtml(a.severity)}">${escapeHtml(t(a.severity))}</span>
    #${a.id} ${escapeHtml(a.kind.replaceAll("_", " "))} — <span id="detail-status">${escapeHtml(t(a.status))}</span></h3>
    <dl>${row("subject", a.subject_id)}${row("device", a.device_id)}${row("zone", a.zone_id)}
    ${row("distance", a.distance_m != null ? `${Math.round(a.distance_m)} m` : null)}
    ${row("created", `${formatIn(a.created_at, tz)} (${tz})`)}
    ${a.resolution ? row("outcome", t(a.resolution)) : ""}${a.resolution_note ? row("note", a.resolution_note) : ""}</dl>`;
  const acts = !["auditor"].includes(state.me.role);
  $("#actions").hidden = !acts;
  $("#ack-form button").disabled = a.status !== "open";
  $("#resolve-form button").disabled = a.status === "resolved";
  $("#assign-me").disabled = a.status === "resolved";
  showTzLabel();
}

/** "Jump to alert": the alert selected, the replay set around its fix and seeked to it. */
async function jumpToAlert(id) {
  await select(id);
  const a = state.alerts.get(id);
  $("#replay").open = true;
  await state.replay.jumpTo(a.subject_id, a.fix_time);
  $("#replay").scrollIntoView({ block: "nearest" });
}

function renderCard() {
  if (!state.card) return;
  const { subjectId, last } = state.card;
  const s = state.subjects.get(subjectId);
  const tz = zoneOf(subjectId);
  const age = last ? Math.round((Date.now() - Date.parse(last.device_time)) / 60000) : null;
  const info = $("#subject-info");
  if (state.card.data?.subjectId === subjectId) {
    info.innerHTML = renderCardHtml(state.card.data, { tz, last });
    info.dataset.loaded = subjectId;
  }
  $("#subject-card").textContent = `${t("subject")}: ${subjectId}${s?.full_name ? ` (${s.full_name})` : ""} · ${zoneLabel(tz)}`
    + ` · ${t("last_fix")}: ${last ? `${formatIn(last.device_time, tz)} (${age} min)` : "—"}`;
}

async function showSubject(subjectId, alertId) {
  const map = state.map;
  if (!subjectId) { map.setZones([]); map.setTrackCollection(null); }
  else {
    const until = new Date(Date.now() + 60_000);
    const since = new Date(until.getTime() - 24 * 3600 * 1000);
    const [zones, track] = await Promise.all([
      call("/zones", { query: { subject_id: subjectId } }),
      call(`/subjects/${encodeURIComponent(subjectId)}/track`,
           { query: { since: since.toISOString(), until: until.toISOString(), limit: 5000 } }),
    ]);
    const shown = zones.filter((z) => z.subject_id === subjectId || z.subject_id === null);
    map.setZones(shown);
    state.zoneEditor.setZones(shown.filter((z) => z.subject_id === subjectId));
    map.setTrackCollection(track);
    const fixes = track.features.filter((f) => f.properties.kind === "fix");
    const last = fixes.reduce((a, f) => (!a || Date.parse(f.properties.device_time) > Date.parse(a.device_time) ? f.properties : a), null);
    state.card = { subjectId, last };
    renderCard();
    loadCard(subjectId).then((data) => {
      if (state.card?.subjectId !== subjectId) return; // another subject chosen meanwhile
      state.card.data = data;
      renderCard();
    }).catch((e) => showError($("#subject-info"), e));
    state.replay.setSubject(subjectId);
  }
  map.setEvidence(alertId ? await call(`/alerts/${alertId}/evidence`) : null);
  map.invalidate();
  map.fit();
  $("#map").dataset.loaded = `${subjectId ?? ""}:${alertId ?? ""}`;
}

async function act(path, body) {
  const err = $("#action-error");
  err.textContent = "";
  try {
    const row = await call(`/alerts/${state.selected}/${path}`, { method: "POST", body });
    state.alerts.set(row.id, { ...state.alerts.get(row.id), ...row });
    render();
    renderDetail();
    return true;
  } catch (e) { showError(err, e); return false; }
}

$("#ack-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const note = ev.target.note.value.trim();
  act("acknowledge", note ? { note } : undefined).then((ok) => { if (ok) ev.target.reset(); });
});
$("#assign-me").addEventListener("click", () => act("assign", { officer_id: state.me.account_id }));
$("#assign-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  act("assign", { officer_id: Number(ev.target.officer_id.value) });
});
$("#resolve-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const note = ev.target.note.value.trim();
  if (!note) { $("#action-error").textContent = t("note_required"); ev.target.note.focus(); return; }
  act("resolve", { outcome: ev.target.outcome.value, note }).then((ok) => { if (ok) ev.target.reset(); });
});

// ---- the zone editor: click the map, preview, save through POST /zones ---------------------

function draftShape() {
  const f = $("#zone-form");
  return { shape: f.shape.value, kind: f.kind.value, radius: Number(f.radius.value) || 1, points: state.draft.points };
}

function onMapClick(latlng) {
  if (!$("#zone-editor").open) return;
  const d = draftShape();
  state.draft.points = d.shape === "circle" ? [[latlng.lat, latlng.lng]] : [...state.draft.points, [latlng.lat, latlng.lng]];
  state.map.drawDraft(draftShape());
}

for (const name of ["shape", "kind", "radius"]) {
  $(`#zone-form [name=${name}]`).addEventListener("input", () => state.map?.drawDraft(draftShape()));
}
$("#zone-clear").addEventListener("click", () => { state.draft.points = []; state.map.drawDraft(draftShape()); });

$("#zone-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = ev.target;
  const msg = $("#zone-message");
  const d = draftShape();
  const subject = state.alerts.get(state.selected)?.subject_id || $("#filters [name=subject_id]").value;
  const lonlat = (p) => [Number(p[1].toFixed(7)), Number(p[0].toFixed(7))];
  let geometry, radius_m = null;
  if (d.shape === "circle" && d.points.length === 1) { geometry = { type: "Point", coordinates: lonlat(d.points[0]) }; radius_m = d.radius; }
  else if (d.shape === "polygon" && d.points.length >= 3) {
    const ring = d.points.map(lonlat);
    geometry = { type: "Polygon", coordinates: [[...ring, ring[0]]] };
  } else { msg.textContent = t("draw_hint"); return; }
  try {
    await call("/zones", { method: "POST", body: { id: f.id.value, name: f.name.value, kind: d.kind, subject_id: subject || null,
      geometry, radius_m, buffer_m: Number(f.buffer.value) || 0 } });
    msg.textContent = t("zone_saved");
    msg.dataset.saved = f.id.value;
    state.draft.points = [];
    state.map.drawDraft(draftShape());
    if (subject) await showSubject(subject, state.selected);
  } catch (e) { showError(msg, e); }
});

// ---- the supervisor's statistics ----------------------------------------------------------

async function loadStatistics() {
  const box = $("#charts");
  try {
    const rows = await call("/statistics/alerts", { query: { group_by: $("#stats-group").value } });
    box.replaceChildren(
      barChart(t("total"), rows.map((r) => ({ label: r.key, value: r.total }))),
      barChart(t("ack_p50"), rows.map((r) => ({ label: r.key, value: r.ack_p50_s === null ? null : r.ack_p50_s / 60 })),
               { format: (v) => v.toFixed(1), color: "#ef6c00" }),
      barChart(t("false_rate"), rows.map((r) => ({ label: r.key, value: r.false_alarm_rate })),
               { format: (v) => `${Math.round(v * 100)} %`, color: "#6a1b9a" }),
    );
  } catch (e) { showError(box, e); }
}
$("#stats-group").addEventListener("change", loadStatistics);

// ---- language and start -----------------------------------------------------------------

$("#lang").value = language();
$("#lang").addEventListener("change", (ev) => {
  setLanguage(ev.target.value);
  render();
  renderDetail();
  renderCard();
  state.replay?.renderTime();
  state.map?.renderLegend();
  if (!$("#stats-pane").hidden) loadStatistics();
  state.escalations?.render();
  if (state.appeals && !$("#appeals-pane").hidden) state.appeals.relabel();
});
setLanguage(language());
applyTo(document);

signin.begin();
