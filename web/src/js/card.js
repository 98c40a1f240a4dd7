// The subject card: identity fields as the API returns them for the caller's role (the
// fields it withholds are listed in `masked`), the term in force and its conditions, the
// subject's devices with their state and last status report (battery, charging, strap,
// case, its device time), the last fix and its age, open alerts, appeals.
import { ApiError, call } from "./api.js";
import { t } from "./i18n.js";
import { escapeHtml, problemText } from "./text.js";
import { formatIn } from "./time.js";

const IDENTITY = ["full_name", "pinfl", "date_of_birth", "sex", "status", "category", "address", "phone"];

/** A read that may be refused for the caller's role: the refusal becomes the value shown. */
async function maybe(path, options) {
  try { return { value: await call(path, options) }; } catch (e) {
    if (e instanceof ApiError) return { error: problemText(e) };
    throw e;
  }
}

/** Everything the card shows about ``subjectId`` (one round of reads, in parallel). */
export async function loadCard(subjectId) {
  const id = encodeURIComponent(subjectId);
  const [subject, terms, devices, alerts, appeals] = await Promise.all([
    maybe(`/subjects/${id}`),
    maybe(`/subjects/${id}/terms`),
    maybe("/devices", { query: { limit: 10000 } }),
    maybe("/alerts", { query: { subject_id: subjectId, status: "open", limit: 1000 } }),
    maybe("/appeals", { query: { subject_id: subjectId, limit: 100 } }),
  ]);
  if (devices.value) {
    // each worn device read once more: GET /devices/{id} carries its latest status report
    devices.value = await Promise.all(devices.value.filter((d) => d.subject_id === subjectId)
      .map(async (d) => ({ ...d, ...(await maybe(`/devices/${encodeURIComponent(d.id)}`)).value })));
  }
  return { subjectId, subject, terms, devices, alerts, appeals };
}

/** The device's latest status report as one line: battery, charging, strap, case, when. */
export function statusText(st, tz) {
  if (!st) return t("no_status");
  const yesNo = (v) => (v == null ? "—" : t(v ? "yes" : "no"));
  return [`${t("battery")}: ${st.battery_pct != null ? `${Math.round(st.battery_pct)} %` : "—"}`
            + (st.charging ? ` (${t("charging")})` : ""),
          `${t("strap")}: ${st.strap ? t(`strap_${st.strap}`) : "—"}`,
          `${t("case_open")}: ${yesNo(st.case_open)}`,
          formatIn(st.device_time, tz)].join(" · ");
}

/** The term in force now (active, started, not ended), else the latest planned one. */
export function activeTerm(terms, now = Date.now()) {
  const inForce = (x) => x.status === "active" && (!x.starts_at || Date.parse(x.starts_at) <= now)
    && (!x.ends_at || now < Date.parse(x.ends_at));
  return terms.find(inForce) || null;
}

function conditionsText(c) {
  const parts = [];
  if (c.reporting_interval_s) parts.push(`${t("reporting_interval")}: ${c.reporting_interval_s} s`);
  if (c.zone_ids?.length) parts.push(`${t("zones")}: ${c.zone_ids.join(", ")}`);
  for (const w of c.curfew || []) parts.push(`${t("curfew")}: ${(w.days || []).join(",")} ${w.start}–${w.end}`);
  if (c.victim_device_ids?.length) parts.push(`${t("victim_devices")}: ${c.victim_device_ids.length}`);
  if (c.authorised_absences?.length) parts.push(`${t("absences")}: ${c.authorised_absences.length}`);
  if (c.notes) parts.push(String(c.notes));
  return parts.join(" · ") || "—";
}

/** The card's HTML for ``data`` (from loadCard) and the last fix ``last`` (track properties). */
export function renderCardHtml(data, { tz, last }) {
  const row = (k, v, cls = "") => `<dt>${escapeHtml(t(k))}</dt><dd class="${cls}">${escapeHtml(v ?? "—")}</dd>`;
  const out = [];
  const s = data.subject.value;
  if (s) {
    const masked = new Set(s.masked || []);
    out.push(`<div><h4>${escapeHtml(t("identity"))}</h4><dl id="card-identity">${IDENTITY.map((k) => (masked.has(k)
      ? row(`f_${k}`, t("masked_for_role"), "masked") : row(`f_${k}`, s[k]))).join("")}
      ${row("f_photo", masked.has("has_photo") ? t("masked_for_role") : (s.has_photo ? t("on_file") : t("none")),
            masked.has("has_photo") ? "masked" : "")}</dl></div>`);
  } else out.push(`<div><h4>${escapeHtml(t("identity"))}</h4><p class="error">${escapeHtml(data.subject.error)}</p></div>`);

  const term = data.terms.value ? activeTerm(data.terms.value) : null;
  out.push(`<div><h4>${escapeHtml(t("term"))}</h4><dl id="card-term">${data.terms.error ? row("term", data.terms.error)
    : term ? row("order_type", term.order_type.replaceAll("_", " ")) + row("court", [term.court, term.order_number].filter(Boolean).join(" · ") || null)
      + row("term_period", `${term.starts_at ? formatIn(term.starts_at, tz) : "—"} → ${term.ends_at ? formatIn(term.ends_at, tz) : t("open_ended")}`)
      + row("conditions", conditionsText(term.conditions || {}))
      : row("term", t("no_term"))}</dl></div>`);

  const devs = data.devices.value;
  const age = last ? Math.round((Date.now() - Date.parse(last.device_time)) / 60000) : null;
  out.push(`<div><h4>${escapeHtml(t("devices"))}</h4><dl id="card-devices">${data.devices.error ? row("devices", data.devices.error)
    : devs.length ? devs.map((d) => row("device", `${d.id} · ${t(`dev_${d.state}`)}${d.model ? ` · ${d.model}` : ""}`)
        + row("device_status", statusText(d.last_status, tz))).join("")
      : row("devices", t("none"))}
    ${row("last_fix", last ? `${formatIn(last.device_time, tz)} (${age} min)` : null)}
    ${row("open_alerts", data.alerts.error ?? String(data.alerts.value.length) + (data.alerts.value.length >= 1000 ? "+" : ""))}</dl></div>`);

  const ap = data.appeals.value;
  out.push(`<div><h4>${escapeHtml(t("appeals"))}</h4><ul id="card-appeals" class="versions">${data.appeals.error
    ? `<li>${escapeHtml(data.appeals.error)}</li>`
    : ap.length ? ap.map((a) => `<li>#${a.id} ${escapeHtml(a.track === "contest" ? `${t("kind_contest")} #${a.alert_id}` : t(`kind_${a.kind}`))} · ${escapeHtml(t(`state_${a.state}`))}`
        + ` · ${escapeHtml(t("due_by"))} ${escapeHtml(a.due_on)}</li>`).join("")
      : `<li>${escapeHtml(t("no_appeals_queue"))}</li>`}</ul></div>`);
  return out.join("");
}
