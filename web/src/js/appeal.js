// The appellants' page: the linked subject's contestable alerts (no positions, no victim
// data), a contest of one of them or a general appeal (text + an optional file), and the
// appellant's own appeals with the API's plain-language status, deadline, notices and
// decision (docs/appeals.md). Hidden where the server has no appeals (GET /appeals 404).
import { call } from "./api.js";
import { escapeHtml, problemText } from "./text.js";
import { applyTo, language, setLanguage, t } from "./i18n.js";
import { wireSignin } from "./signin.js";
import { formatIn, zoneLabel } from "./time.js";

const $ = (sel) => document.querySelector(sel);
const TZ = "Asia/Tashkent"; // an appellant cannot read the subject's record; the deployment's zone
const MAX_FILE_BYTES = 5 * 1024 * 1024; // the API's limits: PDF, JPEG or PNG, 5 MiB, 5 files an appeal
const OPEN = new Set(["submitted", "under_review"]);
let appealsOpen = false;
let appeals = [];

const signin = wireSignin({ start: () => start() });
const apiLang = () => (language() === "en" ? "en" : "uz-Latn");

/** Whether this server takes appeals: the appeals routes exist (not 404). */
async function appealsAvailable() {
  try {
    const r = await call("/appeals", { raw: true, query: { limit: 1 } });
    return r.status !== 404 && r.ok;
  } catch { return false; }
}

/** File the contest (form.dataset.alertId) or general appeal, then its file, if any. */
async function submitAppeal(form) {
  const err = form.querySelector(".error");
  err.textContent = "";
  delete err.dataset.filed;
  const text = form.text.value.trim();
  const file = form.attachment.files[0];
  if (!text) { err.textContent = t("text_required"); return; }
  if (file && file.size > MAX_FILE_BYTES) { err.textContent = t("file_too_big"); return; }
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  try {
    const alertId = form.dataset.alertId;
    const appeal = alertId
      ? await call("/appeals/contests", { method: "POST", query: { lang: apiLang() },
                                          body: { alert_id: Number(alertId), text, language: apiLang() } })
      : await call("/appeals/general", { method: "POST", query: { lang: apiLang() },
                                         body: { kind: form.kind.value, text, language: apiLang() } });
    err.dataset.filed = appeal.id;
    err.textContent = t("filed");
    if (file) {
      try {
        await call(`/appeals/${appeal.id}/attachments`, { method: "POST", query: { filename: file.name }, data: file });
      } catch (e) { err.textContent = `${t("file_refused")} ${problemText(e)}`; }
    }
    form.reset();
    await loadAppeals();
    await loadAlerts();
  } catch (e) { err.textContent = problemText(e); } finally { button.disabled = false; }
}

async function start() {
  const me = await call("/auth/me");
  if (me.role !== "appellant") { location.assign("/console/"); return; }
  $("#tz-label").textContent = zoneLabel(TZ);
  appealsOpen = await appealsAvailable();
  $("#appeals-closed").hidden = appealsOpen;
  $("#general-appeal").hidden = !appealsOpen;
  $("#my-appeals-box").hidden = !appealsOpen;
  if (appealsOpen) await loadAppeals();
  await loadAlerts();
}

async function loadAlerts() {
  const box = $("#alert-cards");
  const alerts = await call("/alerts", { query: { limit: 200 } });
  const contested = new Set(appeals.filter((a) => a.alert_id && OPEN.has(a.state)).map((a) => a.alert_id));
  box.replaceChildren();
  for (const a of alerts) {
    const card = $("#card-template").content.firstElementChild.cloneNode(true);
    card.dataset.id = a.id;
    card.querySelector("h3").textContent = a.kind.replaceAll("_", " ");
    card.querySelector(".when").textContent = formatIn(a.created_at, TZ);
    card.querySelector(".outcome").textContent = a.resolution ? t(a.resolution) : "";
    const contest = card.querySelector(".contest");
    // one open contest of an alert at a time (the API says 409 otherwise)
    contest.hidden = !appealsOpen || contested.has(a.id) || a.resolution !== "confirmed_violation";
    card.querySelector(".contest-open").hidden = !contested.has(a.id);
    contest.querySelector("form").dataset.alertId = a.id;
    box.append(card);
  }
  if (!alerts.length) box.innerHTML = `<p class="card">${escapeHtml(t("no_alerts"))}</p>`;
  applyTo(box);
}

/** The appellant's own appeals, newest first, each with its steps and notices. */
async function loadAppeals() {
  const box = $("#my-appeals");
  try {
    appeals = await call("/appeals", { query: { lang: apiLang(), limit: 50 } });
    const details = await Promise.all(appeals.map((a) => call(`/appeals/${a.id}`, { query: { lang: apiLang() } })));
    box.replaceChildren(...details.map(appealCard));
    if (!details.length) box.innerHTML = `<p class="card">${escapeHtml(t("no_appeals"))}</p>`;
  } catch (e) { box.innerHTML = `<p class="card error" role="alert">${escapeHtml(problemText(e))}</p>`; }
}

function appealCard(a) {
  const card = document.createElement("article");
  card.className = `card appeal-card state-${a.state}${a.overdue ? " overdue" : ""}`;
  card.dataset.id = a.id;
  card.dataset.state = a.state;
  const title = a.track === "contest" ? `${t("kind_contest")} #${a.alert_id}` : t(`kind_${a.kind}`);
  const notices = a.notices.map((n) => `<li class="notice notice-${escapeHtml(n.kind)}">${escapeHtml(n.text)}
      <span class="when">${escapeHtml(formatIn(n.at, TZ))}</span></li>`).join("");
  const files = a.attachments.map((f) => `<li>${escapeHtml(f.filename)} (${escapeHtml(f.media_type)},
      ${Math.ceil(f.size_bytes / 1024)} KiB)</li>`).join("");
  card.innerHTML = `<h3>${escapeHtml(title)} <span class="badge state">${escapeHtml(t(`state_${a.state}`))}</span>
      ${a.overdue ? `<span class="badge critical">${escapeHtml(t("overdue_mark"))}</span>` : ""}</h3>
    <p class="status-text">${escapeHtml(a.status_text)}</p>
    <dl><dt>${escapeHtml(t("submitted_at"))}</dt><dd>${escapeHtml(formatIn(a.submitted_at, TZ))}</dd>
      <dt>${escapeHtml(t("due_by"))}</dt><dd class="due">${escapeHtml(a.due_on)}</dd>
      ${a.decided_at ? `<dt>${escapeHtml(t("decided_at"))}</dt><dd>${escapeHtml(formatIn(a.decided_at, TZ))}</dd>` : ""}
      ${a.decision_reason ? `<dt>${escapeHtml(t("decision"))}</dt><dd class="decision">${escapeHtml(a.decision_reason)}</dd>` : ""}</dl>
    <details><summary>${escapeHtml(t("my_text"))}</summary><p class="own-text">${escapeHtml(a.text)}</p></details>
    ${notices ? `<h4>${escapeHtml(t("notices"))}</h4><ul class="notices">${notices}</ul>` : ""}
    ${files ? `<h4>${escapeHtml(t("attachments"))}</h4><ul class="files">${files}</ul>` : ""}`;
  return card;
}

document.addEventListener("submit", (ev) => {
  if (!ev.target.classList.contains("appeal-form")) return;
  ev.preventDefault();
  submitAppeal(ev.target);
});

$("#lang").value = language();
$("#lang").addEventListener("change", async (ev) => {
  setLanguage(ev.target.value);
  if ($("#app").hidden) return;
  if (appealsOpen) await loadAppeals();
  await loadAlerts();
});
setLanguage(language());
signin.begin();
