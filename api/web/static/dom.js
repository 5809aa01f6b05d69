// Building the page without HTML strings. Every text, a document name or
// an extracted passage included, goes in as a text node, so nothing the
// API returns is ever parsed as markup; the page's Content-Security-Policy
// (require-trusted-types-for 'script') refuses innerHTML with a string
// anyway, so this is the only way text reaches the page.

// el makes an element: attrs sets attributes (on... handlers excluded:
// listeners are added with on), children are nodes or strings (text).
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name.startsWith("on")) {
      throw new Error(`el: attribute ${name}: add listeners with on()`);
    }
    if (value === false || value === null || value === undefined) {
      continue;
    }
    node.setAttribute(name, value === true ? "" : String(value));
  }
  node.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false).map(toNode));
  return node;
}

function toNode(c) {
  return c instanceof Node ? c : document.createTextNode(String(c));
}

// on adds a listener and returns the node, for chaining in el() calls.
export function on(node, type, listener) {
  node.addEventListener(type, listener);
  return node;
}

// show replaces what parent holds with children.
export function show(parent, ...children) {
  parent.replaceChildren(...children.flat().map(toNode));
}
