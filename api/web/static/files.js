// Saving a file the API answers with: fetched, so the page can say that
// it is under way and how it ended, then handed to the browser to save
// under the name the server gave.
import { el } from "./dom.js";
import { fetchRaw } from "./api.js";

// save fetches url and saves it; it returns the response (its headers
// say more, X-Total-Count of an export say) or throws a Problem.
export async function save(url, fallbackName) {
  const resp = await fetchRaw(url);
  const blob = await resp.blob();
  const cd = resp.headers.get("Content-Disposition") || "";
  const utf8 = /filename\*=UTF-8''([^;]+)/i.exec(cd);
  const ascii = /filename="?([^";]+)"?/i.exec(cd);
  const name = utf8 ? decodeURIComponent(utf8[1]) : ascii ? ascii[1] : fallbackName;
  const href = URL.createObjectURL(blob);
  const a = el("a", { href, download: name, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  // The browser has taken the file once the click is handled; the URL
  // is kept a while for slow disks.
  setTimeout(() => URL.revokeObjectURL(href), 60_000);
  return resp;
}
