// The settings page (/settings): the user's preferences, kept on the
// server (the theme, applied at once; the dashboard's default filters),
// and their API tokens (made, shown once, revoked).
import { el, on, show } from "./dom.js";
import * as api from "./api.js";
import { confirmAction, failure } from "./ui.js";

// applyTheme makes theme ("system", "light" or "dark") the page's.
export function applyTheme(theme) {
  document.documentElement.dataset.theme = theme;
}

// settingsPage is the page of /settings, as app.js routes pages: it
// fills main; ctx names the page and takes an answer that the user's
// session is over (ctx.signedOut).
export function settingsPage(main, ctx) {
  ctx.setTitle("Settings");
  main.append(el("section", { class: "settings" },
    el("h1", { tabindex: "-1" }, "Settings"),
    preferencesSection(ctx),
    tokensSection(ctx)));
}

const statuses = ["", "uploaded", "extracting", "extracted", "analyzing", "queued", "analyzed", "failed"];
const levels = ["", "low", "medium", "high", "critical"];

function choice(id, label, values, names) {
  const select = el("select", { id, name: id },
    values.map((v) => el("option", { value: v }, names(v))));
  return [el("label", { for: id }, label), select];
}

function capital(s) {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

function preferencesSection(ctx) {
  const status = el("p", { class: "status", role: "status", "aria-live": "polite", id: "preferences-status" }, "Loading…");
  const themes = ["system", "light", "dark"].map((t) => el("input", {
    type: "radio", name: "theme", id: `theme-${t}`, value: t, disabled: true,
  }));
  const themeField = el("fieldset", { class: "choices" },
    el("legend", {}, "Theme"),
    themes.map((input) => el("label", { for: input.id }, input,
      input.value === "system" ? "Same as the system" : capital(input.value))));
  const [statusLabel, statusSelect] = choice("default-status", "Status", statuses, (v) => (v ? capital(v) : "Any status"));
  const [levelLabel, levelSelect] = choice("default-risk", "Risk level", levels, (v) => (v ? capital(v) : "Any level"));
  const pageSize = el("input", { id: "default-page-size", name: "page_size", type: "number", min: 1, max: 200, required: true });
  const saveList = el("button", { type: "submit", disabled: true }, "Save defaults");
  const listForm = el("form", { class: "card" },
    el("h3", {}, "Dashboard defaults"),
    el("p", { class: "muted" }, "What the dashboard shows when it opens."),
    statusLabel, statusSelect, levelLabel, levelSelect,
    el("label", { for: pageSize.id }, "Documents per page"), pageSize,
    saveList);

  // saved is the preferences as the server keeps them; every change
  // sends them whole (PUT replaces).
  let saved = null;
  const put = async (next, done) => {
    status.classList.remove("error");
    status.textContent = "Saving…";
    try {
      saved = await api.preferences.put(next);
      status.textContent = done;
    } catch (err) {
      failure(ctx, status, "Not saved", err);
      throw err;
    }
  };

  for (const input of themes) {
    on(input, "change", async () => {
      const before = saved.theme;
      applyTheme(input.value); // at once; the server follows
      try {
        await put({ ...saved, theme: input.value }, "Theme saved.");
      } catch {
        applyTheme(before);
        themes.find((t) => t.value === before).checked = true;
      }
    });
  }
  on(listForm, "submit", async (event) => {
    event.preventDefault();
    saveList.disabled = true;
    try {
      await put({
        ...saved,
        list: { status: statusSelect.value, risk_level: levelSelect.value, page_size: Number(pageSize.value) },
      }, "Dashboard defaults saved.");
    } catch {
      // said in the status
    } finally {
      saveList.disabled = false;
    }
  });

  api.preferences.get().then((p) => {
    saved = p;
    applyTheme(p.theme);
    for (const input of themes) {
      input.checked = input.value === p.theme;
      input.disabled = false;
    }
    statusSelect.value = p.list.status;
    levelSelect.value = p.list.risk_level;
    pageSize.value = p.list.page_size;
    saveList.disabled = false;
    status.textContent = "";
  }, (err) => failure(ctx, status, "The preferences could not be loaded", err));

  return el("section", { "aria-labelledby": "preferences-title" },
    el("h2", { id: "preferences-title" }, "Preferences"),
    el("div", { class: "card" }, themeField), listForm, status);
}

function tokensSection(ctx) {
  const name = el("input", { id: "token-name", name: "name", required: true, maxlength: 100, autocomplete: "off" });
  const scope = el("select", { id: "token-scope", name: "scope" },
    el("option", { value: "read write" }, "Read and write"),
    el("option", { value: "read" }, "Read only"));
  const expires = el("input", { id: "token-expires", name: "expires", type: "date" });
  const create = el("button", { type: "submit" }, "Create token");
  const status = el("p", { class: "status", role: "status", "aria-live": "polite", id: "tokens-status" });
  const created = el("div", { class: "token-created", hidden: true });
  const list = el("tbody");
  const table = el("table", { class: "tokens" },
    el("caption", { class: "visually-hidden" }, "Your API tokens"),
    el("thead", {}, el("tr", {}, ["Name", "Access", "Created", "Last used", "Expires", "State"].map((h) => el("th", { scope: "col" }, h)),
      el("th", { scope: "col" }, el("span", { class: "visually-hidden" }, "Actions")))),
    list);
  const form = el("form", { class: "card" },
    el("h3", {}, "New token"),
    el("label", { for: name.id }, "Name (what it is for)"), name,
    el("label", { for: scope.id }, "Access"), scope,
    el("label", { for: expires.id }, "Expires (optional)"), expires,
    create);

  const said = (text, err) => {
    if (err && ctx.signedOut(err)) {
      return;
    }
    status.textContent = err ? `${text}: ${err.message}` : text;
    status.classList.toggle("error", Boolean(err));
  };

  const load = async () => {
    try {
      const out = await api.request("GET", "/api/v1/tokens");
      show(list, out.items.length > 0
        ? out.items.map((t) => tokenRow(t, load, said))
        : el("tr", {}, el("td", { colspan: 7 }, "No tokens yet.")));
    } catch (err) {
      said("The tokens could not be loaded", err);
    }
  };

  on(form, "submit", async (event) => {
    event.preventDefault();
    create.disabled = true;
    said("Creating…");
    const body = { name: name.value, scopes: scope.value.split(" ") };
    if (expires.value) {
      // The end of the chosen day, where the user is.
      body.expires_at = new Date(`${expires.value}T23:59:59`).toISOString();
    }
    try {
      const t = await api.request("POST", "/api/v1/tokens", body);
      showSecret(created, t, name);
      form.reset();
      said(`Token “${t.name}” created.`);
      await load();
    } catch (err) {
      said("No token was created", err);
    } finally {
      create.disabled = false;
    }
  });
  load();

  return el("section", { "aria-labelledby": "tokens-title" },
    el("h2", { id: "tokens-title" }, "API tokens"),
    el("p", { class: "muted" }, "Programs use a token to call the API as you (header Authorization: Bearer …)."),
    // At phone width the table scrolls sideways in its frame, which the
    // keyboard can then reach and scroll too.
    form, status, created, el("div", { class: "table-wrap", role: "region", "aria-label": "Your API tokens", tabindex: "0" }, table));
}

// showSecret shows a new token's secret, this once: the server keeps only
// its hash, and the page keeps it nowhere but here. Done closes it and
// gives the focus to next (it would otherwise be lost with the box).
function showSecret(box, t, next) {
  const secret = el("input", { id: "token-secret", type: "text", readonly: true, value: t.token, "aria-describedby": "token-warning", spellcheck: "false" });
  const copied = el("span", { class: "status", role: "status" });
  const copy = on(el("button", { type: "button" }, "Copy"), "click", async () => {
    try {
      await navigator.clipboard.writeText(t.token);
      copied.textContent = "Copied.";
    } catch {
      secret.select();
      copied.textContent = "Select the token and copy it (Ctrl+C).";
    }
  });
  const done = on(el("button", { type: "button", class: "secondary" }, "Done"), "click", () => {
    box.hidden = true;
    box.replaceChildren();
    next.focus();
  });
  box.hidden = false;
  show(box,
    el("label", { for: secret.id }, `Your new token “${t.name}”`),
    el("div", { class: "token-secret" }, secret, copy, copied),
    el("p", { id: "token-warning", class: "warning" },
      "Copy it now: it will not be shown again. Anyone with it can act as you through the API; keep it secret, and revoke it here if it leaks."),
    done);
  secret.focus();
  secret.select();
}

function when(s) {
  return s ? el("time", { datetime: s }, new Date(s).toLocaleString()) : "—";
}

function tokenRow(t, reload, said) {
  const expired = t.expires_at && new Date(t.expires_at) <= new Date();
  const state = t.revoked_at ? "Revoked" : expired ? "Expired" : "Active";
  let action = "";
  if (state === "Active") {
    const revoke = on(el("button", { type: "button", class: "danger", "aria-label": `Revoke “${t.name}”` }, "Revoke"),
      "click", async () => {
        if (!(await confirmAction(`Revoke the token “${t.name}”? Programs using it are refused at once.`, "Revoke"))) {
          return;
        }
        revoke.disabled = true;
        try {
          await api.request("DELETE", `/api/v1/tokens/${encodeURIComponent(t.id)}`);
          said(`Token “${t.name}” revoked.`);
          await reload();
        } catch (err) {
          said(`“${t.name}” could not be revoked`, err);
          revoke.disabled = false;
        }
      });
    action = revoke;
  }
  return el("tr", { "data-id": t.id, "data-state": state.toLowerCase() },
    el("td", {}, t.name),
    el("td", {}, t.scopes.join(", ")),
    el("td", {}, when(t.created_at)),
    el("td", {}, when(t.last_used_at)),
    el("td", {}, t.expires_at ? when(t.expires_at) : "Never"),
    el("td", {}, state),
    el("td", {}, action));
}
