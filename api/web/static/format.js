// How the pages say things: statuses in words, risk levels as badges,
// times in the reader's locale. Everything returns nodes or strings for
// el(), never markup.
import { el } from "./dom.js";

// Document statuses, as the API names them, in words.
export const statusWords = {
  uploaded: "Uploaded",
  extracting: "Extracting text",
  extracted: "Text extracted",
  analyzing: "Analyzing",
  queued: "Waiting for model capacity",
  analyzed: "Analyzed",
  failed: "Failed",
};

export const riskLevels = ["low", "medium", "high", "critical"];

// Severities, most severe first.
export const severities = ["critical", "high", "medium", "low"];

export function statusBadge(status) {
  return el("span", { class: `badge status-${status}`, "data-status": status }, statusWords[status] || status);
}

// riskBadge shows a level with its score; a document not yet scored has
// neither.
export function riskBadge(level, score) {
  if (!level) {
    return el("span", { class: "muted", "data-risk": "" }, "—");
  }
  return el("span", { class: `badge risk-${level}`, "data-risk": level },
    capital(level), score === undefined || score === null ? "" : ` · ${score}`);
}

export function capital(s) {
  return s ? s[0].toUpperCase() + s.slice(1) : "";
}

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
const timeOnly = new Intl.DateTimeFormat(undefined, { timeStyle: "medium" });

// when is a <time> of an RFC 3339 instant.
export function when(iso, short = false) {
  if (!iso) {
    return "";
  }
  const d = new Date(iso);
  return el("time", { datetime: iso, title: d.toISOString() }, (short ? timeOnly : dateTime).format(d));
}

export function bytes(n) {
  if (n === undefined || n === null) {
    return "";
  }
  const units = ["bytes", "KB", "MB", "GB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`;
}

export function usd(n) {
  return new Intl.NumberFormat(undefined, { style: "currency", currency: "USD", maximumFractionDigits: 4 }).format(n || 0);
}

export function count(n) {
  return new Intl.NumberFormat().format(n || 0);
}
