// The appellants' page: the linked subject's contestable alerts (no positions, no victim
// data), and the contest/appeal forms, shown only where the server has appeals
// (GET /appeals answers; 404 hides them). What remains to wire: docs/console.md.
import { ApiError, call } from "./api.js";
import { applyTo, language, setLanguage, t } from "./i18n.js";
import { wireSignin } from "./signin.js";
import { formatIn, zoneLabel } from "./time.js";

const $ = (sel) => document.querySelector(sel);
const TZ = "Asia/Tashkent"; // an appellant cannot read the subject's record; the deployment's zone
let appealsOpen = false;

const signin = wireSignin({ start: () => start() });

/** Whether this server takes appeals: the appeals routes exist (not 404). */
async function appealsAvailable() {
  try {
    const r = await call("/appeals", { raw: true });
    return r.status !== 404 && r.ok;
  } catch { return false; }
}

// The request shape is the appeals API's to define (issue 16: to wire when it lands).
async function submitAppeal(form) {
  const err = form.querySelector(".error");
  err.textContent = "";
  const body = { text: form.text.value.trim() };
  if (form.dataset.alertId) body.alert_id = Number(form.dataset.alertId);
  try {
    await call("/appeals", { method: "POST", body });
    err.textContent = t("done");
    form.reset();
  } catch (e) { err.textContent = e instanceof ApiError ? `${e.status}: ${e.message}` : String(e); }
}

async function start() {
  const me = await call("/auth/me");
  if (me.role !== "appellant") { location.assign("/console/"); return; }
  $("#tz-label").textContent = zoneLabel(TZ);
  appealsOpen = await appealsAvailable();
  $("#appeals-closed").hidden = appealsOpen;
  $("#general-appeal").hidden = !appealsOpen;
  await loadAlerts();
}

async function loadAlerts() {
  const box = $("#alert-cards");
  const alerts = await call("/alerts", { query: { limit: 200 } });
  box.replaceChildren();
  for (const a of alerts) {
    const card = $("#card-template").content.firstElementChild.cloneNode(true);
    card.dataset.id = a.id;
    card.querySelector("h3").textContent = a.kind.replaceAll("_", " ");
    card.querySelector(".when").textContent = formatIn(a.created_at, TZ);
    card.querySelector(".outcome").textContent = a.resolution ? t(a.resolution) : "";
    const contest = card.querySelector(".contest");
    contest.hidden = !appealsOpen;
    contest.querySelector("form").dataset.alertId = a.id;
    box.append(card);
  }
  if (!alerts.length) box.innerHTML = `<p class="card">${t("no_alerts")}</p>`;
  applyTo(box);
}

document.addEventListener("submit", (ev) => {
  if (!ev.target.classList.contains("appeal-form")) return;
  ev.preventDefault();
  submitAppeal(ev.target);
});

$("#lang").value = language();
$("#lang").addEventListener("change", (ev) => { setLanguage(ev.target.value); if (!$("#app").hidden) loadAlerts(); });
setLanguage(language());
signin.begin();
