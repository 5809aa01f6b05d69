// A document's page: its stage timeline live over its event stream, its
// assessment, its extracted text with the evidence marked, and what can be
// done with it (download the original, analyze again, delete).
import { el, on, show } from "./dom.js";
import * as api from "./api.js";
import { statusWords, statusBadge, riskBadge, severities, capital, when, bytes, usd, count } from "./format.js";
import { follow, stateOf, liveIndicator } from "./live.js";
import { marked } from "./highlight.js";
import { save } from "./files.js";
import { chatPanel } from "./chat.js";
import { followPassages } from "./passage.js";

export function documentPage(main, ctx) {
  const id = ctx.params[0];
  let closed = false;
  let stream = null;
  let retry = 0;
  let stopPassages = () => {};
  const status = el("p", { class: "status", role: "status", "aria-live": "polite" }, "Loading…");
  main.append(status);
  start();

  async function start() {
    let doc;
    try {
      doc = await api.documents.get(id);
    } catch (err) {
      if (ctx.signedOut(err)) {
        return;
      }
      ctx.setTitle("Document");
      status.classList.add("error");
      status.textContent = err.status === 404 ? "There is no such document, or it was deleted." : `The document could not be loaded: ${err.message}`;
      return;
    }
    if (!closed) {
      render(doc);
    }
  }

  function render(doc) {
    const name = doc.filename || doc.id;
    ctx.setTitle(name);
    const seen = new Set(); // event seqs shown: a resumed stream never shows one twice
    let lastSeq = 0;
    let run = doc.run || 1;
    let outcome = ""; // of the latest run: analyzed or failed
    let assessedRun = 0;
    const events = []; // of the latest run, in order

    const statusNow = el("span", { id: "doc-status" }, statusBadge(doc.status));
    const indicator = liveIndicator();
    const steps = el("ol", { class: "steps", id: "steps" });
    const activity = el("ol", { class: "activity", id: "activity", "aria-label": "Events" });
    const assessment = el("section", { id: "assessment", class: "card", "aria-labelledby": "assessment-title", hidden: true });
    const text = el("section", { id: "text-section", class: "card", "aria-labelledby": "text-title", hidden: true });
    const actionStatus = el("p", { class: "status", role: "status", "aria-live": "polite", id: "action-status" });
    const download = el("button", { type: "button", id: "download", class: "secondary" }, "Download original");
    const reanalyze = el("button", { type: "button", id: "reanalyze", class: "secondary" }, "Analyze again");
    const remove = el("button", { type: "button", id: "delete", class: "danger" }, "Delete…");

    status.remove();
    main.append(
      el("div", { class: "page-head" }, el("h1", { tabindex: "-1", id: "doc-name" }, name), statusNow),
      el("p", { class: "meta" }, facts(doc)),
      el("div", { class: "actions" }, download, reanalyze, remove), actionStatus,
      el("section", { class: "card", "aria-labelledby": "timeline-title" },
        el("div", { class: "page-head" }, el("h2", { id: "timeline-title" }, "Progress"), indicator.node),
        steps,
        el("details", {}, el("summary", {}, "Every event"), activity)),
      assessment,
      el("section", { id: "chat-panel", "data-document-id": doc.id, "aria-label": "Ask about this document" },
        el("h2", {}, "Ask about this document"), chatPanel({ documentId: doc.id, signedOut: ctx.signedOut })),
      text);

    drawSteps();
    updateActions(doc.status);
    if (doc.status === "analyzed") {
      showAssessment(doc.run);
    }
    open();

    on(download, "click", async () => {
      say("Downloading the original…");
      try {
        await save(api.documents.originalURL(doc.id), name);
        say("The original is downloaded.");
      } catch (err) {
        say(`The original could not be downloaded: ${err.message}`, true);
      }
    });
    on(reanalyze, "click", async () => {
      reanalyze.disabled = true;
      say("Starting a new analysis…");
      try {
        const accepted = await api.documents.reanalyze(doc.id);
        say(`Analysis run ${accepted.run || ""} started.`);
        if (!stream) {
          open(); // the stream of the last run ended: follow the new one from where it left off
        }
      } catch (err) {
        if (!ctx.signedOut(err)) {
          say(`No new analysis: ${err.message}`, true);
          updateActions(outcome || doc.status);
        }
      }
    });
    on(remove, "click", () => confirmDelete(doc, name));

    function say(what, error = false) {
      actionStatus.classList.toggle("error", error);
      actionStatus.textContent = what;
    }

    function updateActions(s) {
      reanalyze.disabled = !(s === "analyzed" || s === "failed");
    }

    // open follows the document's events after the last one shown.
    function open() {
      const url = api.documents.eventsURL(doc.id) + (lastSeq ? `?lastEventId=${lastSeq}` : "");
      stream = follow(url, onEvent, (state) => {
        if (state === "live") {
          retry = 0;
        }
        if (state !== "closed" && !(state === "reconnecting" && outcome)) {
          indicator.set(state);
          return;
        }
        // The stream is over: it ends after the run's outcome (the
        // reconnect after it would be answered 204), or it was refused.
        stream.close();
        stream = null;
        indicator.set(outcome ? "done" : "closed");
        if (!outcome && !closed) {
          recover();
        }
      });
    }

    // recover reopens a stream that ended before the run's outcome, the
    // way EventSource does after a dropped connection, unless the answer
    // is that the user or the document is gone.
    async function recover() {
      retry = Math.min(retry + 1, 5);
      await new Promise((r) => setTimeout(r, 1000 * retry));
      if (closed || stream) {
        return;
      }
      try {
        await api.documents.get(doc.id);
      } catch (err) {
        if (ctx.signedOut(err)) {
          return;
        }
        if (err.status === 404) {
          say("This document has been deleted.", true);
          return;
        }
      }
      if (!closed && !stream) {
        open();
      }
    }

    function onEvent(ev) {
      if (seen.has(ev.seq)) {
        return;
      }
      seen.add(ev.seq);
      lastSeq = Math.max(lastSeq, ev.seq);
      activity.append(activityItem(ev));
      if (ev.run > run) {
        run = ev.run;
        events.length = 0;
        outcome = "";
      }
      if (ev.run < run) {
        return;
      }
      events.push(ev);
      const s = stateOf(ev);
      if (s.status) {
        statusNow.replaceChildren(statusBadge(s.status));
        updateActions(s.status);
      }
      if (ev.type === "analyzed" || ev.type === "failed") {
        outcome = ev.type;
      }
      drawSteps();
      if (ev.type === "analyzed" && ev.run > assessedRun) {
        showAssessment(ev.run);
      }
    }

    // drawSteps shows where the latest run is: uploaded, extracting,
    // analyzing (chunks, or waiting for capacity), and its outcome.
    function drawSteps() {
      const st = [
        { key: "uploaded", label: "Uploaded", state: "pending", detail: "" },
        { key: "extract", label: "Text extracted", state: "pending", detail: "" },
        { key: "analyze", label: "Analyzed", state: "pending", detail: "" },
      ];
      const reach = (n, state) => {
        for (let i = 0; i < n; i++) {
          st[i].state = "done";
        }
        st[n].state = state;
      };
      if (events.length === 0) {
        reach(0, doc.status === "uploaded" ? "done" : "active");
      }
      for (const ev of events) {
        const s = stateOf(ev);
        switch (ev.type) {
          case "uploaded":
            reach(0, "done");
            st[0].detail = when(ev.time, true);
            break;
          case "extracted":
            reach(1, "done");
            st[1].label = "Text extracted";
            st[1].detail = [ev.data.pages ? `${count(ev.data.pages)} pages, ` : "", `${count(ev.data.words)} words`, ev.data.truncated ? " (truncated)" : ""].join("");
            break;
          case "progress":
            if (s.status === "extracting") {
              reach(1, "active");
              st[1].label = "Extracting text";
            } else if (s.status === "queued") {
              reach(2, "waiting");
              st[2].label = "Waiting for model capacity";
              st[2].detail = "The models are busy: the analysis goes on as soon as one has room.";
            } else if (s.status === "analyzing") {
              reach(2, "active");
              st[2].label = "Analyzing";
              st[2].detail = s.total ? el("span", {}, el("progress", { max: s.total, value: s.done, "aria-label": "Chunks analyzed" }), ` chunk ${s.done} of ${s.total}`) : "";
            }
            break;
          case "analyzed":
            reach(2, "done");
            st[2].label = "Analyzed";
            st[2].detail = riskBadge(s.level, s.score);
            break;
          case "failed": {
            const at = s.stage === "analyze" ? 2 : s.stage === "extract" ? 1 : 0;
            reach(at, "failed");
            st[at].label = at === 2 ? "Analysis failed" : at === 1 ? "Extraction failed" : "Failed";
            st[at].detail = el("span", { class: "error" }, s.reason || "The document could not be processed.");
            break;
          }
        }
      }
      show(steps, st.map((s) => el("li", { class: `step ${s.state}`, "data-step": s.key, "data-state": s.state, "aria-current": s.state === "active" || s.state === "waiting" ? "step" : false },
        el("span", { class: "label" }, s.label), el("span", { class: "detail" }, s.detail))));
      if (run > 1) {
        steps.prepend(el("li", { class: "run muted" }, `Run ${run}`));
      }
    }

    async function showAssessment(forRun) {
      assessedRun = Math.max(assessedRun, forRun);
      assessment.hidden = false;
      show(assessment, el("h2", { id: "assessment-title" }, "Assessment"), el("p", { class: "status", role: "status" }, "Loading the assessment…"));
      let a;
      let t;
      try {
        [a, t] = await Promise.all([api.documents.assessment(doc.id), api.documents.text(doc.id)]);
      } catch (err) {
        if (!ctx.signedOut(err)) {
          show(assessment, el("h2", { id: "assessment-title" }, "Assessment"), el("p", { class: "error", role: "alert" }, `The assessment could not be loaded: ${err.message}`));
        }
        return;
      }
      if (closed) {
        return;
      }
      const factors = (a.result && a.result.risk_factors) || [];
      const m = marked(t, factors.map((f) => f.evidence));
      renderAssessment(assessment, a, factors, m.found);
      text.hidden = false;
      const pre = el("pre", { id: "text", class: "text", tabindex: "0", "aria-label": "Extracted text" }, m.nodes);
      show(text,
        el("h2", { id: "text-title" }, "Extracted text"),
        el("p", { class: "muted" }, `${count(t.length)} characters; the evidence of each risk factor is marked.`),
        pre);
      stopPassages();
      stopPassages = followPassages(pre); // the lines a chat citation names (#lines-a-b)
    }
  }

  // confirmDelete asks before deleting, in a modal dialog (focus stays in
  // it; Escape cancels).
  function confirmDelete(doc, name) {
    const msg = el("p", { class: "status", role: "status", "aria-live": "polite" });
    const yes = el("button", { type: "button", class: "danger", id: "confirm-delete" }, "Delete");
    const no = el("button", { type: "button", class: "secondary" }, "Cancel");
    const dialog = el("dialog", { "aria-labelledby": "delete-title", id: "delete-dialog" },
      el("h2", { id: "delete-title" }, "Delete this document?"),
      el("p", {}, "“", name, "”, its extracted text and its assessments will be deleted. This cannot be undone."),
      el("div", { class: "actions" }, no, yes), msg);
    on(no, "click", () => dialog.close());
    on(dialog, "close", () => dialog.remove());
    on(yes, "click", async () => {
      yes.disabled = true;
      msg.classList.remove("error");
      msg.textContent = "Deleting…";
      try {
        await api.documents.remove(doc.id);
        dialog.close();
        ctx.navigate("/", `Deleted “${name}”.`);
      } catch (err) {
        if (ctx.signedOut(err)) {
          return;
        }
        msg.classList.add("error");
        msg.textContent = `Not deleted: ${err.message}`;
        yes.disabled = false;
      }
    });
    document.body.append(dialog);
    dialog.showModal();
    no.focus();
  }

  return () => {
    closed = true;
    stopPassages();
    if (stream) {
      stream.close();
    }
  };
}

function facts(doc) {
  const parts = [];
  if (doc.detected_format) {
    parts.push(doc.detected_format.toUpperCase());
  }
  if (doc.size_bytes !== undefined) {
    parts.push(bytes(doc.size_bytes));
  }
  if (doc.pages) {
    parts.push(`${count(doc.pages)} pages`);
  }
  if (doc.words) {
    parts.push(`${count(doc.words)} words`);
  }
  const out = [parts.join(" · ")];
  if (doc.uploaded_at) {
    out.push(parts.length ? " · uploaded " : "Uploaded ", when(doc.uploaded_at));
  }
  return out;
}

// activityItem is one event in words, for the list of every event.
function activityItem(ev) {
  const s = stateOf(ev);
  let words;
  switch (ev.type) {
    case "uploaded":
      words = ["Uploaded as “", ev.data.filename || "", "”"];
      break;
    case "extracted":
      words = [`Text extracted: ${count(ev.data.words)} words`, ev.data.format ? ` from ${ev.data.format.toUpperCase()}` : ""];
      break;
    case "analyzed":
      words = [`Analyzed: score ${s.score}, ${s.level} risk`];
      break;
    case "failed":
      words = [`Failed while ${s.stage === "analyze" ? "analyzing" : s.stage === "extract" ? "extracting text" : "taking the upload"}: `, s.reason || ""];
      break;
    default: {
      const said = s.step === "chunk" && s.total ? `Analyzed chunk ${s.done} of ${s.total}` : statusWords[s.status] || s.status || s.step;
      // A stage's own note, when it says more than the status does.
      const note = s.message && s.step !== "chunk" && s.message.toLowerCase() !== said.toLowerCase() ? ` (${s.message})` : "";
      words = [said, note];
    }
  }
  return el("li", { "data-seq": ev.seq, "data-type": ev.type, "data-run": ev.run }, when(ev.time, true), " ", ...words, ev.run > 1 ? ` (run ${ev.run})` : "");
}

// renderAssessment shows the score, the risk factors by category (most
// severe first) with their evidence and where it is, the recommendations,
// the compliance concerns, and what the analysis cost.
function renderAssessment(section, a, factors, found) {
  const r = a.result || {};
  const rank = (s) => {
    const i = severities.indexOf(s);
    return i < 0 ? severities.length : i;
  };
  const byCategory = new Map();
  factors.forEach((f, i) => {
    const c = f.category || "other";
    byCategory.set(c, [...(byCategory.get(c) || []), { f, i }]);
  });
  const groups = [...byCategory.entries()]
    .map(([c, list]) => [c, list.sort((x, y) => rank(x.f.severity) - rank(y.f.severity))])
    .sort((x, y) => rank(x[1][0].f.severity) - rank(y[1][0].f.severity) || x[0].localeCompare(y[0]));

  show(section,
    el("h2", { id: "assessment-title" }, "Assessment"),
    el("div", { class: "score" },
      el("span", { class: "score-value", id: "score" }, String(a.score)),
      el("span", { class: "muted" }, "/100 "), riskBadge(a.risk_level)),
    r.summary ? el("p", { class: "summary" }, r.summary) : null,
    el("h3", {}, `Risk factors (${factors.length})`),
    factors.length === 0 ? el("p", { class: "muted" }, "None found.") : null,
    groups.map(([category, list]) => el("section", { class: "category", "data-category": category },
      el("h4", {}, capital(category.replaceAll("-", " "))),
      el("ul", { class: "factors" }, list.map(({ f, i }) => factor(f, found[i]))))),
    el("h3", {}, "Recommendations"),
    (r.recommendations || []).length ? el("ol", { class: "recommendations" }, r.recommendations.map((x) => el("li", {}, x))) : el("p", { class: "muted" }, "None."),
    el("h3", {}, "Compliance concerns"),
    (r.compliance_concerns || []).length
      ? el("ul", { class: "concerns" }, r.compliance_concerns.map((c) => el("li", {}, el("strong", {}, c.regulation), ": ", c.concern)))
      : el("p", { class: "muted" }, "None."),
    el("h3", {}, "Analysis"),
    el("dl", { class: "facts" },
      el("dt", {}, "Model"), el("dd", { id: "model" }, a.model),
      el("dt", {}, "Tokens"), el("dd", {}, `${count(a.input_tokens)} in, ${count(a.output_tokens)} out`),
      el("dt", {}, "Cost"), el("dd", {}, usd(a.cost_usd), a.cached ? " (from the cache)" : ""),
      el("dt", {}, "Prompt"), el("dd", {}, a.prompt_version),
      el("dt", {}, "Assessed"), el("dd", {}, when(a.created_at), a.run > 1 ? ` (run ${a.run})` : "")));
}

function factor(f, markId) {
  const where = [];
  if (f.location) {
    where.push(f.location);
  }
  const goTo = markId
    ? on(el("button", { type: "button", class: "link", "data-mark": markId }, "Show in the text"), "click", () => {
      const mark = document.getElementById(markId);
      mark.scrollIntoView({ block: "center" });
      mark.focus({ preventScroll: true });
    })
    : el("span", { class: "muted" }, "(not found in the extracted text)");
  return el("li", { class: "factor", "data-severity": f.severity },
    el("div", { class: "factor-head" }, el("span", { class: `badge sev-${f.severity}` }, capital(f.severity)), " ", el("strong", {}, f.title)),
    f.explanation ? el("p", {}, f.explanation) : null,
    f.evidence ? el("blockquote", { class: "evidence-quote" }, f.evidence) : null,
    el("p", { class: "where" }, where.length ? `Where: ${where.join(", ")} · ` : "", goTo));
}
