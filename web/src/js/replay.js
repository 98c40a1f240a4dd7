// Track replay: a time range (at most the API's 31 days) read from GET /subjects/{id}/track,
// a slider over that range, play/pause at 1x..64x simulated time. The marker stands on the
// last fix at or before the replay clock (no position is invented between fixes) and its
// time is shown in the subject's time zone.
import { call } from "./api.js";
import { t } from "./i18n.js";
import { problemText } from "./text.js";
import { formatIn, wallTimeToIso } from "./time.js";

export const MAX_SPAN_MS = 31 * 24 * 3600 * 1000; // the API's longest track range
const TICK_MS = 100;

/** A Date as a datetime-local value ("2026-12-01T17:00") in ``tz``. */
export function toWallTime(ms, tz) {
  return formatIn(new Date(ms).toISOString(), tz).replace(" ", "T").slice(0, 16);
}

export class Replay {
  /** ``els``: form, play, speed, slider, time, message; ``map``: a MonitorMap; ``zoneOf(subjectId)``. */
  constructor({ els, map, zoneOf }) {
    Object.assign(this, { els, map, zoneOf });
    this.subjectId = null;
    this.fixes = [];
    this.clock = null;
    this.start = null;
    this.timer = null;
    els.form.addEventListener("submit", (ev) => { ev.preventDefault(); this.loadForm().catch(() => {}); });
    els.play.addEventListener("click", () => (this.timer ? this.pause() : this.play()));
    els.slider.addEventListener("input", () => this.seek(this.start + Number(els.slider.value) * 1000));
  }

  /** The subject whose track is replayed; the form gets the last 24 h in its time zone. */
  setSubject(subjectId) {
    if (subjectId === this.subjectId) return;
    this.pause();
    this.subjectId = subjectId;
    this.fixes = [];
    this.clock = null;
    this.start = null;
    this.end = null;
    this.els.slider.max = "0";
    this.map.setReplayMarker(null);
    const tz = this.zoneOf(subjectId);
    const now = Date.now() + 60_000;
    this.els.form.since.value = toWallTime(now - 24 * 3600 * 1000, tz);
    this.els.form.until.value = toWallTime(now, tz);
    this.renderTime();
  }

  async loadForm() {
    const tz = this.zoneOf(this.subjectId);
    const since = wallTimeToIso(this.els.form.since.value, tz);
    const until = wallTimeToIso(this.els.form.until.value, tz);
    return this.load(since, until);
  }

  /** Reads the track for [since, until) (ISO strings); refuses a range the API would. */
  async load(since, until, seekTo = null) {
    const msg = this.els.message;
    msg.textContent = "";
    if (!this.subjectId) { msg.textContent = t("replay_pick_subject"); throw new Error("no subject"); }
    const a = Date.parse(since), b = Date.parse(until);
    if (!(b > a)) { msg.textContent = t("replay_bad_range"); throw new Error("range"); }
    if (b - a > MAX_SPAN_MS) { msg.textContent = t("replay_too_long"); throw new Error("range"); }
    this.pause();
    let track;
    try {
      track = await call(`/subjects/${encodeURIComponent(this.subjectId)}/track`,
                         { query: { since: new Date(a).toISOString(), until: new Date(b).toISOString(), limit: 50000 } });
    } catch (e) { msg.textContent = problemText(e); throw e; }
    this.fixes = track.features.filter((f) => f.properties?.kind === "fix" && f.geometry)
      .map((f) => ({ ms: Date.parse(f.properties.device_time), iso: f.properties.device_time,
                     latlng: [f.geometry.coordinates[1], f.geometry.coordinates[0]], acc: f.properties.accuracy_m }))
      .sort((x, y) => x.ms - y.ms);
    this.map.setTrackCollection(track);
    this.start = a;
    this.end = b;
    this.els.slider.max = String(Math.ceil((b - a) / 1000));
    this.els.form.dataset.loaded = `${this.subjectId}:${this.fixes.length}`;
    if (!this.fixes.length) msg.textContent = t("replay_no_fixes");
    this.seek(seekTo ?? (this.fixes[0]?.ms ?? a));
    return this.fixes.length;
  }

  /** Sets the range around an alert's fix (30 min either side) and seeks to it. */
  async jumpTo(subjectId, fixIso) {
    this.setSubject(subjectId);
    const at = Date.parse(fixIso);
    const tz = this.zoneOf(subjectId);
    const since = at - 30 * 60_000, until = at + 30 * 60_000;
    this.els.form.since.value = toWallTime(since, tz);
    this.els.form.until.value = toWallTime(until + 60_000, tz); // whole minutes: keep the end past it
    await this.load(new Date(since).toISOString(), new Date(until).toISOString(), at);
  }

  /** The fix shown at replay time ``ms``: the last at or before it (else the first). */
  fixAt(ms) {
    let lo = 0, hi = this.fixes.length - 1, found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (this.fixes[mid].ms <= ms) { found = mid; lo = mid + 1; } else hi = mid - 1;
    }
    return found < 0 ? (this.fixes.length ? 0 : -1) : found;
  }

  seek(ms) {
    if (this.start == null) return;
    this.clock = Math.min(Math.max(ms, this.start), this.end);
    this.els.slider.value = String(Math.round((this.clock - this.start) / 1000));
    const i = this.fixAt(this.clock);
    this.index = i;
    this.map.setReplayMarker(i < 0 ? null : this.fixes[i].latlng);
    this.renderTime();
  }

  renderTime() {
    const el = this.els.time;
    const tz = this.zoneOf(this.subjectId);
    const fix = this.fixes[this.index];
    if (this.clock == null || !fix) { el.textContent = "—"; el.dataset.fix = ""; return; }
    el.textContent = `${t("replay_fix")} ${this.index + 1}/${this.fixes.length}: ${formatIn(fix.iso, tz)} · `
      + `${t("replay_clock")} ${formatIn(new Date(this.clock).toISOString(), tz)} (${tz})`;
    el.dataset.fix = fix.iso;
  }

  play() {
    if (this.start == null || this.timer) return;
    if (this.clock >= this.end) this.seek(this.start);
    this.els.play.textContent = t("pause");
    this.els.play.dataset.playing = "true";
    let last = performance.now();
    this.timer = setInterval(() => {
      const now = performance.now();
      this.seek(this.clock + (now - last) * Number(this.els.speed.value || 1));
      last = now;
      if (this.clock >= this.end) this.pause();
    }, TICK_MS);
  }

  pause() {
    clearInterval(this.timer);
    this.timer = null;
    this.els.play.textContent = t("play");
    this.els.play.dataset.playing = "false";
  }
}
