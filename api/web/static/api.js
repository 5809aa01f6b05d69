// The API as the page calls it: same-origin requests carrying the session
// cookie, the CSRF token on every change, and failures as Problem errors.
// The CSRF token comes from the sign-in and GET /api/v1/me answers only
// and is held in memory: never in a URL, never in storage.

let csrf = "";

// Problem is an answer other than 2xx: an RFC 9457 problem's status,
// class and detail (the sentence to show).
export class Problem extends Error {
  constructor(status, body, retryAfter) {
    super((body && (body.detail || body.title)) || `The server answered ${status}.`);
    this.name = "Problem";
    this.status = status;
    this.class = (body && body.class) || "";
    this.retryAfter = retryAfter ? Number(retryAfter) : 0;
  }
}

const changes = new Set(["POST", "PUT", "PATCH", "DELETE"]);

// request sends a JSON body (when body is given) and returns the JSON
// answer, null when there is none.
export async function request(method, path, body) {
  const headers = { Accept: "application/json, application/problem+json" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
  }
  if (changes.has(method) && csrf) {
    headers["X-CSRF-Token"] = csrf;
  }
  const resp = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
    cache: "no-store",
  });
  const type = resp.headers.get("Content-Type") || "";
  const data = resp.status !== 204 && type.includes("json") ? await resp.json() : null;
  if (!resp.ok) {
    throw new Problem(resp.status, data, resp.headers.get("Retry-After"));
  }
  return data;
}

// signIn begins a session and returns its user.
export async function signIn(email, password) {
  const out = await request("POST", "/api/v1/session", { email, password });
  csrf = out.csrf_token;
  return out.user;
}

// me returns who the page is signed in as (a Problem with status 401 when
// nobody is), and takes the session's CSRF token again: a reloaded page
// has lost it.
export async function me() {
  const out = await request("GET", "/api/v1/me");
  if (out.csrf_token) {
    csrf = out.csrf_token;
  }
  return out;
}

// signOut ends the session.
export async function signOut() {
  await request("DELETE", "/api/v1/session");
  csrf = "";
}

// preferences are the user's settings kept on the server.
export const preferences = {
  get: () => request("GET", "/api/v1/me/preferences"),
  put: (p) => request("PUT", "/api/v1/me/preferences", p),
};
