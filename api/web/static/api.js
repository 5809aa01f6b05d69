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

// fetchRaw sends a GET and returns the response itself (text, a file),
// a Problem when the answer is not 2xx.
export async function fetchRaw(path) {
  const resp = await fetch(path, { credentials: "same-origin", cache: "no-store" });
  if (!resp.ok) {
    const type = resp.headers.get("Content-Type") || "";
    const data = type.includes("json") ? await resp.json().catch(() => null) : null;
    throw new Problem(resp.status, data, resp.headers.get("Retry-After"));
  }
  return resp;
}

// upload sends one file as POST /api/v1/documents, reporting the bytes
// sent to onProgress(loaded, total) as they go (fetch cannot tell), and
// resolves with the Accepted answer. XMLHttpRequest carries the session
// cookie and, like request, the CSRF token in its header.
export function upload(file, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/v1/documents");
    xhr.setRequestHeader("Accept", "application/json, application/problem+json");
    if (csrf) {
      xhr.setRequestHeader("X-CSRF-Token", csrf);
    }
    xhr.responseType = "json";
    xhr.upload.addEventListener("progress", (e) => onProgress(e.loaded, e.lengthComputable ? e.total : file.size));
    xhr.addEventListener("load", () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        resolve(xhr.response);
      } else {
        reject(new Problem(xhr.status, xhr.response, xhr.getResponseHeader("Retry-After")));
      }
    });
    xhr.addEventListener("error", () => reject(new Problem(0, { detail: "The upload could not reach the server." })));
    xhr.addEventListener("abort", () => reject(new Problem(0, { detail: "The upload was cancelled." })));
    const form = new FormData();
    form.append("file", file, file.name);
    xhr.send(form);
  });
}

// documents are the caller's documents.
export const documents = {
  list: (query) => request("GET", "/api/v1/documents?" + query),
  get: (id) => request("GET", `/api/v1/documents/${encodeURIComponent(id)}`),
  assessment: (id) => request("GET", `/api/v1/documents/${encodeURIComponent(id)}/assessment`),
  text: async (id) => (await fetchRaw(`/api/v1/documents/${encodeURIComponent(id)}/text`)).text(),
  reanalyze: (id) => request("POST", `/api/v1/documents/${encodeURIComponent(id)}/reanalyze`),
  remove: (id) => request("DELETE", `/api/v1/documents/${encodeURIComponent(id)}`),
  originalURL: (id) => `/api/v1/documents/${encodeURIComponent(id)}/original`,
  eventsURL: (id) => `/api/v1/documents/${encodeURIComponent(id)}/events`,
};
