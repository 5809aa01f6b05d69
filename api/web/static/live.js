// Following documents live over server-sent events. EventSource
// reconnects by itself after a dropped connection or a restarted server,
// sending the id of the last event it had (Last-Event-ID), and the API
// resumes right after it: nothing is missed or repeated. The session
// cookie goes with it; nothing secret is ever in the URL.
import { el } from "./dom.js";

const eventTypes = ["uploaded", "progress", "extracted", "analyzed", "failed"];

// follow calls onEvent with each document event of the stream at url, as
// {seq, type, doc, run, time, data}, and onState with the connection's
// state: "connecting", "live", "reconnecting", or "closed" (the stream is
// over, or was refused).
export function follow(url, onEvent, onState = () => {}) {
  const source = new EventSource(url);
  onState("connecting");
  for (const type of eventTypes) {
    source.addEventListener(type, (m) => {
      let ev;
      try {
        ev = JSON.parse(m.data);
      } catch {
        return; // not an event of ours: the API sends only JSON
      }
      onEvent({ seq: Number(m.lastEventId), type, doc: ev.subject, run: ev.run, time: ev.time, data: ev.data || {} });
    });
  }
  source.addEventListener("open", () => onState("live"));
  source.addEventListener("error", () => onState(source.readyState === EventSource.CLOSED ? "closed" : "reconnecting"));
  return { close: () => source.close() };
}

// openFeed follows every document of the user (GET /api/v1/events), for
// any number of listeners on a page. ready settles once the stream is open
// (events from then on arrive) or has failed.
export function openFeed() {
  const listeners = new Set();
  const watchers = new Set();
  let state = "connecting";
  let settle;
  const ready = new Promise((resolve) => {
    settle = resolve;
  });
  const stream = follow("/api/v1/events", (ev) => listeners.forEach((fn) => fn(ev)), (s) => {
    state = s;
    if (s !== "connecting") {
      settle(s);
    }
    watchers.forEach((fn) => fn(s));
  });
  return {
    ready,
    subscribe(fn) {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },
    watch(fn) {
      watchers.add(fn);
      fn(state);
    },
    close: stream.close,
  };
}

// stateOf is what an event says of its document now: its status, and
// the score and level, failure reason or analysis progress it brings.
export function stateOf(ev) {
  switch (ev.type) {
    case "progress":
      return { status: ev.data.status || "", done: ev.data.done, total: ev.data.total, step: ev.data.step, message: ev.data.message };
    case "analyzed":
      return { status: "analyzed", score: ev.data.score, level: ev.data.level };
    case "failed":
      return { status: "failed", reason: ev.data.reason, stage: ev.data.stage };
    default:
      return { status: ev.type };
  }
}

const stateWords = {
  connecting: "Connecting…",
  live: "Live",
  reconnecting: "Reconnecting…",
  closed: "Live updates stopped",
  done: "Up to date",
};

// liveIndicator shows a stream's state, in words and for screen readers.
export function liveIndicator() {
  const node = el("span", { class: "live", role: "status", "data-state": "connecting" }, stateWords.connecting);
  return {
    node,
    set(state) {
      node.dataset.state = state;
      node.textContent = stateWords[state] || state;
    },
  };
}
