// Passages of a document's extracted text named in the page's URL: a chat
// answer cites lines, and its link, /documents/{id}#lines-40-44, brings
// the user to the document's page with those lines highlighted and in
// view. The highlight is a CSS custom highlight over a Range, so the text
// (and the evidence marks already in it) is left as it is; only an empty
// anchor is put where the passage starts, for scrolling and focus.

const name = "passage";

// linesOf reads a hash #lines-<start>-<end> (1-based, inclusive); null
// for any other.
export function linesOf(hash) {
  const m = /^#lines-(\d+)-(\d+)$/.exec(hash);
  if (!m) {
    return null;
  }
  const start = Number(m[1]);
  const end = Number(m[2]);
  return start >= 1 && end >= start ? { start, end } : null;
}

// linesHash is the hash naming lines start to end.
export function linesHash(start, end) {
  return `#lines-${start}-${Math.max(start, end)}`;
}

// lineRange is the Range of lines start to end of the text under node
// (its text nodes in order, lines split at "\n"), null when the text has
// fewer lines.
export function lineRange(node, start, end) {
  const walker = document.createTreeWalker(node, NodeFilter.SHOW_TEXT);
  const range = document.createRange();
  let line = 1;
  let begun = false;
  if (start === 1) {
    range.setStart(node, 0);
    begun = true;
  }
  for (let t = walker.nextNode(); t; t = walker.nextNode()) {
    const s = t.data;
    for (let i = s.indexOf("\n"); i >= 0; i = s.indexOf("\n", i + 1)) {
      if (begun && line === end) {
        range.setEnd(t, i);
        return range;
      }
      line += 1;
      if (!begun && line === start) {
        range.setStart(t, i + 1);
        begun = true;
      }
    }
  }
  if (!begun) {
    return null;
  }
  range.setEnd(node, node.childNodes.length); // the last line has no "\n"
  return range;
}

// showPassage highlights the lines the hash names in the text under node,
// scrolls them into view and moves the focus there. It returns whether
// it did (false: no such hash, or lines beyond the text).
export function showPassage(node, hash) {
  const lines = linesOf(hash);
  const range = lines && lineRange(node, lines.start, lines.end);
  node.querySelectorAll(".passage-anchor").forEach((a) => a.remove());
  CSS.highlights.delete(name);
  if (!range) {
    return false;
  }
  CSS.highlights.set(name, new Highlight(range));
  const anchor = document.createElement("span");
  anchor.className = "passage-anchor";
  anchor.id = hash.slice(1);
  anchor.tabIndex = -1;
  anchor.setAttribute("aria-label", `Lines ${lines.start} to ${lines.end}`);
  range.insertNode(anchor);
  range.setStartAfter(anchor); // the Range moved to hold the anchor
  anchor.scrollIntoView({ block: "center" });
  anchor.focus({ preventScroll: true });
  keepInView(anchor);
  return true;
}

// settleMs is how long a passage is kept in view while the page around
// it is still being filled in.
const settleMs = 2000;

// keepInView scrolls anchor back into view when the page's size changes
// in the moments after it was shown: parts of the page above it still
// loading (the chat's conversation) would push it out of sight. Once the
// user scrolls or types, the page is theirs.
function keepInView(anchor) {
  const resized = new ResizeObserver(() => {
    if (anchor.isConnected) {
      anchor.scrollIntoView({ block: "center" });
    }
  });
  const stop = () => {
    resized.disconnect();
    for (const type of ["wheel", "touchstart", "keydown", "mousedown"]) {
      window.removeEventListener(type, stop, true);
    }
  };
  resized.observe(document.body);
  for (const type of ["wheel", "touchstart", "keydown", "mousedown"]) {
    window.addEventListener(type, stop, true);
  }
  setTimeout(stop, settleMs);
}

// followPassages shows the passage the URL names in the text under node
// now and whenever the hash changes (a citation clicked on the same
// page); the function it returns stops that.
export function followPassages(node) {
  const apply = () => showPassage(node, location.hash);
  apply();
  window.addEventListener("hashchange", apply);
  return () => {
    window.removeEventListener("hashchange", apply);
    CSS.highlights.delete(name);
  };
}
