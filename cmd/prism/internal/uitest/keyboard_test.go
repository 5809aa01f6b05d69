package uitest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// focusNow describes the focused element and whether its focus can be
// seen: on an element in view, matching :focus-visible, with an outline
// of 2 px at least whose contrast with what is behind it (the parent's
// background) is 3:1 at least (WCAG 1.4.11). "body" when nothing in the
// page has the focus.
const focusNow = `(() => {
	const e = document.activeElement;
	if (!e || e === document.body || e === document.documentElement) {
		return { at: "body", kbd: "", why: "" };
	}
	const at = e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") + " “" + (e.getAttribute("aria-label") || e.textContent || e.value || "").trim().replace(/\s+/g, " ").slice(0, 40) + "”";
	const kbd = e.dataset.kbd || "";
	// A page's heading, where the application puts the focus when it
	// shows the page, is no stop of the Tab order and no control: the
	// next Tab goes on from it.
	if (e.tabIndex < 0 && !e.matches("a[href], button, input, select, textarea")) {
		return { at, kbd, why: "" };
	}
	const r = e.getBoundingClientRect();
	if (r.width === 0 || r.height === 0) {
		return { at, kbd, why: "it is not visible" };
	}
	// The last stop in a date field is the browser's own calendar button,
	// inside the field, which draws its own focus ring.
	if (!e.matches(":focus-visible")) {
		return { at, kbd, why: e.matches("input[type=date]") ? "" : "it does not match :focus-visible" };
	}
	const cs = getComputedStyle(e);
	if (cs.outlineStyle === "none" || parseFloat(cs.outlineWidth) < 2) {
		return { at, kbd, why: "its outline is " + cs.outlineStyle + " " + cs.outlineWidth };
	}
	const rgb = (c) => c.match(/[\d.]+/g).slice(0, 3).map(Number);
	const behind = (n) => {
		for (; n; n = n.parentElement) {
			const c = getComputedStyle(n).backgroundColor;
			if (c !== "transparent" && !/^rgba\(.*,\s*0\)$/.test(c)) {
				return c;
			}
		}
		return getComputedStyle(document.documentElement).colorScheme === "dark" ? "rgb(0, 0, 0)" : "rgb(255, 255, 255)";
	};
	const lum = (c) => {
		const [r, g, b] = rgb(c).map((v) => (v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4);
		return 0.2126 * r + 0.7152 * g + 0.0722 * b;
	};
	const l1 = lum(cs.outlineColor), l2 = lum(behind(e.parentElement));
	const ratio = (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05);
	return { at, kbd, why: ratio < 3 ? "its outline's contrast is " + ratio.toFixed(2) + ":1" : "" };
})()`

type focused struct {
	At  string `json:"at"`
	Kbd string `json:"kbd"`
	Why string `json:"why"` // why the focus cannot be seen; "" when it can
}

// keys is a user at the keyboard of a tab: every key pressed is followed
// by a check that the focus, when on an element, can be seen.
type keys struct {
	tb *tab
	t  *testing.T
}

// press presses key (kb's names: kb.Tab, kb.Enter, " ", kb.Escape),
// with Shift when shift, and returns where the focus is then.
func (k keys) press(key string, shift bool) focused {
	k.t.Helper()
	var opts []chromedp.KeyOption
	if shift {
		opts = append(opts, chromedp.KeyModifiers(chromedp.ModifierShift))
	}
	k.tb.do(fmt.Sprintf("press %q", key), chromedp.KeyEvent(key, opts...))
	f := eval[focused](k.tb, focusNow)
	if f.Why != "" {
		k.t.Errorf("after %q the focus on %s cannot be seen: %s", key, f.At, f.Why)
	}
	return f
}

// typeText types text into the focused element, key by key.
func (k keys) typeText(text string) {
	k.t.Helper()
	k.tb.do("type "+text, chromedp.KeyEvent(text))
}

// tabTo presses Tab (Shift+Tab when back) until the focus is on the
// element sel matches, at most max times.
func (k keys) tabTo(sel string, back bool, max int) {
	k.t.Helper()
	for range max {
		if eval[bool](k.tb, fmt.Sprintf(`document.activeElement === document.querySelector(%q)`, sel)) {
			return
		}
		k.press(kb.Tab, back)
	}
	if !eval[bool](k.tb, fmt.Sprintf(`document.activeElement === document.querySelector(%q)`, sel)) {
		k.tb.screenshot("failed-tab-to")
		k.t.Fatalf("%d Tabs did not reach %s (the focus is on %s)", max, sel, eval[focused](k.tb, focusNow).At)
	}
}

// sweep tabs through the whole page from its first element: every
// element that takes the focus must get it in turn, its focus seen, and
// the focus must leave the page at its end (nothing traps it).
func (k keys) sweep(page string) {
	k.t.Helper()
	all := eval[[]string](k.tb, `(() => {
		const all = [...document.querySelectorAll("a[href], button, input, select, textarea, summary, [tabindex]")]
			.filter((e) => e.tabIndex >= 0 && !e.disabled && !e.closest("[inert], [hidden], dialog:not([open])") && e.getClientRects().length > 0 && getComputedStyle(e).visibility !== "hidden");
		all.forEach((e, i) => (e.dataset.kbd = String(i)));
		all[0].focus();
		return all.map((e) => e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") + " “" + (e.getAttribute("aria-label") || e.textContent || "").trim().slice(0, 30) + "”");
	})()`)
	seen := map[string]bool{"0": true}
	left := false
	// A date field takes several Tabs (day, month, year).
	for range 3*len(all) + 5 {
		f := k.press(kb.Tab, false)
		if f.At == "body" || f.Kbd == "0" {
			left = true
			break
		}
		seen[f.Kbd] = true
	}
	if !left {
		k.t.Errorf("%s: %d Tabs never left the page: the focus is trapped (at %s)", page, 3*len(all)+5, eval[focused](k.tb, focusNow).At)
	}
	var missed []string
	for i, what := range all {
		if !seen[fmt.Sprint(i)] {
			missed = append(missed, what)
		}
	}
	if len(missed) > 0 {
		k.t.Errorf("%s: Tab never reached %s", page, strings.Join(missed, ", "))
	}
}

// keyboardWalk: a user with a keyboard alone signs in, filters the
// dashboard, opens a document, analyzes it again, opens and closes the
// delete confirmation, asks in the chat panel, and on the settings page
// changes the theme and back, makes a token and opens and closes the
// revoke confirmation. The focus can be seen at every step, nothing but
// an open modal dialog keeps it, and a dialog closed gives it back. It
// starts signed out and ends signed in.
func keyboardWalk(t *testing.T, a *app, browserCtx context.Context, shots string) {
	tb := newTab(t, browserCtx, shots)
	k := keys{tb: tb, t: t}
	tb.do("open the application", chromedp.Navigate(a.APIURL+"/"), chromedp.WaitVisible(chromedp.CSS("#email")))

	// Sign in: the form opens on the email field.
	if f := eval[focused](tb, focusNow); !strings.HasPrefix(f.At, "input#email") {
		t.Errorf("the sign-in form opens with the focus on %s, want the email field", f.At)
	}
	k.typeText(a.email)
	k.press(kb.Tab, false)
	k.typeText(a.password)
	k.press(kb.Tab, false)
	if f := k.press(kb.Tab, true); !strings.HasPrefix(f.At, "input#password") {
		t.Errorf("Shift+Tab from the button went to %s, want the password", f.At)
	}
	k.press(kb.Enter, false)
	tb.waitFor("signed in", `!!document.querySelector("#who") && !!document.querySelector("#documents tbody tr")`, 15*time.Second)

	// The dashboard: every control in turn, then the risk filter by
	// typing its first letter, then a document opened with Enter.
	k.sweep("the dashboard")
	eval[bool](tb, `document.querySelector(".brand").focus() || true`)
	k.tabTo("#f-risk", false, 20)
	k.typeText("c")
	tb.waitFor("the critical documents", `location.search === "?risk_level=critical" && !document.querySelector("#documents").hasAttribute("aria-busy") && !!document.querySelector("#documents tbody tr")`, 10*time.Second)
	k.tabTo("#documents tbody tr td.name a", false, 20)
	k.press(kb.Enter, false)
	tb.waitFor("the document's page", `location.pathname.startsWith("/documents/") && !!document.querySelector("#text") && !document.querySelector("#reanalyze").disabled`, 20*time.Second)

	// Its page: every control in turn; Space analyzes it again.
	k.sweep("the document page")
	eval[bool](tb, `document.querySelector("#doc-name").focus() || true`)
	k.tabTo("#reanalyze", false, 10)
	k.press(" ", false)
	tb.waitFor("the new run", `/^Analysis run \d+ started\.$/.test(document.querySelector("#action-status").textContent)`, 10*time.Second)
	// Its end, so that its model calls do not hold up the chats after.
	tb.waitFor("the new run's end", `!document.querySelector("#reanalyze").disabled`, 30*time.Second)

	// The delete confirmation keeps the focus while it is open, and gives
	// it back to its button when Escape closes it.
	k.tabTo("#delete", false, 5)
	k.press(kb.Enter, false)
	tb.waitFor("the confirmation", `!!document.querySelector("#delete-dialog[open]")`, 5*time.Second)
	tb.screenshot("keyboard-delete-dialog")
	modal(k, "#delete-dialog", "#delete")

	// The chat panel: the question typed, Enter asks it.
	k.tabTo("#chat-panel textarea", false, 80)
	k.typeText("Which clause matters most?")
	k.press(kb.Enter, false)
	tb.waitFor("the answer", `!!document.querySelector('#chat-panel .msg-assistant[data-status="complete"]')`, 30*time.Second)
	if f := eval[focused](tb, focusNow); !strings.HasPrefix(f.At, "textarea") {
		t.Errorf("after asking, the focus is on %s, want the question box for the next one", f.At)
	}

	// Settings, through the navigation: back up with Shift+Tab.
	k.tabTo(`#nav a[href="/settings"]`, true, 80)
	k.press(kb.Enter, false)
	tb.waitFor("the settings", `location.pathname === "/settings" && (e => e && !e.disabled)(document.querySelector("#theme-system"))`, 10*time.Second)
	k.tabTo("#theme-system", false, 5)
	k.press(kb.ArrowRight, false)
	tb.waitFor("the light theme saved", `document.querySelector("#theme-light").checked && document.querySelector("#preferences-status").textContent === "Theme saved."`, 10*time.Second)
	eval[bool](tb, `document.querySelector("#preferences-status").textContent = ""; true`)
	k.press(kb.ArrowLeft, false)
	tb.waitFor("the system theme saved", `document.querySelector("#theme-system").checked && document.querySelector("#preferences-status").textContent === "Theme saved."`, 10*time.Second)

	name := fmt.Sprintf("keyboard %d", time.Now().UnixNano())
	k.tabTo("#token-name", false, 15)
	k.typeText(name)
	k.press(kb.Enter, false)
	tb.waitFor("the new token", `!!document.querySelector("#token-secret")`, 10*time.Second)
	if f := eval[focused](tb, focusNow); !strings.HasPrefix(f.At, "input#token-secret") {
		t.Errorf("the new token's secret is shown with the focus on %s, want it on the secret", f.At)
	}
	k.tabTo(".token-created button.secondary", false, 5)
	if f := k.press(" ", false); f.At == "body" {
		t.Error("closing the new token's box lost the focus")
	}
	revoke := fmt.Sprintf(`button[aria-label="Revoke “%s”"]`, name)
	tb.waitFor("the token listed", fmt.Sprintf(`!!document.querySelector(%q)`, revoke), 10*time.Second)
	k.tabTo(revoke, false, 30)
	k.press(kb.Enter, false)
	tb.waitFor("the confirmation", `!!document.querySelector("dialog.confirm[open]")`, 5*time.Second)
	tb.screenshot("keyboard-revoke-dialog")
	modal(k, "dialog.confirm", revoke)
}

// modal checks the open dialog sel keeps the focus through Tab and
// Shift+Tab, and that Escape closes it and gives the focus back to the
// element opener matches, which opened it.
func modal(k keys, sel, opener string) {
	k.t.Helper()
	inside := fmt.Sprintf(`document.querySelector(%q).contains(document.activeElement)`, sel)
	for i, back := range []bool{false, false, false, true, true, true} {
		f := k.press(kb.Tab, back)
		// Past the dialog's last element the focus may go to the
		// browser's own controls, never to the page behind.
		if !eval[bool](k.tb, inside) && f.At != "body" {
			k.t.Errorf("Tab %d left the open dialog %s for %s", i+1, sel, f.At)
		}
	}
	k.tb.do("focus back in the dialog", chromedp.Focus(chromedp.CSS(sel+" button")))
	f := k.press(kb.Escape, false)
	if eval[bool](k.tb, fmt.Sprintf(`!!document.querySelector(%q)`, sel+"[open]")) {
		k.t.Fatalf("Escape did not close %s", sel)
	}
	if !eval[bool](k.tb, fmt.Sprintf(`document.activeElement === document.querySelector(%q)`, opener)) {
		k.t.Errorf("closing %s gave the focus to %s, want it back on %s", sel, f.At, opener)
	}
}
