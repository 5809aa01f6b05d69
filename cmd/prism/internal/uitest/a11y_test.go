package uitest

import (
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
)

// axeSource is axe-core, vendored from npm (testdata/axe-core/README.md).
// It is evaluated in the page through the DevTools protocol, which the
// page's Content-Security-Policy does not govern.
//
//go:embed testdata/axe-core/axe.min.js
var axeSource string

const (
	axeVersion = "4.14.1"
	axeSHA256  = "29348999450cdf2849a8e70b7912fc2da85a849da39c0d0d5394f51d4a9ed95c"
)

// TestAxeVendored checks the vendored axe-core is the version and the
// bytes its README names, so a change to it is a deliberate one.
func TestAxeVendored(t *testing.T) {
	sum := sha256.Sum256([]byte(axeSource))
	if got := hex.EncodeToString(sum[:]); got != axeSHA256 {
		t.Errorf("testdata/axe-core/axe.min.js has sha256 %s, want %s (testdata/axe-core/README.md)", got, axeSHA256)
	}
	if !strings.HasPrefix(axeSource, "/*! axe v"+axeVersion+"\n") {
		t.Errorf("testdata/axe-core/axe.min.js is not axe v%s: %.40q", axeVersion, axeSource)
	}
}

// axeRun runs axe-core on the page against WCAG 2.2 A and AA and axe's
// best practices, target size (off by default in axe) included, and
// returns each rule violated with its impact and up to five elements.
// preload is off: axe would parse the style sheets again in <style>
// elements of its own, which the pages' CSP refuses (an error in the
// console); the one rule that needs them, css-orientation-lock, then
// does not run (the pages lock no orientation).
const axeRun = `axe.run(document, {
	preload: false,
	runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"] },
	rules: { "target-size": { enabled: true } },
	resultTypes: ["violations"],
}).then((r) => r.violations.map((v) => ({
	id: v.id, impact: v.impact || "", help: v.help,
	nodes: v.nodes.slice(0, 5).map((n) => n.target.join(" ") + " — " + (n.failureSummary || "").replace(/\s+/g, " ")),
})))`

type axeViolation struct {
	ID     string   `json:"id"`
	Impact string   `json:"impact"`
	Help   string   `json:"help"`
	Nodes  []string `json:"nodes"`
}

// failing are the moderate rules that fail a page as well as the serious
// and critical ones: a page without a main landmark, its content outside
// landmarks or without a first-level heading is hard to find one's way
// in with a screen reader.
var failing = map[string]bool{"landmark-one-main": true, "region": true, "page-has-heading-one": true}

// audit runs axe-core on the page as it is now, in theme ("light" or
// "dark", so the contrast of both is checked), and fails the test for
// each violation of impact serious or critical (and the rules in
// failing), listing them; the others are logged.
func audit(tb *tab, name, theme string) {
	tb.t.Helper()
	if !eval[bool](tb, `typeof window.axe === "object"`) {
		eval[bool](tb, axeSource+"\n;true")
	}
	before := eval[string](tb, fmt.Sprintf(`(() => { const b = document.documentElement.dataset.theme || ""; document.documentElement.dataset.theme = %q; return b; })()`, theme))
	found := eval[[]axeViolation](tb, axeRun)
	eval[bool](tb, fmt.Sprintf(`(() => { const b = %q; if (b) { document.documentElement.dataset.theme = b; } else { delete document.documentElement.dataset.theme; } return true; })()`, before))
	for _, v := range found {
		line := fmt.Sprintf("%s (%s theme): axe %s, %s: %s\n\t%s", name, theme, v.ID, v.Impact, v.Help, strings.Join(v.Nodes, "\n\t"))
		if v.Impact == "serious" || v.Impact == "critical" || failing[v.ID] {
			tb.t.Error(line)
		} else {
			tb.t.Log(line)
		}
	}
}

// Laptop and phone are the widths every page is checked and shown at.
const (
	laptopWidth, laptopHeight = 1366, 768
	phoneWidth, phoneHeight   = 390, 844
)

// checkPage checks the page as it is now at a laptop's width (axe-core,
// light theme) and at a phone's (axe-core in the dark theme, targets big
// enough to tap, nothing wider than the screen), with a screenshot of
// each, then puts the tab back to its own size.
func checkPage(tb *tab, name string) {
	tb.t.Helper()
	tb.do(name+" at laptop width", chromedp.EmulateViewport(laptopWidth, laptopHeight))
	audit(tb, name, "light")
	tb.screenshot(name + "-laptop")

	tb.do(name+" at phone width", chromedp.EmulateViewport(phoneWidth, phoneHeight, chromedp.EmulateMobile))
	// Layout follows the new width at the next frame.
	eval[bool](tb, `new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(() => r(true))))`)
	wide := eval[[]string](tb, `(() => {
		// The layout's width: under a phone's emulation innerWidth grows
		// to fit a page that is too wide.
		const width = document.documentElement.clientWidth;
		if (document.scrollingElement.scrollWidth <= width) {
			return [];
		}
		// The elements that reach past the screen's edge, innermost first.
		const out = [...document.querySelectorAll("body *")]
			.filter((e) => e.getBoundingClientRect().right > width + 0.5 && ![...e.children].some((c) => c.getBoundingClientRect().right > width + 0.5))
			.slice(0, 5)
			.map((e) => e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") + (e.className ? "." + String(e.className).trim().replace(/\s+/g, ".") : "") + " right " + Math.round(e.getBoundingClientRect().right));
		return ["scrollWidth " + document.scrollingElement.scrollWidth + " > " + width, ...out];
	})()`)
	if len(wide) > 0 {
		tb.t.Errorf("%s scrolls sideways at %d px: %s", name, phoneWidth, strings.Join(wide, "; "))
	}
	audit(tb, name+" at phone width", "dark")
	tb.screenshot(name + "-phone")
	tb.do(name+" back to its size", chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		if _, err := cdp.Call(ctx, t, emulation.ClearDeviceMetricsOverride, cdp.Empty{}); err != nil {
			return err
		}
		_, err := cdp.Call(ctx, t, emulation.SetTouchEmulationEnabled, emulation.SetTouchEmulationEnabledParams{})
		return err
	}))
}

// everyPage checks every page of the application, signed in, with
// checkPage: the dashboard, the uploader, an analyzed document with an
// answered question in its chat panel and its delete confirmation open,
// the chat list and a conversation, the settings, and a page not found.
// (The sign-in form is checked by the SignIn subtest.)
func everyPage(t *testing.T, a *app, browser context.Context, shots string) {
	tb := newTab(t, browser, shots)
	signIn(tb, a)
	doc := uploadText(tb, "checked-contract.txt", chatContract)
	visit := func(name, path, ready string) {
		t.Helper()
		tb.do("open "+path, chromedp.Navigate(a.APIURL+path))
		tb.waitFor(name, ready, 30*time.Second)
		checkPage(tb, name)
	}
	visit("dashboard", "/", `!!document.querySelector("#documents tbody tr") && document.querySelector("#list-status").textContent !== "Loading…"`)
	visit("upload", "/upload", `!!document.querySelector("#dropzone")`)

	tb.do("open the document", chromedp.Navigate(a.APIURL+"/documents/"+doc))
	tb.waitFor("its analysis", `!!document.querySelector("#text") && !!document.querySelector("#chat-panel .chat-ask")`, 60*time.Second)
	askIn(tb, "#chat-panel", "What does the liability clause mean for us?")
	answeredOrRegenerate(tb, "#chat-panel")
	checkPage(tb, "document")
	tb.do("ask to delete it", chromedp.Click(chromedp.CSS("#delete")), chromedp.WaitVisible(chromedp.CSS("#delete-dialog")))
	checkPage(tb, "document-delete-dialog")
	tb.do("cancel", chromedp.Click(chromedp.CSS("#delete-dialog button.secondary")))

	session := eval[string](tb, fmt.Sprintf(`fetch("/api/v1/chat/sessions?limit=100").then((r) => r.json()).then((p) => p.items.find((s) => s.document_id === %q).id)`, doc))
	visit("chat-list", "/chat", `!!document.querySelector("#chat-sessions li")`)
	visit("chat", "/chat/"+session, `!!document.querySelector('.msg-assistant[data-status="complete"]')`)
	visit("settings", "/settings", `(e => e && !e.disabled)(document.querySelector("#theme-dark")) && !!document.querySelector("table.tokens tbody tr")`)
	visit("not-found", "/no/such/page", `document.title.startsWith("Not found")`)
}
