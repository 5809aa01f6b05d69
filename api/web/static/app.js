// The application's entry: sign-in and sign-out, the navigation, and the
// client routing. The server answers every client route with this same
// shell; the page shown is chosen here from location.pathname, and links
// between pages change it with history.pushState instead of loading the
// shell again.
//
// A page is a function page(main, ctx) that fills main and may return a
// function that ends it (closes its event streams) when the user leaves.
// ctx.params are the route's captured parts; ctx.setTitle names the page;
// ctx.navigate(path, notice) goes to another page, with a notice to show
// there; ctx.signedOut(err) takes the user to the sign-in form when err
// says the session is over, and returns whether it did.
import { el, on, show } from "./dom.js";
import * as api from "./api.js";
import { dashboard } from "./dashboard.js";
import { uploadPage } from "./upload.js";
import { documentPage } from "./document.js";
import { chatPage } from "./chat.js";
import { settingsPage } from "./settings.js";

// routes in the order they are tried.
const routes = [
  { path: /^\/$/, page: dashboard },
  { path: /^\/upload$/, page: uploadPage },
  { path: /^\/documents\/([0-9A-Za-z]{1,64})$/, page: documentPage },
  { path: /^\/chat(?:\/([0-9A-Za-z]{1,64}))?$/, page: chatPage },
  { path: /^\/settings$/, page: settingsPage },
];

// The navigation: where each link goes, and the routes it is current on.
const links = [
  { href: "/", label: "Documents", current: /^\/(documents\/.*)?$/ },
  { href: "/upload", label: "Upload", current: /^\/upload$/ },
  { href: "/chat", label: "Chat", current: /^\/chat/ },
  { href: "/settings", label: "Settings", current: /^\/settings$/ },
];

const root = document.getElementById("app");
const header = document.querySelector("body > header");
const notice = el("p", { class: "notice", id: "notice", role: "status", "aria-live": "polite", hidden: true });
root.before(notice);

let user = null;
let leave = null; // ends the page shown
let shown = ""; // the path and query of the page shown
let nav = null;

async function start() {
  on(document, "click", follow);
  // Back and forward; not a move within the page (a hash: a chat
  // citation's lines), which the page itself follows.
  on(window, "popstate", () => {
    if (location.pathname + location.search !== shown) {
      route(false);
    }
  });
  try {
    const who = await api.me();
    signedIn(who.user, false);
  } catch (err) {
    if (err instanceof api.Problem && err.status === 401) {
      signInForm("");
      return;
    }
    failed(err);
  }
}

// follow takes a click on a link to one of the application's pages and
// shows that page without loading the shell again.
function follow(event) {
  const a = event.target instanceof Element ? event.target.closest("a[href]") : null;
  if (!a || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) {
    return;
  }
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin || a.hasAttribute("download") || a.target || url.pathname.startsWith("/api/") || url.pathname.startsWith("/assets/") || !user) {
    return;
  }
  if (url.pathname === location.pathname && url.search === location.search && url.hash) {
    return; // a link within the page
  }
  event.preventDefault();
  navigate(url.pathname + url.search + url.hash); // a hash names a place in the page: a chat citation's lines
}

function navigate(path, message = "") {
  history.pushState(null, "", path);
  route(true, message);
}

// route shows the page of location.pathname; moved says the user went
// there from another page, so focus goes to its heading.
function route(moved, message = "") {
  shown = location.pathname + location.search;
  if (leave) {
    leave();
    leave = null;
  }
  // A dialog a page left open belongs to it.
  document.querySelectorAll("body > dialog").forEach((d) => d.remove());
  setNotice(message);
  const path = location.pathname;
  for (const a of nav ? nav.querySelectorAll("a") : []) {
    const l = links.find((x) => x.href === a.getAttribute("href"));
    if (l && l.current.test(path)) {
      a.setAttribute("aria-current", "page");
    } else {
      a.removeAttribute("aria-current");
    }
  }
  const main = el("div", { class: "page" });
  show(root, main);
  const r = routes.find((x) => x.path.test(path));
  if (!r) {
    setTitle("Not found");
    main.append(el("h1", { tabindex: "-1" }, "Not found"), el("p", {}, "There is no such page. ", el("a", { href: "/" }, "Your documents")));
  } else {
    const ctx = {
      user,
      params: r.path.exec(path).slice(1),
      setTitle,
      navigate,
      signedOut,
    };
    try {
      leave = r.page(main, ctx) || null;
    } catch (err) {
      failed(err);
      return;
    }
  }
  if (moved) {
    const h1 = main.querySelector("h1");
    (h1 || root).focus();
  }
}

function setTitle(what) {
  document.title = `${what} · AI-Prism`;
}

function setNotice(message) {
  notice.textContent = message;
  notice.hidden = !message;
}

// signedOut handles an answer that the session is over: the sign-in form,
// which comes back to this page.
function signedOut(err) {
  if (!(err instanceof api.Problem) || err.status !== 401) {
    return false;
  }
  end();
  signInForm("Your session has ended: please sign in again.");
  return true;
}

function end() {
  if (leave) {
    leave();
    leave = null;
  }
  user = null;
  if (nav) {
    nav.remove();
    nav = null;
  }
}

function signInForm(message) {
  setTitle("Sign in");
  setNotice("");
  const email = el("input", { id: "email", name: "email", type: "email", autocomplete: "username", required: true });
  const password = el("input", { id: "password", name: "password", type: "password", autocomplete: "current-password", required: true });
  const submit = el("button", { type: "submit" }, "Sign in");
  const status = el("p", { class: "status", role: "status", "aria-live": "polite" }, message);
  // method post: should the form ever submit without this script, the
  // password goes in a body, never in the URL.
  const form = el("form", { class: "card narrow", method: "post", "aria-labelledby": "sign-in-title" },
    el("h1", { id: "sign-in-title" }, "Sign in"),
    el("label", { for: "email" }, "Email"), email,
    el("label", { for: "password" }, "Password"), password,
    submit, status);
  on(form, "submit", async (event) => {
    event.preventDefault();
    submit.disabled = true;
    status.classList.remove("error");
    status.textContent = "Signing in…";
    try {
      signedIn(await api.signIn(email.value, password.value), true);
    } catch (err) {
      // The server's sentence: wrong credentials, or how long to wait
      // after too many attempts.
      status.classList.add("error");
      status.textContent = err.message;
      submit.disabled = false;
      password.focus();
    }
  });
  show(root, form);
  email.focus();
}

function signedIn(who, moved) {
  user = who;
  const signOut = el("button", { type: "button", class: "secondary", id: "sign-out" }, "Sign out");
  on(signOut, "click", async () => {
    signOut.disabled = true;
    // The page's event streams end first: the server ends them with the
    // session, and a stream refused is an error in the console.
    if (leave) {
      leave();
      leave = null;
    }
    try {
      await api.signOut();
      end();
      history.pushState(null, "", "/");
      signInForm("Signed out.");
    } catch (err) {
      signOut.disabled = false;
      route(false, `Not signed out: ${err.message}`);
    }
  });
  nav = el("nav", { "aria-label": "Main", id: "nav" },
    el("ul", {}, links.map((l) => el("li", {}, el("a", { href: l.href }, l.label)))),
    el("span", { class: "who", id: "who" }, who.email),
    signOut);
  header.append(nav);
  applyTheme();
  route(moved);
}

async function applyTheme() {
  try {
    const prefs = await api.preferences.get();
    document.documentElement.dataset.theme = prefs.theme || "system";
  } catch {
    // The system theme stays: preferences are a nicety, not a reason to fail.
  }
}

function failed(err) {
  show(root, el("p", { class: "status error", role: "alert" }, err.message || String(err)));
}

start();
