// The console's only way to the server: the JSON API on this same host, with the session's token.
// The token lives in sessionStorage, per host, as the portal keeps it: a tab's session ends with
// the tab, and nothing but this origin's scripts (CSP: 'self' only) can read it.

const KEY = `gatehouse-console-token:${location.host}`;

export const session = {
  get token() { return sessionStorage.getItem(KEY); },
  set(token) { sessionStorage.setItem(KEY, token); },
  clear() { sessionStorage.removeItem(KEY); },
};

/** An API error, carrying the JSON error shape's code and message. */
export class ApiError extends Error {
  constructor(status, code, message, body) {
    super(message);
    this.status = status;
    this.code = code;
    this.body = body;
  }
}

let onSignedOut = () => {};
export function whenSignedOut(fn) { onSignedOut = fn; }

/** `fetch` a JSON endpoint; resolves to the parsed body (null for 204), rejects with ApiError. */
export async function api(method, path, body, { raw = false, contentType } = {}) {
  const headers = {};
  if (session.token) headers.authorization = `Bearer ${session.token}`;
  const init = { method, headers };
  if (body !== undefined) {
    headers["content-type"] = contentType || "application/json";
    init.body = contentType ? body : JSON.stringify(body);
  }
  const res = await fetch(path, init);
  if (res.status === 401 && !path.startsWith("/api/auth/")) {
    session.clear();
    onSignedOut("Your session has ended. Please sign in again.");
    throw new ApiError(401, "signed_out", "Your session has ended.");
  }
  if (raw && res.ok) return res;
  if (res.status === 204) return null;
  const text = await res.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
  if (!res.ok) {
    const e = json && json.error;
    throw new ApiError(res.status, e ? e.code : "http_error", e ? e.message : `Request failed (${res.status})`, json);
  }
  return json;
}

/** Every item of a paged list (bounded: 20 pages). */
export async function all(path) {
  const items = [];
  let cursor = "";
  for (let i = 0; i < 20; i++) {
    const sep = path.includes("?") ? "&" : "?";
    const page = await api("GET", `${path}${sep}limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
    items.push(...page.items);
    if (!page.next_cursor) break;
    cursor = page.next_cursor;
  }
  return items;
}
