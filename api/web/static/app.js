// The application's entry. For now the shell signs in and says who is
// signed in; the pages (dashboard, document, chat, settings) come next,
// routed from location.pathname, which the server answers with this same
// shell for every client route.
import { el, on, show } from "./dom.js";
import * as api from "./api.js";

const root = document.getElementById("app");

async function start() {
  try {
    const who = await api.me();
    signedIn(who.user);
  } catch (err) {
    if (err instanceof api.Problem && err.status === 401) {
      signInForm("");
      return;
    }
    failed(err);
  }
}

function signInForm(message) {
  const email = el("input", { id: "email", name: "email", type: "email", autocomplete: "username", required: true });
  const password = el("input", { id: "password", name: "password", type: "password", autocomplete: "current-password", required: true });
  const submit = el("button", { type: "submit" }, "Sign in");
  const status = el("p", { class: "status", role: "status", "aria-live": "polite" }, message);
  // method post: should the form ever submit without this script, the
  // password goes in a body, never in the URL.
  const form = el("form", { class: "card", method: "post", "aria-labelledby": "sign-in-title" },
    el("h1", { id: "sign-in-title" }, "Sign in"),
    el("label", { for: "email" }, "Email"), email,
    el("label", { for: "password" }, "Password"), password,
    submit, status);
  on(form, "submit", async (event) => {
    event.preventDefault();
    submit.disabled = true;
    status.textContent = "Signing in…";
    try {
      signedIn(await api.signIn(email.value, password.value));
    } catch (err) {
      // The server's sentence: wrong credentials, or how long to wait
      // after too many attempts.
      status.textContent = err.message;
      submit.disabled = false;
      password.focus();
    }
  });
  show(root, form);
  email.focus();
}

function signedIn(user) {
  const signOut = on(el("button", { type: "button" }, "Sign out"), "click", async () => {
    try {
      await api.signOut();
      signInForm("Signed out.");
    } catch (err) {
      failed(err);
    }
  });
  show(root, el("section", { class: "card" },
    el("p", { id: "who" }, "Signed in as ", el("strong", {}, user.email)),
    signOut));
  applyTheme();
}

async function applyTheme() {
  try {
    const prefs = await api.preferences.get();
    document.documentElement.dataset.theme = prefs.theme;
  } catch {
    // The system theme stays: preferences are a nicety, not a reason to fail.
  }
}

function failed(err) {
  show(root, el("p", { class: "status error", role: "alert" }, err.message || String(err)));
}

start();
