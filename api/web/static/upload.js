// Uploading: files dropped on the zone or picked, several at once, each
// with its own progress bar while its bytes go up, then its live stage
// from the user's event feed until it is analyzed or has failed.
import { el, on } from "./dom.js";
import * as api from "./api.js";
import { statusBadge, riskBadge, bytes } from "./format.js";
import { stateOf, openFeed } from "./live.js";

// uploader returns the drop zone and its list of uploads. feed is the
// page's openFeed(); the uploader opens its own when given none. close
// stops following (and the feed, when it is the uploader's own).
export function uploader(feed) {
  const own = !feed;
  feed = feed || openFeed();
  const input = el("input", { type: "file", id: "upload-files", multiple: true, class: "visually-hidden", tabindex: "-1", "aria-hidden": "true" });
  const choose = el("button", { type: "button", id: "choose-files" }, "Choose files…");
  const zone = el("div", { class: "dropzone", id: "dropzone" },
    el("p", {}, "Drop documents here (PDF, Word, Excel, text), or"), choose, input);
  const list = el("ul", { class: "uploads", id: "uploads", "aria-live": "polite" });
  const byId = new Map(); // document id -> item
  const early = new Map(); // document id -> events that came before its upload's answer

  on(choose, "click", () => input.click());
  on(input, "change", () => {
    start([...input.files]);
    input.value = "";
  });
  on(zone, "dragover", (e) => {
    e.preventDefault();
    zone.classList.add("over");
  });
  on(zone, "dragleave", () => zone.classList.remove("over"));
  on(zone, "drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    start([...e.dataTransfer.files]);
  });

  const unsubscribe = feed.subscribe((ev) => {
    const item = byId.get(ev.doc);
    if (item) {
      item.apply(ev);
    } else {
      early.set(ev.doc, [...(early.get(ev.doc) || []), ev]);
    }
  });

  async function start(files) {
    if (files.length === 0) {
      return;
    }
    const items = files.map((f) => uploadItem(f));
    list.prepend(...items.map((i) => i.node));
    // The feed must be open before the first byte goes: it follows from
    // "now", and a document's first events come within milliseconds.
    await feed.ready;
    await Promise.all(items.map(async (item) => {
      const id = await item.send();
      if (id) {
        byId.set(id, item);
        for (const ev of early.get(id) || []) {
          item.apply(ev);
        }
        early.delete(id);
      }
    }));
  }

  return {
    node: el("section", { class: "card upload", "aria-labelledby": "upload-title" },
      el("h2", { id: "upload-title" }, "Upload"), zone, list),
    close() {
      unsubscribe();
      if (own) {
        feed.close();
      }
    },
  };
}

// uploadItem is one file's row: its upload, then its stage.
function uploadItem(file) {
  const bar = el("progress", { max: file.size || 1, value: 0, "aria-label": `Upload of ${file.name}` });
  const stage = el("span", { class: "stage" }, "Waiting…");
  const link = el("span", { class: "open" });
  const node = el("li", { class: "upload-item", "data-name": file.name, "data-status": "pending" },
    el("span", { class: "name" }, file.name), el("span", { class: "muted" }, bytes(file.size)), bar, stage, link);
  let lastSeq = 0;

  function say(status, ...what) {
    node.dataset.status = status;
    stage.replaceChildren(...what);
  }

  return {
    node,
    async send() {
      say("uploading", "Uploading…");
      try {
        const accepted = await api.upload(file, (loaded, total) => {
          bar.max = total || 1;
          bar.value = loaded;
          say("uploading", `Uploading… ${Math.floor((100 * loaded) / (total || 1))}%`);
        });
        bar.value = bar.max;
        node.dataset.id = accepted.id;
        if (node.dataset.status === "uploading") {
          say("uploaded", statusBadge("uploaded"));
        }
        link.replaceChildren(el("a", { href: `/documents/${accepted.id}` }, "Open"));
        return accepted.id;
      } catch (err) {
        say("error", el("span", { class: "error", role: "alert" }, `Not uploaded: ${err.message}`));
        return "";
      }
    },
    apply(ev) {
      if (ev.seq <= lastSeq) {
        return; // seen already
      }
      lastSeq = ev.seq;
      const s = stateOf(ev);
      if (!s.status) {
        return;
      }
      const parts = [statusBadge(s.status)];
      if (s.status === "analyzing" && s.total) {
        parts.push(` chunk ${s.done} of ${s.total}`);
        bar.max = s.total;
        bar.value = s.done;
      }
      if (s.status === "analyzed") {
        parts.push(" ", riskBadge(s.level, s.score));
      }
      if (s.status === "failed") {
        parts.push(" ", el("span", { class: "error" }, s.reason || "The document could not be processed."));
      }
      say(s.status, ...parts);
    },
  };
}

// uploadPage is the /upload route: the uploader alone.
export function uploadPage(main, ctx) {
  ctx.setTitle("Upload");
  const up = uploader();
  main.append(el("h1", { tabindex: "-1" }, "Upload documents"),
    el("p", {}, "Each document is extracted and analyzed as soon as it is uploaded; follow it here or on ", el("a", { href: "/" }, "the dashboard"), "."),
    up.node);
  return up.close;
}
