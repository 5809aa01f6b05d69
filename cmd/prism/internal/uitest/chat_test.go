package uitest

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aiprism/prism/analyzer/bedrocksim"
	"github.com/chromedp/chromedp"
)

// chatContract is the document the chat is asked about. The clause the
// question is about sits below others, so its citation has to lead past
// them.
const chatContract = `SUPPLY AGREEMENT
Between Acme Components Ltd (the Supplier) and Borealis Retail plc (the Customer).

1. Term. This agreement runs for three years from the date of signature.

2. Payment. The Customer pays each invoice within thirty days of receipt.

3. Delivery. The Supplier delivers the goods to the Customer's warehouse.

4. Confidentiality. Each party keeps the other's business information confidential.

5. Liability. The Customer accepts unlimited liability for all direct and indirect damages.

6. Indemnity. The Customer shall indemnify the Supplier against any claims brought by third parties.

7. Termination. Either party may end this agreement with ninety days' notice.

8. Governing law. This agreement is governed by the laws of England and Wales.
`

// signIn makes the browser signed in as the dev account: the session
// cookie then serves every tab of the browser.
func signIn(tb *tab, a *app) {
	tb.t.Helper()
	tb.do("open the application", chromedp.Navigate(a.APIURL+"/"))
	tb.waitFor("the sign-in form or the signed-in page", `!!document.querySelector("#email, #who")`, 15*time.Second)
	if eval[bool](tb, `!!document.querySelector("#who")`) {
		return
	}
	tb.do("sign in",
		fill("#email", a.email),
		fill("#password", a.password),
		chromedp.Click(chromedp.CSS("form button[type=submit]")),
		chromedp.WaitVisible(chromedp.CSS("#who")))
}

// uploadText uploads a text document through the public API from the
// page (its session and CSRF token), as any client of the API could, and
// returns its id.
func uploadText(tb *tab, name, text string) string {
	tb.t.Helper()
	id := eval[string](tb, fmt.Sprintf(`(async () => {
		const me = await (await fetch("/api/v1/me", { cache: "no-store" })).json();
		const form = new FormData();
		form.append("file", new File([%q], %q, { type: "text/plain" }));
		const resp = await fetch("/api/v1/documents", { method: "POST", body: form, headers: { "X-CSRF-Token": me.csrf_token } });
		const out = await resp.json();
		return resp.status === 202 ? out.id : "refused: " + resp.status + " " + JSON.stringify(out);
	})()`, text, name))
	if !regexp.MustCompile(`^[0-9A-Za-z_-]+$`).MatchString(id) {
		tb.t.Fatalf("upload %s: %s", name, id)
	}
	return id
}

// recordChat watches the chat panel under sel: every text the answer
// being written shows (window.__chat.states) and every announcement of
// its live region (window.__chat.said).
func recordChat(tb *tab, sel string) {
	tb.t.Helper()
	eval[bool](tb, fmt.Sprintf(`(() => {
		const panel = document.querySelector(%q);
		const live = panel.querySelector(".chat-announce");
		const rec = window.__chat = { states: [], said: [] };
		new MutationObserver(() => {
			const a = panel.querySelector('.msg-assistant[data-status="answering"] .msg-text');
			if (a && a.textContent !== rec.states[rec.states.length - 1]) {
				rec.states.push(a.textContent);
			}
		}).observe(panel, { subtree: true, childList: true, characterData: true });
		new MutationObserver(() => rec.said.push(live.textContent)).observe(live, { subtree: true, childList: true, characterData: true });
		return true;
	})()`, sel))
}

// askIn types question into the chat panel under sel and asks it.
func askIn(tb *tab, sel, question string) {
	tb.t.Helper()
	tb.do("ask "+question,
		fill(sel+" textarea", question),
		chromedp.Click(chromedp.CSS(sel+" .chat-ask button[type=submit]")))
}

// checkStreamed checks what recordChat saw of an answer that ended as
// final: several texts before the whole one, each the start of the next,
// and announcements of the turns only, never of the text.
func checkStreamed(t *testing.T, tb *tab, final string) {
	t.Helper()
	var states []string
	for _, s := range eval[[]string](tb, `window.__chat.states`) {
		if s != "" {
			states = append(states, s)
		}
	}
	// The last delta may complete the text before the end arrives.
	if n := len(states); n > 0 && states[n-1] == final {
		states = states[:n-1]
	}
	if len(states) < 3 {
		t.Errorf("the answer showed %d texts before its end (%q), want it streaming in over several", len(states), states)
	}
	for i, s := range states {
		next := final
		if i+1 < len(states) {
			next = states[i+1]
		}
		if !strings.HasPrefix(next, s) || s == next {
			t.Errorf("streamed text %d %q is not the start of what followed (%q)", i, s, next)
		}
	}
	said := eval[[]string](tb, `window.__chat.said`)
	if len(said) > 3 {
		t.Errorf("the live region announced %d times (%q): every delta, not the turns", len(said), said)
	}
	for _, s := range said {
		if len(s) > 80 || (len(states) > 0 && strings.Contains(s, states[0])) {
			t.Errorf("the live region read out the answer's text: %q", s)
		}
	}
}

// chatOnDocument: on an analyzed document's page the user asks the
// chatbot; the answer streams into the panel, ends with its citations,
// and a citation leads to the cited lines of the extracted text,
// highlighted and in view.
func chatOnDocument(t *testing.T, a *app, browser context.Context, shots string) {
	tb := newTab(t, browser, shots)
	signIn(tb, a)
	doc := uploadText(tb, "supply-agreement.txt", chatContract)
	tb.do("open the document's page", chromedp.Navigate(a.APIURL+"/documents/"+doc))
	tb.waitFor("the analysis and the chat panel", `!!document.querySelector("#text") && !!document.querySelector("#chat-panel .chat-ask")`, 60*time.Second)

	recordChat(tb, "#chat-panel")
	askIn(tb, "#chat-panel", "What does the liability clause mean for us?")
	tb.waitFor("the answer", `!!document.querySelector('#chat-panel .msg-assistant:not([data-status="answering"])')`, 30*time.Second)
	if st := eval[string](tb, `document.querySelector("#chat-panel .msg-assistant").dataset.status`); st != "complete" {
		tb.screenshot("chat-answer-" + st)
		t.Fatalf("the answer ended %s: %s", st, tb.text("#chat-panel .msg-assistant"))
	}
	final := eval[string](tb, `document.querySelector("#chat-panel .msg-assistant .msg-text").textContent`)
	if !strings.Contains(final, "unlimited liability") {
		t.Errorf("the answer does not quote the clause asked about: %q", final)
	}
	checkStreamed(t, tb, final)
	tb.screenshot("chat-on-document")

	// The citation in the answer's text leads to the passage.
	href := eval[string](tb, `(document.querySelector("#chat-panel .msg-assistant .msg-text a.cite") || {}).href || ""`)
	m := regexp.MustCompile(`/documents/` + doc + `#lines-(\d+)-(\d+)$`).FindStringSubmatch(href)
	if m == nil {
		t.Fatalf("no citation link to the document's lines in the answer (first link %q)", href)
	}
	// On the same page, the panel stays as it is (what was typed in it
	// too) and the passage is shown.
	tb.do("type a draft", fill("#chat-panel textarea", "draft"))
	tb.do("follow the citation", chromedp.Click(chromedp.CSS("#chat-panel .msg-assistant .msg-text a.cite")))
	checkPassage(t, tb, m[1], m[2])
	if got := eval[string](tb, `document.querySelector("#chat-panel textarea").value`); got != "draft" {
		t.Errorf("following a citation on the page rebuilt the chat panel (its question box holds %q)", got)
	}
	tb.screenshot("chat-citation")

	// From the conversation's own page, the citation opens the document's
	// page at the passage.
	tb.do("open the chat list", chromedp.Click(chromedp.CSS(`#nav a[href="/chat"]`)))
	conversation := `[...document.querySelectorAll("#chat-sessions a.chat-session-title")].find((a) => a.textContent === "supply-agreement.txt")`
	tb.waitFor("the document's conversation", "!!"+conversation, 10*time.Second)
	eval[bool](tb, conversation+".click() || true")
	tb.waitFor("its answer", `!!document.querySelector(".msg-assistant .msg-text a.cite")`, 10*time.Second)
	tb.do("follow the citation", chromedp.Click(chromedp.CSS(".msg-assistant .msg-text a.cite")))
	tb.waitFor("the document's page", fmt.Sprintf(`location.pathname === "/documents/%s" && location.hash === "#lines-%s-%s"`, doc, m[1], m[2]), 10*time.Second)
	checkPassage(t, tb, m[1], m[2])
	tb.screenshot("chat-citation-from-chat")
}

// checkPassage waits for the lines start to end of the document page's
// extracted text to be highlighted, and checks they are in view with the
// focus on them.
func checkPassage(t *testing.T, tb *tab, first, last string) {
	t.Helper()
	tb.waitFor("the cited passage highlighted", `CSS.highlights.has("passage") && !!document.querySelector(".passage-anchor")`, 10*time.Second)
	start, _ := strconv.Atoi(first)
	end, _ := strconv.Atoi(last)
	text := eval[string](tb, `document.querySelector("#text").textContent`)
	lines := strings.Split(text, "\n")
	if start < 1 || end > len(lines) {
		t.Fatalf("the citation names lines %d-%d of a text of %d lines", start, end, len(lines))
	}
	want := strings.Join(lines[start-1:end], "\n")
	got := eval[string](tb, `[...CSS.highlights.get("passage")].map(String).join("")`)
	if got != want || !strings.Contains(want, "Liability") || strings.Contains(want, "Payment") {
		t.Errorf("highlighted %q, want lines %d-%d, the liability clause alone: %q", got, start, end, want)
	}
	where := eval[string](tb, `(() => {
		const a = document.querySelector(".passage-anchor");
		const r = a.getBoundingClientRect();
		const box = document.querySelector("#text").getBoundingClientRect();
		const seen = r.top >= Math.max(0, box.top) && r.bottom <= Math.min(innerHeight, box.bottom);
		return (document.activeElement === a ? "focused" : "unfocused") + (seen ? " in view" : " out of view");
	})()`)
	if where != "focused in view" {
		t.Errorf("the cited passage is %s, want it scrolled into view with the focus on it", where)
	}
}

// chatPages: the chat page opens a free conversation, answers in it,
// shows an answer the model broke off and regenerates it, lists the
// conversation with the others, and deletes it after asking.
func chatPages(t *testing.T, a *app, browser context.Context, shots string) {
	tb := newTab(t, browser, shots)
	signIn(tb, a)
	tb.do("open the chat page", chromedp.Navigate(a.APIURL+"/chat"))
	tb.waitFor("the list of conversations", `!!document.querySelector("#chat-sessions li")`, 10*time.Second)
	tb.do("open a new chat", chromedp.Click(chromedp.CSS("#chat-new")))
	tb.waitFor("the new conversation", `/^\/chat\/[0-9A-Za-z]+$/.test(location.pathname) && !!document.querySelector(".chat-ask textarea")`, 10*time.Second)
	session := strings.TrimPrefix(eval[string](tb, `location.pathname`), "/chat/")

	recordChat(tb, ".chat")
	askIn(tb, ".chat", "Which risks should a supply agreement watch for?")
	tb.waitFor("the answer", `!!document.querySelector('.msg-assistant[data-status="complete"]')`, 30*time.Second)
	checkStreamed(t, tb, eval[string](tb, `document.querySelector(".msg-assistant .msg-text").textContent`))
	tb.screenshot("chat-conversation")

	// The model breaks off mid-answer: the text so far stays, with why it
	// stopped and a Regenerate button, which asks again in its place.
	// A server error, not a throttle: the one model does not go to rest,
	// and is not taken below the rate earlier tests' throttles left it at.
	if err := a.dev.Sim.SetFaults("*", bedrocksim.Faults{MidStream: 1, MidStreamException: "internalServerException"}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.dev.Sim.SetFaults("*", bedrocksim.Faults{}) })
	askIn(tb, ".chat", "And which of them matters most?")
	tb.waitFor("the answer cut off", `!!document.querySelector('.msg-assistant[data-status="incomplete"] .msg-reason')`, 30*time.Second)
	cut := eval[[]string](tb, `(() => {
		const m = document.querySelector('.msg-assistant[data-status="incomplete"]');
		return [m.querySelector(".msg-text").textContent, m.querySelector(".msg-reason").textContent, m.querySelector("button").textContent];
	})()`)
	if !strings.HasPrefix(cut[0], "[bedrocksim]") || !strings.Contains(cut[1], "stopped") || cut[2] != "Regenerate" {
		t.Errorf("the interrupted answer shows %q, want its partial text, why it stopped and Regenerate", cut)
	}
	// The answer's error event is not the stream's: the page stays live.
	if st := eval[string](tb, `document.querySelector(".chat > .status").textContent`); st != "" {
		t.Errorf("after the interrupted answer the panel says %q", st)
	}
	tb.screenshot("chat-interrupted")
	if err := a.dev.Sim.SetFaults("*", bedrocksim.Faults{}); err != nil {
		t.Fatal(err)
	}
	last := `document.querySelector(".msg-assistant:last-child")`
	tb.do("regenerate", chromedp.Click(chromedp.CSS(`.msg-assistant:last-child button`)))
	tb.waitFor("the regenerated answer's end", last+`.dataset.status !== "answering" && !`+last+`.querySelector("button:disabled")`, 30*time.Second)
	if st := eval[string](tb, last+".dataset.status"); st != "complete" {
		t.Fatalf("regenerated, the answer is %s: %s", st, eval[string](tb, last+".textContent"))
	}
	if n := eval[int](tb, `document.querySelectorAll(".msg").length`); n != 4 {
		t.Errorf("after regenerating, the conversation shows %d messages, want the 2 questions and their answers", n)
	}

	tb.do("back to the list", chromedp.Click(chromedp.CSS(`a[href="/chat"]`)))
	row := fmt.Sprintf(`#chat-sessions li[data-id=%q]`, session)
	tb.waitFor("the conversation in the list", fmt.Sprintf(`!!document.querySelector(%q)`, row), 10*time.Second)
	if got := tb.text(row); !strings.Contains(got, "4 messages") {
		t.Errorf("the conversation is listed as %q, want its 4 messages", got)
	}
	tb.screenshot("chat-list")

	// Cancelling keeps it; confirming deletes it, for good.
	tb.do("ask to delete it", chromedp.Click(chromedp.CSS(row+" button.danger")))
	tb.waitFor("the confirmation", `!!document.querySelector("dialog.confirm[open]")`, 5*time.Second)
	tb.screenshot("chat-delete-confirm")
	tb.do("cancel", chromedp.Click(chromedp.CSS("dialog.confirm button.secondary")))
	tb.waitFor("the dialog closed", `!document.querySelector("dialog.confirm")`, 5*time.Second)
	if !eval[bool](tb, fmt.Sprintf(`!!document.querySelector(%q)`, row)) {
		t.Fatal("cancelling the deletion removed the conversation")
	}
	tb.do("delete it",
		chromedp.Click(chromedp.CSS(row+" button.danger")),
		chromedp.WaitVisible(chromedp.CSS("dialog.confirm[open] button.danger")),
		chromedp.Click(chromedp.CSS("dialog.confirm[open] button.danger")))
	tb.waitFor("the conversation gone from the list", fmt.Sprintf(`!document.querySelector(%q)`, row), 10*time.Second)
	tb.do("reload the list", chromedp.Reload())
	tb.waitFor("the list reloaded", `!!document.querySelector("#chat-sessions li")`, 10*time.Second)
	if eval[bool](tb, fmt.Sprintf(`!!document.querySelector(%q)`, row)) {
		t.Error("the deleted conversation is listed again after a reload")
	}
	if code := eval[int](tb, fmt.Sprintf(`fetch("/api/v1/chat/sessions/%s").then((r) => r.status)`, session)); code != http.StatusNotFound {
		t.Errorf("GET the deleted session: %d, want 404", code)
	}
}

// answeredOrRegenerate waits for the last answer in scope to end and, while
// it ends refused because every model is busy, waits and regenerates it,
// as the panel asks a user to, until one completes. The harness's one
// model comes out of the earlier subtests' throttles with its learned rate
// lowered, and climbs back within about a minute.
func answeredOrRegenerate(tb *tab, scope string) {
	tb.t.Helper()
	last := fmt.Sprintf(`[...document.querySelectorAll(%q)].pop()`, scope+" .msg-assistant")
	deadline := time.Now().Add(90 * time.Second)
	for attempt := 1; ; attempt++ {
		tb.waitFor("the answer's end", `(m => !!m && m.dataset.status !== "answering" && !m.querySelector("button:disabled"))(`+last+`)`, 30*time.Second)
		status, text := eval[string](tb, last+".dataset.status"), eval[string](tb, last+".textContent")
		switch {
		case status == "complete":
			return
		case time.Now().After(deadline) || !strings.Contains(text, "busy"):
			tb.t.Fatalf("the answer ended %s after %d attempts: %s", status, attempt, text)
		}
		time.Sleep(3 * time.Second)
		tb.do("regenerate the busy answer", chromedp.Click(chromedp.JSPath(last+`.querySelector("button")`)))
	}
}
