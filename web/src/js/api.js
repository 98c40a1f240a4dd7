// The signed-in session: tokens kept in sessionStorage (never in a URL), every data
// call with the bearer token, one refresh on 401 (or before expiry), then back to sign-in.
const KEY = "nazorat.session";

export class ApiError extends Error {
  constructor(status, problem) {
    super((problem && (problem.detail || problem.title)) || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

let session = JSON.parse(sessionStorage.getItem(KEY) || "null");
let refreshing = null;
const expiredListeners = [];

export function onSessionExpired(fn) { expiredListeners.push(fn); }
export function signedIn() { return session !== null; }

function store(tokens) {
  session = { access: tokens.access_token, refresh: tokens.refresh_token,
              expires: Date.now() + tokens.expires_in * 1000 };
  sessionStorage.setItem(KEY, JSON.stringify(session));
}

export function clearSession() {
  session = null;
  sessionStorage.removeItem(KEY);
}

async function problemOf(response) {
  try { return await response.json(); } catch { return null; }
}

async function tokenRequest(form) {
  const r = await fetch("/auth/token", { method: "POST", body: new URLSearchParams(form),
                                         headers: { "Content-Type": "application/x-www-form-urlencoded" } });
  if (!r.ok) throw new ApiError(r.status, await problemOf(r));
  store(await r.json());
}

export async function signIn(username, password) {
  await tokenRequest({ grant_type: "password", username, password });
}

/** A new access token from the refresh token (single use: one refresh at a time). */
export function refresh() {
  if (!session) return Promise.reject(new ApiError(401, { detail: "not signed in" }));
  refreshing ??= tokenRequest({ grant_type: "refresh_token", refresh_token: session.refresh })
    .finally(() => { refreshing = null; });
  return refreshing;
}

function expired() {
  clearSession();
  for (const fn of expiredListeners) fn();
}

/** The current access token, refreshed first when it is about to expire. */
export async function accessToken() {
  if (!session) throw new ApiError(401, { detail: "not signed in" });
  if (session.expires - Date.now() < 30_000) {
    try { await refresh(); } catch (e) { expired(); throw e; }
  }
  return session.access;
}

/** fetch with the bearer token; a 401 refreshes once and retries, then signs out. */
/** ``body``: sent as JSON; ``data``: a Blob/File sent as the raw body (application/octet-stream). */
export async function call(path, { method = "GET", body, data, query, headers = {}, signal, raw = false } = {}) {
  let url = path;
  if (query) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null && v !== "") q.set(k, v);
    const s = q.toString();
    if (s) url += "?" + s;
  }
  const send = async () => fetch(url, {
    method, signal,
    headers: { ...headers, Authorization: `Bearer ${await accessToken()}`,
               ...(body !== undefined ? { "Content-Type": "application/json" } : {}),
               ...(data !== undefined ? { "Content-Type": "application/octet-stream" } : {}) },
    body: data !== undefined ? data : body !== undefined ? JSON.stringify(body) : undefined,
  });
  let r = await send();
  if (r.status === 401) {
    try { await refresh(); } catch (e) { expired(); throw e; }
    r = await send();
    if (r.status === 401) { expired(); throw new ApiError(401, await problemOf(r)); }
  }
  if (raw) return r;
  if (!r.ok) throw new ApiError(r.status, await problemOf(r));
  return r.status === 204 ? null : r.json();
}

export async function signOut() {
  if (session) {
    try { await call("/auth/logout", { method: "POST", body: { refresh_token: session.refresh } }); } catch { /* gone */ }
  }
  clearSession();
}
