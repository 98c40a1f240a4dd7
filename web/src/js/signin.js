// The sign-in form and the sign-out button both pages share (#signin-view, #signin,
// #username, #password, #signin-message, #signout, #app): a session that ends (expired,
// refused refresh) comes back here with the reason.
import { onSessionExpired, signIn, signOut, signedIn } from "./api.js";
import { t } from "./i18n.js";

const $ = (sel) => document.querySelector(sel);

/** ``start``: run once signed in; ``leave``: what the page stops when the session ends. */
export function wireSignin({ start, leave = () => {} }) {
  const show = (message = "") => {
    leave();
    $("#app").hidden = true;
    $("#signout").hidden = true;
    $("#signin-view").hidden = false;
    $("#signin-message").textContent = message;
  };
  onSessionExpired(() => show(t("session_expired")));
  $("#signin").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      await signIn($("#username").value, $("#password").value);
      $("#password").value = "";
      $("#signin-view").hidden = true;
      $("#app").hidden = false;
      $("#signout").hidden = false;
      await start();
    } catch (e) {
      show(e.status === 401 ? t("wrong_login") : e.message);
    }
  });
  $("#signout").addEventListener("click", async () => { await signOut(); show(); });
  const begin = () => {
    if (!signedIn()) { show(); return; }
    $("#signin-view").hidden = true;
    $("#app").hidden = false;
    $("#signout").hidden = false;
    start().catch(() => show(t("session_expired")));
  };
  return { show, begin };
}
