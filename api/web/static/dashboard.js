// The dashboard: the user's documents with their status and risk, the
// filters (kept in the URL, so a reload or a shared link keeps them),
// keyset paging, an uploader, the export of the filtered list, and rows
// that follow the user's event feed live.
import { el, on, show } from "./dom.js";
import * as api from "./api.js";
import { statusWords, riskLevels, statusBadge, riskBadge, when } from "./format.js";
import { openFeed, stateOf, liveIndicator } from "./live.js";
import { uploader } from "./upload.js";
import { save } from "./files.js";

const filterNames = ["q", "status", "risk_level", "min_score", "max_score", "since", "until", "sort"];

const sorts = {
  "-uploaded_at": "Newest first",
  uploaded_at: "Oldest first",
  "-score": "Highest risk first",
  score: "Lowest risk first",
};

// readFilters takes the filters from the page's URL (since and until are
// dates, yyyy-mm-dd, in the reader's time zone).
function readFilters(search) {
  const p = new URLSearchParams(search);
  const f = {};
  for (const n of filterNames) {
    f[n] = p.get(n) || "";
  }
  return f;
}

// localDay is the instant a local calendar day starts, in RFC 3339, days
// after the day given.
function localDay(day, after = 0) {
  const [y, m, d] = day.split("-").map(Number);
  return new Date(y, m - 1, d + after).toISOString();
}

// apiQuery is the filters as GET /api/v1/documents and the export take
// them; until is exclusive, so a day given as "until" is included whole.
export function apiQuery(f) {
  const q = new URLSearchParams();
  for (const n of ["q", "status", "risk_level", "min_score", "max_score", "sort"]) {
    if (f[n]) {
      q.set(n, f[n]);
    }
  }
  if (f.since) {
    q.set("since", localDay(f.since));
  }
  if (f.until) {
    q.set("until", localDay(f.until, 1));
  }
  return q;
}

export function dashboard(main, ctx) {
  ctx.setTitle("Documents");
  let filters = readFilters(location.search);
  let pageSize = 50;
  const cursors = [""]; // the cursor of each page shown so far; the last is the current page
  const rows = new Map(); // document id -> row
  let loading = 0; // the number of the newest load, so an older answer is dropped

  const feed = openFeed();
  const indicator = liveIndicator();
  feed.watch(indicator.set);
  const up = uploader(feed);

  const status = el("p", { class: "status", role: "status", "aria-live": "polite", id: "list-status" });
  const tbody = el("tbody");
  const table = el("table", { id: "documents", class: "documents" },
    el("caption", { class: "visually-hidden" }, "Your documents"),
    el("thead", {}, el("tr", {},
      el("th", { scope: "col" }, "Name"), el("th", { scope: "col" }, "Status"),
      el("th", { scope: "col" }, "Risk"), el("th", { scope: "col" }, "Uploaded"))),
    tbody);
  const prev = el("button", { type: "button", id: "prev-page", class: "secondary" }, "Previous page");
  const next = el("button", { type: "button", id: "next-page", class: "secondary" }, "Next page");
  const pageNo = el("span", { class: "muted", "aria-live": "polite" });
  const fresh = el("p", { class: "notice", hidden: true },
    "New documents have arrived. ", on(el("button", { type: "button", class: "link" }, "Show them"), "click", () => load(true)));

  const form = filterForm();
  const exportBar = exporter(() => filters);

  main.append(
    el("div", { class: "page-head" }, el("h1", { tabindex: "-1" }, "Documents"), indicator.node),
    up.node,
    form.node,
    exportBar,
    fresh,
    status,
    el("div", { class: "table-wrap" }, table),
    el("nav", { class: "pager", "aria-label": "Pages" }, prev, pageNo, next));

  on(prev, "click", () => {
    cursors.pop();
    load(false);
  });
  on(next, "click", () => {
    cursors.push(next.dataset.cursor);
    load(false);
  });

  const unsubscribe = feed.subscribe(onEvent);
  start();

  async function start() {
    if (!location.search) {
      // A first visit opens with the user's default filters.
      try {
        const prefs = await api.preferences.get();
        const list = prefs.list || {};
        filters.status = list.status || "";
        filters.risk_level = list.risk_level || "";
        pageSize = list.page_size || pageSize;
        form.set(filters);
      } catch {
        // The defaults of the API: preferences are a nicety.
      }
    }
    load(true);
  }

  // load shows the current page; reset goes back to the first.
  async function load(reset) {
    if (reset) {
      cursors.length = 1;
    }
    const n = ++loading;
    fresh.hidden = true;
    table.setAttribute("aria-busy", "true");
    status.classList.remove("error");
    status.textContent = "Loading…";
    const q = apiQuery(filters);
    q.set("limit", String(pageSize));
    if (cursors.at(-1)) {
      q.set("cursor", cursors.at(-1));
    }
    try {
      const page = await api.documents.list(q.toString());
      if (n !== loading) {
        return;
      }
      rows.clear();
      show(tbody, page.items.map((d) => {
        const r = row(d);
        rows.set(d.id, r);
        return r.node;
      }));
      status.textContent = page.items.length === 0
        ? (cursors.length === 1 && !filterNames.some((k) => filters[k]) ? "No documents yet: upload one above." : "No documents match these filters.")
        : `${page.items.length} document${page.items.length === 1 ? "" : "s"} on this page.`;
      prev.disabled = cursors.length === 1;
      next.disabled = !page.next_cursor;
      next.dataset.cursor = page.next_cursor;
      pageNo.textContent = `Page ${cursors.length}`;
    } catch (err) {
      if (n !== loading) {
        return;
      }
      if (ctx.signedOut(err)) {
        return;
      }
      status.classList.add("error");
      status.textContent = `The documents could not be loaded: ${err.message}`;
    } finally {
      if (n === loading) {
        table.removeAttribute("aria-busy");
      }
    }
  }

  function onEvent(ev) {
    const r = rows.get(ev.doc);
    if (r) {
      r.apply(ev);
      return;
    }
    if (ev.type !== "uploaded" || ev.run !== 1) {
      return; // a document on another page, or filtered out
    }
    if (showsNewUpload(ev)) {
      const r2 = row({ id: ev.doc, filename: ev.data.filename, status: "uploaded", uploaded_at: ev.time, last_event_seq: ev.seq });
      rows.set(ev.doc, r2);
      tbody.prepend(r2.node);
      status.textContent = `${rows.size} document${rows.size === 1 ? "" : "s"} on this page.`;
    } else {
      fresh.hidden = false;
    }
  }

  // showsNewUpload tells whether a document just uploaded belongs at the
  // top of this very page: the first page, newest first, and filters it
  // passes as it is now (uploaded, not scored).
  function showsNewUpload(ev) {
    const f = filters;
    return cursors.length === 1 && (f.sort || "-uploaded_at") === "-uploaded_at" &&
      (!f.status || f.status === "uploaded") && !f.risk_level && !f.min_score && !f.max_score &&
      (!f.q || (ev.data.filename || "").toLowerCase().includes(f.q.toLowerCase())) &&
      (!f.since || ev.time >= localDay(f.since)) && (!f.until || ev.time < localDay(f.until, 1));
  }

  function filterForm() {
    const fields = {
      q: el("input", { id: "f-q", type: "search", maxlength: "100", autocomplete: "off" }),
      status: select("f-status", { "": "Any status", ...statusWords }),
      risk_level: select("f-risk", { "": "Any risk level", ...Object.fromEntries(riskLevels.map((l) => [l, l[0].toUpperCase() + l.slice(1)])) }),
      min_score: el("input", { id: "f-min", type: "number", min: "0", max: "100", inputmode: "numeric" }),
      max_score: el("input", { id: "f-max", type: "number", min: "0", max: "100", inputmode: "numeric" }),
      since: el("input", { id: "f-since", type: "date" }),
      until: el("input", { id: "f-until", type: "date" }),
      sort: select("f-sort", sorts),
    };
    const clear = el("button", { type: "reset", class: "secondary" }, "Clear filters");
    const node = el("form", { class: "filters", role: "search", "aria-label": "Filter documents" },
      field("f-q", "Name contains", fields.q),
      field("f-status", "Status", fields.status),
      field("f-risk", "Risk level", fields.risk_level),
      field("f-min", "Score from", fields.min_score),
      field("f-max", "Score to", fields.max_score),
      field("f-since", "Uploaded from", fields.since),
      field("f-until", "Uploaded to", fields.until),
      field("f-sort", "Order", fields.sort),
      clear);
    const set = (f) => {
      for (const [k, input] of Object.entries(fields)) {
        input.value = f[k] || (k === "sort" ? "-uploaded_at" : "");
      }
    };
    set(filters);
    let timer = 0;
    const apply = () => {
      clearTimeout(timer);
      const f = {};
      for (const [k, input] of Object.entries(fields)) {
        f[k] = input.checkValidity() ? input.value.trim() : "";
      }
      if (f.sort === "-uploaded_at") {
        f.sort = "";
      }
      filters = f;
      const q = new URLSearchParams();
      for (const n of filterNames) {
        if (f[n]) {
          q.set(n, f[n]);
        }
      }
      history.replaceState(null, "", q.size ? `/?${q}` : "/");
      load(true);
    };
    on(node, "change", apply);
    on(node, "input", (e) => {
      if (e.target === fields.q) {
        clearTimeout(timer);
        timer = setTimeout(apply, 300); // a search as the user types, not at every key
      }
    });
    on(node, "submit", (e) => {
      e.preventDefault();
      apply();
    });
    on(node, "reset", () => setTimeout(apply)); // after the form has emptied its fields
    return { node, set };
  }

  return () => {
    unsubscribe();
    up.close();
    feed.close();
  };
}

function select(id, options) {
  return el("select", { id }, Object.entries(options).map(([v, label]) => el("option", { value: v }, label)));
}

function field(id, label, input) {
  return el("div", { class: "field" }, el("label", { for: id }, label), input);
}

// row is one document's line, updated in place by its events.
function row(d) {
  const name = el("a", { href: `/documents/${d.id}` }, d.filename || d.id);
  const statusCell = el("td", { "data-label": "Status" });
  const riskCell = el("td", { "data-label": "Risk" });
  const node = el("tr", { "data-id": d.id },
    el("td", { "data-label": "Name", class: "name" }, name),
    statusCell, riskCell,
    el("td", { "data-label": "Uploaded" }, when(d.uploaded_at)));
  let seq = d.last_event_seq || 0;
  const draw = (s) => {
    const parts = [statusBadge(s.status)];
    if (s.status === "analyzing" && s.total) {
      parts.push(el("span", { class: "muted" }, ` ${s.done}/${s.total}`));
    }
    if (s.status === "failed" && s.reason) {
      parts.push(el("span", { class: "reason" }, s.reason));
    }
    statusCell.replaceChildren(...parts);
    if (s.level !== undefined || s.status !== "analyzed") {
      riskCell.replaceChildren(riskBadge(s.level, s.score));
    }
  };
  draw({ status: d.status, level: d.risk_level, score: d.score, reason: d.failure && d.failure.reason });
  return {
    node,
    apply(ev) {
      if (ev.seq <= seq) {
        return; // the list was read after this event: it is in the row already
      }
      seq = ev.seq;
      const s = stateOf(ev);
      if (s.status) {
        draw(s);
      }
    },
  };
}

// exporter offers the filtered list as CSV or JSON.
function exporter(currentFilters) {
  const status = el("span", { class: "status", role: "status", "aria-live": "polite", id: "export-status" });
  const buttons = ["csv", "json"].map((format) => on(
    el("button", { type: "button", class: "secondary", id: `export-${format}` }, `Export ${format.toUpperCase()}`),
    "click", () => run(format)));
  async function run(format) {
    buttons.forEach((b) => (b.disabled = true));
    status.classList.remove("error");
    status.textContent = "Exporting…";
    try {
      const q = apiQuery(currentFilters());
      q.set("format", format);
      const resp = await save(`/api/v1/assessments/export?${q}`, `assessments.${format}`);
      const n = Number(resp.headers.get("X-Total-Count") || 0);
      status.textContent = `Exported ${n} assessment${n === 1 ? "" : "s"} as ${format.toUpperCase()}.`;
    } catch (err) {
      status.classList.add("error");
      status.textContent = `The export failed: ${err.message}`;
    } finally {
      buttons.forEach((b) => (b.disabled = false));
    }
  }
  return el("div", { class: "export", role: "group", "aria-label": "Export the filtered list" }, ...buttons, status);
}
