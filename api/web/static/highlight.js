// Finding evidence quotes in the extracted text and marking them. A
// model quotes the text with its own line breaks and spacing, so quotes
// are matched with every run of whitespace taken as one space, as the
// analyzer checks them; the marks are elements built with el, so the text
// stays text.
import { el } from "./dom.js";

// collapsed is text with every run of whitespace made one space, and
// where each of its characters was in text.
function collapsed(text) {
  const out = [];
  const at = new Int32Array(text.length);
  let n = 0;
  let space = true; // at the start: leading whitespace is dropped
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (/\s/.test(c)) {
      if (!space) {
        out.push(" ");
        at[n++] = i;
        space = true;
      }
      continue;
    }
    out.push(c);
    at[n++] = i;
    space = false;
  }
  return { text: out.join(""), at: at.subarray(0, n) };
}

// locate returns a finder of quotes in text: find(quote) is the [start,
// end) of the quote in text, or null.
export function locate(text) {
  const c = collapsed(text);
  let lower = null;
  return (quote) => {
    const q = collapsed(quote || "").text.trimEnd();
    if (!q) {
      return null;
    }
    let i = c.text.indexOf(q);
    if (i < 0) {
      // Then without regard to case, where lowering keeps the offsets.
      lower = lower ?? c.text.toLowerCase();
      if (lower.length === c.text.length) {
        i = lower.indexOf(q.toLowerCase());
      }
    }
    if (i < 0) {
      return null;
    }
    return [c.at[i], c.at[i + q.length - 1] + 1];
  };
}

// marked returns text as nodes with each quote of quotes marked: a
// <mark id="evidence-i"> for quote i that is found. found[i] is the id
// of the mark that holds quote i (another's, when two overlap), or "".
export function marked(text, quotes) {
  const find = locate(text);
  const spans = [];
  quotes.forEach((q, i) => {
    const r = find(q);
    if (r) {
      spans.push({ start: r[0], end: r[1], i });
    }
  });
  spans.sort((a, b) => a.start - b.start || b.end - a.end);
  const found = quotes.map(() => "");
  const nodes = [];
  let at = 0;
  let last = null;
  for (const s of spans) {
    if (last && s.start < last.end) {
      found[s.i] = `evidence-${last.i}`; // within or across one marked already
      continue;
    }
    nodes.push(text.slice(at, s.start));
    nodes.push(el("mark", { id: `evidence-${s.i}`, class: "evidence", tabindex: "-1" }, text.slice(s.start, s.end)));
    found[s.i] = `evidence-${s.i}`;
    at = s.end;
    last = s;
  }
  nodes.push(text.slice(at));
  return { nodes, found };
}
