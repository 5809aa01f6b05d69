// The chat: a panel that holds one conversation (on a document's page or
// on its own page at /chat/{id}) and the list of conversations at /chat.
//
// The panel reads the session (GET), then follows its event stream from
// the start: the stream replays every stored event and the answer being
// written, so whatever the read missed (or the page was opened in the
// middle of) arrives there. Every event is applied by id, so the replay
// of what the read already showed changes nothing.
import { el, on, show } from "./dom.js";
import * as api from "./api.js";
import { confirmAction, failure } from "./ui.js";
import { linesHash } from "./passage.js";

const base = "/api/v1/chat/sessions";

// chatPanel returns the element of a conversation: sessionId's, or for a
// document (documentId) the newest conversation about it, a new one being
// opened when the first question is asked. onSession(id), when given, is
// told the id of a session the panel opens; signedOut(err), when given,
// takes an answer that the user's session is over (app.js's ctx.signedOut)
// and returns whether it did. The panel closes its event stream by itself
// once it leaves the page.
export function chatPanel({ sessionId = "", documentId = "", onSession, signedOut } = {}) {
  const c = new Conversation(documentId, onSession, signedOut || (() => false));
  c.start(sessionId);
  return c.root;
}

// problemWords says what a refused question means for the user.
function problemWords(err) {
  if (!(err instanceof api.Problem)) {
    return `The question could not be sent: ${err.message || err}. Check the connection and try again.`;
  }
  switch (err.class) {
    case "conflict":
      return "An answer is still being written in this conversation. Ask again once it has finished.";
    case "budget-spent":
      return `Your daily model budget is spent (it is shared with document analyses). It renews at midnight UTC${inHours(err.retryAfter)}.`;
    case "bad-content":
      return "A question needs some text, and at most 8000 characters.";
  }
  if (err.status === 429) {
    return `Too many requests just now. Try again${inSeconds(err.retryAfter)}.`;
  }
  if (err.status === 404) {
    return "This conversation no longer exists.";
  }
  return err.message;
}

function inHours(seconds) {
  if (!seconds) {
    return "";
  }
  const h = Math.floor(seconds / 3600);
  const m = Math.ceil((seconds % 3600) / 60);
  return h > 0 ? `, in ${h} h ${m} min` : `, in ${m} min`;
}

function inSeconds(seconds) {
  return seconds ? ` in ${seconds} s` : " in a moment";
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

// Conversation is the state of one panel: its messages by id (each
// question knows its answer, each answer its question) and their
// elements.
class Conversation {
  constructor(documentId, onSession, signedOut) {
    this.documentId = documentId;
    this.onSession = onSession;
    this.signedOut = signedOut;
    this.sessionId = "";
    this.questions = new Map(); // id -> {id, content, answerId, node}
    this.answers = new Map(); // id -> {id, questionId, status, text, bytes, node}
    this.source = null;
    this.retry = 0;
    this.gone = false; // the panel left the page: it follows nothing any more

    this.log = el("div", { class: "chat-log" });
    this.empty = el("p", { class: "chat-empty muted" }, documentId
      ? "Ask about this document: its assessment and its text ground the answers, which cite the passages they use."
      : "Ask about risk, compliance or your recent assessments.");
    // Announces the turns, not every delta: the streamed text itself is
    // in no live region.
    this.announce = el("p", { class: "chat-announce visually-hidden", role: "status", "aria-live": "polite" });
    this.status = el("p", { class: "status", role: "status" });
    this.question = el("textarea", {
      id: `chat-question-${uid()}`, name: "content", rows: 2, maxlength: 8000, required: true,
      placeholder: "Ask a question…",
    });
    this.send = el("button", { type: "submit" }, "Ask");
    const form = el("form", { class: "chat-ask" },
      el("label", { for: this.question.id, class: "visually-hidden" }, "Your question"),
      this.question, this.send);
    on(form, "submit", (event) => {
      event.preventDefault();
      this.ask();
    });
    // Enter asks, Shift+Enter starts a new line, as in chat products.
    on(this.question, "keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        form.requestSubmit();
      }
    });
    this.form = form;
    this.root = el("section", { class: "chat", "aria-label": "Chat" },
      this.log, this.announce, this.status, form);
    this.log.append(this.empty);
  }

  async start(sessionId) {
    this.status.textContent = "Loading the conversation…";
    try {
      if (!sessionId && this.documentId) {
        sessionId = await newestAbout(this.documentId);
      }
      if (sessionId) {
        this.load(await api.request("GET", `${base}/${encodeURIComponent(sessionId)}`));
      }
      this.status.textContent = "";
    } catch (err) {
      if (this.signedOut(err)) {
        return;
      }
      this.status.textContent = err instanceof api.Problem && err.status === 404
        ? "This conversation no longer exists."
        : `The conversation could not be loaded: ${err.message}`;
      this.status.classList.add("error");
      this.send.disabled = true;
    }
  }

  // load shows a session read from the API and follows its events.
  load(session) {
    this.sessionId = session.id;
    this.documentId = session.document_id || this.documentId;
    for (const m of session.messages) {
      if (m.role === "user") {
        this.addQuestion(m.id, m.content);
      } else if (this.questions.has(m.question_id)) {
        this.setAnswer(m.question_id, m.id, "");
        this.ended(m, false);
      }
    }
    this.follow();
  }

  // follow opens the session's event stream. The browser reconnects on
  // its own (with Last-Event-ID, resuming mid-answer); a stream the server
  // refused (closed) is opened again after a pause, from the start.
  follow() {
    if (this.source || !this.sessionId || this.gone) {
      return;
    }
    const source = new EventSource(`${base}/${encodeURIComponent(this.sessionId)}/events`);
    this.source = source;
    this.closeWhenGone();
    // A stream event named "error" (an answer that did not complete)
    // shares its type with the EventSource's own connection errors: only
    // the former carries data.
    const handle = (name, fn) => source.addEventListener(name, (event) => {
      if (typeof event.data !== "string") {
        return;
      }
      this.retry = 0;
      fn(JSON.parse(event.data));
    });
    handle("question", (q) => {
      this.addQuestion(q.id, q.content);
      this.setAnswer(q.id, q.answer_id, q.regenerates || "");
    });
    handle("delta", (d) => this.delta(d));
    handle("answer", (m) => this.ended(m, true));
    handle("error", (m) => this.ended(m, true));
    handle("deleted", () => {
      this.close();
      this.status.textContent = "This conversation was deleted.";
      this.send.disabled = true;
    });
    on(source, "open", () => {
      if (this.status.dataset.stream) {
        this.status.textContent = "";
        delete this.status.dataset.stream;
      }
    });
    on(source, "error", (event) => {
      if (typeof event.data === "string") {
        return; // an answer's error event, handled above
      }
      this.status.dataset.stream = "down";
      if (source.readyState === EventSource.CONNECTING) {
        this.status.textContent = "Connection lost; reconnecting…";
        return;
      }
      // Closed: the server refused the stream (too many open, or the
      // session is gone). Try again, less and less often.
      this.close();
      this.retry = Math.min(this.retry + 1, 6);
      const wait = 2 ** this.retry;
      this.status.textContent = `Live updates stopped; trying again in ${wait} s.`;
      setTimeout(() => {
        if (!this.gone) {
          this.follow();
        }
      }, wait * 1000);
    });
  }

  // closeWhenGone closes the stream once the panel leaves the page (the
  // application showed another page): heartbeats fire no event, so the
  // stream itself would never notice.
  closeWhenGone() {
    if (this.observer) {
      return;
    }
    let attached = this.root.isConnected;
    this.observer = new MutationObserver(() => {
      if (this.root.isConnected) {
        attached = true;
      } else if (attached) {
        this.gone = true;
        this.close();
      }
    });
    this.observer.observe(document.body, { childList: true, subtree: true });
  }

  close() {
    if (this.observer) {
      this.observer.disconnect();
      this.observer = null;
    }
    if (this.source) {
      this.source.close();
      this.source = null;
    }
  }

  addQuestion(id, content) {
    if (this.questions.has(id)) {
      return;
    }
    this.empty.remove();
    const node = el("article", { class: "msg msg-user", "data-id": id },
      el("h3", { class: "visually-hidden" }, "You asked"),
      el("p", { class: "msg-text" }, content));
    this.questions.set(id, { id, content, answerId: "", node });
    this.log.append(node);
  }

  // setAnswer makes answerId the answer of question questionId. A
  // question's answer changes only by regeneration (regenerates names the
  // one replaced), so an answer event for an answer neither current nor
  // the replacement of the current one is history the replay goes
  // through: ignored.
  setAnswer(questionId, answerId, regenerates) {
    const q = this.questions.get(questionId);
    if (!q || q.answerId === answerId) {
      return;
    }
    if (q.answerId && q.answerId !== regenerates) {
      return;
    }
    const a = { id: answerId, questionId, status: "answering", text: "", bytes: 0, node: null };
    this.render(a);
    const old = this.answers.get(q.answerId);
    if (old) {
      old.node.replaceWith(a.node);
      this.answers.delete(old.id);
    } else {
      q.node.after(a.node);
    }
    q.answerId = answerId;
    this.answers.set(answerId, a);
  }

  // delta adds the next text of an answer being written. Offsets count
  // bytes of UTF-8: text the panel has already is skipped, and after a gap
  // (text lost) the panel waits for the whole answer.
  delta(d) {
    const a = this.answers.get(d.answer_id);
    if (!a || a.status !== "answering" || d.offset > a.bytes) {
      return;
    }
    let raw = encoder.encode(d.text);
    if (d.offset < a.bytes) {
      raw = raw.subarray(a.bytes - d.offset);
    }
    if (raw.length === 0) {
      return;
    }
    a.bytes += raw.length;
    a.text += decoder.decode(raw);
    const stick = this.atBottom();
    a.textNode.textContent = a.text;
    if (stick) {
      this.log.scrollTop = this.log.scrollHeight;
    }
  }

  // ended shows an answer's end: its whole text (replacing what streamed
  // in), citations and cost, or why it did not complete.
  ended(m, announce) {
    const a = this.answers.get(m.id);
    if (!a) {
      return;
    }
    if (a.status === m.status && a.text === m.content) {
      // Shown already (the stream replays what the read showed): drawing
      // it again would take away what the user's focus or pointer is on.
      return;
    }
    Object.assign(a, m, { text: m.content, bytes: encoder.encode(m.content).length });
    const old = a.node;
    const stick = this.atBottom();
    this.render(a);
    old.replaceWith(a.node);
    if (stick) {
      this.log.scrollTop = this.log.scrollHeight;
    }
    if (!announce) {
      return;
    }
    if (m.status === "complete") {
      this.say("Answer complete.");
    } else {
      this.say(`The answer did not complete: ${m.reason || m.status}.`);
    }
  }

  // render makes an answer's element from its state.
  render(a) {
    const answering = a.status === "answering";
    a.textNode = el("div", { class: "msg-text" });
    if (answering) {
      a.textNode.textContent = a.text;
    } else {
      a.textNode.append(...this.withCitations(a.content || "", a.citations || []));
    }
    const parts = [el("h3", { class: "visually-hidden" }, "The assistant answered"), a.textNode];
    if (answering) {
      parts.push(el("p", { class: "msg-meta typing" }, "Answering…"));
    }
    if (a.citations && a.citations.length > 0) {
      parts.push(el("h4", { class: "citations-title" }, "Sources"),
        el("ol", { class: "citations" }, a.citations.map((c) => el("li", { value: c.ref },
          this.citationLink(c, where(c)), " ", el("q", {}, c.quote)))));
    }
    if (a.status === "complete" && a.model) {
      parts.push(el("p", { class: "msg-meta" }, meta(a)));
    }
    if (a.status === "incomplete" || a.status === "failed") {
      const again = on(el("button", { type: "button", class: "secondary" }, "Regenerate"), "click",
        () => this.regenerate(a, again));
      parts.push(el("p", { class: "msg-reason error" },
        a.reason || (a.status === "incomplete" ? "The answer was cut off." : "No answer was written.")), again);
    }
    a.node = el("article", {
      class: `msg msg-assistant msg-${a.status}`, "data-id": a.id, "data-status": a.status,
      "aria-busy": answering ? "true" : "false",
    }, ...parts);
  }

  // withCitations turns each [n] of an answer that names one of its
  // citations into a link to the passage.
  withCitations(text, citations) {
    const byRef = new Map(citations.map((c) => [c.ref, c]));
    const out = [];
    let at = 0;
    for (const m of text.matchAll(/\[(\d+)\]/g)) {
      const c = byRef.get(Number(m[1]));
      if (!c) {
        continue;
      }
      out.push(text.slice(at, m.index), this.citationLink(c, m[0], `Source ${c.ref}: ${where(c)}`));
      at = m.index + m[0].length;
    }
    out.push(text.slice(at));
    return out;
  }

  // citationLink leads to the passage in the document page's extracted
  // text: /documents/{id}#lines-<start>-<end>, which that page scrolls to
  // and highlights (passage.js).
  citationLink(c, text, label) {
    if (!this.documentId) {
      return el("span", { class: "cite" }, text);
    }
    let href = `/documents/${encodeURIComponent(this.documentId)}`;
    if (c.start_line > 0) {
      href += linesHash(c.start_line, c.end_line);
    }
    return el("a", { class: "cite", href, "aria-label": label || null }, text);
  }

  atBottom() {
    return this.log.scrollHeight - this.log.scrollTop - this.log.clientHeight < 40;
  }

  say(text) {
    this.announce.textContent = text;
  }

  refused(err) {
    if (this.signedOut(err)) {
      return;
    }
    this.status.textContent = problemWords(err);
    this.status.classList.add("error");
  }

  async ask() {
    const content = this.question.value;
    if (!content.trim()) {
      this.question.focus();
      return;
    }
    this.send.disabled = true;
    this.status.classList.remove("error");
    this.status.textContent = "Sending…";
    try {
      if (!this.sessionId) {
        const body = this.documentId ? { document_id: this.documentId } : {};
        const s = await api.request("POST", base, body);
        this.sessionId = s.id;
        if (this.onSession) {
          this.onSession(s.id);
        }
        this.follow();
      }
      const ok = await api.request("POST", `${base}/${encodeURIComponent(this.sessionId)}/messages`, { content });
      this.addQuestion(ok.message_id, content);
      this.setAnswer(ok.message_id, ok.answer_id, "");
      this.say("Question sent. The assistant is answering…");
      this.question.value = "";
      this.status.textContent = "";
      this.log.scrollTop = this.log.scrollHeight;
    } catch (err) {
      this.refused(err); // the question stays in the box, to ask again
    } finally {
      this.send.disabled = false;
      this.question.focus();
    }
  }

  async regenerate(a, button) {
    button.disabled = true;
    this.status.classList.remove("error");
    this.status.textContent = "Asking again…";
    try {
      const ok = await api.request("POST",
        `${base}/${encodeURIComponent(this.sessionId)}/messages/${encodeURIComponent(a.id)}/regenerate`);
      this.setAnswer(a.questionId, ok.answer_id, a.id);
      this.say("Asked again. The assistant is answering…");
      this.status.textContent = "";
    } catch (err) {
      this.refused(err);
      button.disabled = false;
    }
  }
}

let uidSeq = 0;

function uid() {
  uidSeq += 1;
  return uidSeq;
}

// where names a citation's place in the document.
function where(c) {
  const parts = [];
  if (c.sheet) {
    parts.push(`sheet ${c.sheet}`);
  }
  if (c.page) {
    parts.push(`page ${c.page}`);
  }
  if (c.start_line > 0) {
    parts.push(c.end_line > c.start_line ? `lines ${c.start_line}–${c.end_line}` : `line ${c.start_line}`);
  }
  return parts.length > 0 ? parts.join(", ") : "the document";
}

function meta(m) {
  const parts = [m.model];
  if (m.input_tokens || m.output_tokens) {
    parts.push(`${(m.input_tokens || 0) + (m.output_tokens || 0)} tokens`);
  }
  if (m.cost_usd) {
    parts.push(`$${m.cost_usd.toFixed(4)}`);
  }
  if (m.latency_ms) {
    parts.push(`${(m.latency_ms / 1000).toFixed(1)} s`);
  }
  return parts.join(" · ");
}

// newestAbout finds the newest session about a document among the
// caller's recent ones; "" when there is none (the panel opens one when
// the first question is asked, so viewing a page opens nothing).
async function newestAbout(documentId) {
  const page = await api.request("GET", `${base}?limit=100`);
  const s = page.items.find((it) => it.document_id === documentId);
  return s ? s.id : "";
}

// chatPage is the page of /chat (the list of conversations) and of
// /chat/{id} (one of them), as app.js routes pages: it fills main, and
// ctx gives the route's id, the title, navigation and the sign-in.
export function chatPage(main, ctx) {
  const id = ctx.params[0];
  main.append(id ? conversationPage(id, ctx) : listPage(ctx));
}

function conversationPage(sessionId, ctx) {
  ctx.setTitle("Chat");
  const title = el("h1", { tabindex: "-1" }, "Chat");
  const about = el("p", { class: "muted" });
  const status = el("p", { class: "status", role: "status", "aria-live": "polite" });
  const remove = on(el("button", { type: "button", class: "danger", id: "chat-delete" }, "Delete…"), "click", async () => {
    if (!(await confirmAction(`Delete the conversation “${title.textContent}”? This cannot be undone.`, "Delete"))) {
      return;
    }
    remove.disabled = true;
    try {
      await api.request("DELETE", `${base}/${encodeURIComponent(sessionId)}`);
      ctx.navigate("/chat", `Deleted “${title.textContent}”.`);
    } catch (err) {
      failure(ctx, status, "It could not be deleted", err);
      remove.disabled = false;
    }
  });
  // The page reads the session for its title, the panel for its
  // messages: a small read twice, and the panel stays one piece.
  api.request("GET", `${base}/${encodeURIComponent(sessionId)}`).then((s) => {
    title.textContent = s.title;
    ctx.setTitle(s.title);
    if (s.document_id) {
      show(about, "About the document ", el("a", { href: `/documents/${encodeURIComponent(s.document_id)}` }, s.title), ".");
    }
  }, (err) => ctx.signedOut(err)); // the panel says what else went wrong
  return el("section", { class: "chat-page" },
    el("p", {}, el("a", { href: "/chat" }, "← All conversations")),
    el("div", { class: "page-head" }, title, remove),
    about, status,
    // The messages' headings (h3) sit under a second-level one, as on a
    // document's page.
    el("h2", { class: "visually-hidden" }, "Messages"),
    chatPanel({ sessionId, signedOut: ctx.signedOut }));
}

function listPage(ctx) {
  ctx.setTitle("Chat");
  const list = el("ul", { class: "chat-sessions", id: "chat-sessions" });
  const status = el("p", { class: "status", role: "status", "aria-live": "polite" }, "Loading…");
  const more = el("button", { type: "button", class: "secondary", hidden: true }, "More");
  const none = () => el("li", { class: "chat-empty muted" }, "No conversations yet.");
  let cursor = "";
  const newChat = on(el("button", { type: "button", id: "chat-new" }, "New chat"), "click", async () => {
    newChat.disabled = true;
    try {
      const s = await api.request("POST", base, {});
      ctx.navigate(`/chat/${encodeURIComponent(s.id)}`);
    } catch (err) {
      failure(ctx, status, "A chat could not be opened", err);
      newChat.disabled = false;
    }
  });

  const row = (s) => {
    const item = el("li", { class: "chat-session", "data-id": s.id });
    const remove = on(el("button", { type: "button", class: "danger", "aria-label": `Delete “${s.title}”…` }, "Delete…"),
      "click", async () => {
        if (!(await confirmAction(`Delete the conversation “${s.title}”? This cannot be undone.`, "Delete"))) {
          return;
        }
        remove.disabled = true;
        try {
          await api.request("DELETE", `${base}/${encodeURIComponent(s.id)}`);
          item.remove();
          status.classList.remove("error");
          status.textContent = `Deleted “${s.title}”.`;
          if (!list.firstChild) {
            list.append(none());
          }
        } catch (err) {
          failure(ctx, status, `“${s.title}” could not be deleted`, err);
          remove.disabled = false;
        }
      });
    show(item,
      el("a", { class: "chat-session-title", href: `/chat/${encodeURIComponent(s.id)}` }, s.title),
      el("span", { class: "chat-session-meta" },
        s.document_id ? "About a document · " : "",
        `${s.message_count} message${s.message_count === 1 ? "" : "s"} · `,
        el("time", { datetime: s.updated_at }, new Date(s.updated_at).toLocaleString())),
      remove);
    return item;
  };

  const load = async () => {
    more.disabled = true;
    try {
      const page = await api.request("GET", `${base}?limit=50${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
      if (!cursor && page.items.length === 0) {
        list.append(none());
      }
      list.append(...page.items.map(row));
      cursor = page.next_cursor;
      more.hidden = !cursor;
      status.textContent = "";
    } catch (err) {
      failure(ctx, status, "The conversations could not be loaded", err);
    } finally {
      more.disabled = false;
    }
  };
  on(more, "click", load);
  load();
  return el("section", { class: "chat-page" },
    el("div", { class: "page-head" }, el("h1", { tabindex: "-1" }, "Chat"), newChat),
    status, list, more);
}
