package uitest

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aiprism/prism/accounts"
	"github.com/aiprism/prism/analyzer/bedrocksim"
	"github.com/aiprism/prism/platform/quota"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// throttledSentence is the server's sentence (accounts.Throttled) that
// the sign-in form must show as it is, with when to try again.
var throttledSentence = regexp.MustCompile(`too many failed sign-ins for this account: try again in (\d+)s`)

// signInThrottled: wrong passwords until the server slows the account
// down; the form shows the server's sentence with when to try again, and
// stays usable: once that time has passed, the right password signs in.
// It uses an account of its own, so the other tests' account is never
// slowed down, and ends signed out.
func signInThrottled(t *testing.T, a *app, browserCtx context.Context, shots string) {
	email, password := "second-analyst@example.com", rand.Text()
	// Its password hashed cheaply: each wrong one is checked against it,
	// and argon2id at its full cost takes seconds under the race detector.
	users := accounts.NewUsers(a.dev.Infra.Pool, accounts.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32})
	if _, err := users.Add(context.Background(), accounts.NewUser{Email: email, DisplayName: "Second analyst", Role: accounts.RoleUser, Password: password}); err != nil {
		t.Fatal(err)
	}
	tb := newTab(t, browserCtx, shots)
	tb.do("open the sign-in form", chromedp.Navigate(a.APIURL+"/"), chromedp.WaitVisible(chromedp.CSS("#email")))
	status := `document.querySelector("form [role=status]")`
	var said string
	// The first failures are free (accounts.DefaultThrottlePolicy: 5); a
	// few more are allowed for, should one attempt come after the delay.
	for i := 0; i < 8 && !throttledSentence.MatchString(said); i++ {
		eval[bool](tb, status+`.textContent = ""; true`)
		tb.do("sign in with a wrong password",
			fill("#email", email),
			fill("#password", "wrong-"+rand.Text()),
			chromedp.Click(chromedp.CSS("form button[type=submit]")))
		tb.waitFor("the refusal", status+`.textContent.length > 0 && !`+status+`.textContent.endsWith("…") && !document.querySelector("form button").disabled`, 10*time.Second)
		said = tb.text("form [role=status]")
	}
	m := throttledSentence.FindStringSubmatch(said)
	if m == nil {
		t.Fatalf("after 8 wrong passwords the form says %q, want the server's throttling sentence", said)
	}
	tb.screenshot("sign-in-throttled")
	// Usable: the button works, the password field has the focus for
	// the next try, and the field is empty of nothing the user typed.
	if got := eval[string](tb, `document.activeElement.id + " " + document.querySelector("form button").disabled + " " + `+status+`.classList.contains("error")`); got != "password false true" {
		t.Errorf("after the refusal: focus, button disabled, shown as an error = %q, want %q", got, "password false true")
	}
	wait, _ := time.ParseDuration(m[1] + "s")
	time.Sleep(wait + 200*time.Millisecond)
	tb.do("sign in once the wait is over",
		fill("#password", password),
		chromedp.Click(chromedp.CSS("form button[type=submit]")),
		chromedp.WaitVisible(chromedp.CSS("#who")))
	if got := tb.text("#who"); got != email {
		t.Errorf("signed in as %q, want %q", got, email)
	}
	tb.do("sign out", chromedp.Click(chromedp.CSS("#sign-out")), chromedp.WaitVisible(chromedp.CSS("#email")))
}

// chatRefusals: a question asked while an answer is still being written
// (409) and a question once the daily model budget is spent (429) are
// refused, and the chat panel says so in plain words, keeping the
// question to ask again.
func chatRefusals(t *testing.T, a *app, browserCtx context.Context, shots string) {
	tb := newTab(t, browserCtx, shots)
	signIn(tb, a)
	tb.do("open a new chat", chromedp.Navigate(a.APIURL+"/chat"), chromedp.WaitVisible(chromedp.CSS("#chat-new")), chromedp.Click(chromedp.CSS("#chat-new")))
	tb.waitFor("the new conversation", `/^\/chat\/[0-9A-Za-z]+$/.test(location.pathname) && !!document.querySelector(".chat-ask textarea")`, 10*time.Second)
	status := `document.querySelector(".chat > .status")`

	// Every model too busy: the answer waits for capacity, still being
	// written, while the second question is asked.
	lift := a.setFaults(t, bedrocksim.Faults{Throttle: 1, RetryAfterSeconds: 1})
	askIn(tb, ".chat", "What should a supply agreement cap?")
	tb.waitFor("the answer being written", `!!document.querySelector('.msg-assistant[data-status="answering"]')`, 10*time.Second)
	askIn(tb, ".chat", "And who carries the indemnity?")
	tb.waitFor("the refusal", status+`.classList.contains("error")`, 10*time.Second)
	if got := tb.text(".chat > .status"); got != "An answer is still being written in this conversation. Ask again once it has finished." {
		t.Errorf("asked while answering, the panel says %q", got)
	}
	if got := eval[string](tb, `document.querySelector(".chat textarea").value`); got != "And who carries the indemnity?" {
		t.Errorf("after the refusal the question box holds %q, want the question, to ask again", got)
	}
	tb.screenshot("chat-still-answering")
	lift()
	tb.waitFor("the first answer's end", `!document.querySelector('.msg-assistant[data-status="answering"]')`, 60*time.Second)

	// The daily budget: the smallest one, which this user has spent, as
	// the analyzers publish it; the budget before is put back after.
	ctx := context.Background()
	limits, err := quota.Open(ctx, a.dev.Infra.JS, quota.Config{})
	if err != nil {
		t.Fatal(err)
	}
	before, err := limits.PublishedBudget(ctx)
	if err != nil {
		t.Fatal(err)
	}
	owner := eval[string](tb, `fetch("/api/v1/me").then((r) => r.json()).then((m) => m.user.id)`)
	tiny := limits.Budget(1)
	if err := tiny.Publish(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := before.Publish(ctx); err != nil {
			t.Errorf("put the budget back: %v", err)
		}
	}()
	if err := tiny.Spend(ctx, owner, "ui-test", 1, 1, 1); err != nil {
		t.Fatal(err)
	}
	eval[bool](tb, status+`.classList.remove("error"); `+status+`.textContent = ""; true`)
	tb.do("ask again", chromedp.Click(chromedp.CSS(".chat .chat-ask button[type=submit]")))
	tb.waitFor("the refusal", status+`.classList.contains("error")`, 10*time.Second)
	got := tb.text(".chat > .status")
	if !regexp.MustCompile(`^Your daily model budget is spent \(it is shared with document analyses\)\. It renews at midnight UTC, in (\d+ h )?\d+ min\.$`).MatchString(got) {
		t.Errorf("with the budget spent, the panel says %q", got)
	}
	tb.screenshot("chat-budget-spent")
}

// dashboardFilters: the score range, the dates and the status filter the
// list as the API does, live in the URL (a reload keeps them), an empty
// result says so, the JSON export holds exactly the filtered assessments,
// and the default filters kept on the server open the dashboard.
func dashboardFilters(t *testing.T, a *app, browserCtx context.Context, shots string) {
	client := a.signedInClient(t)
	var all struct {
		Items []struct {
			ID     string `json:"id"`
			Status string `json:"status"`
			Score  *int   `json:"score"`
			Risk   string `json:"risk_level"`
		} `json:"items"`
	}
	client.do(t, "GET", "/api/v1/documents?limit=200&status=analyzed", "", &all)
	var scores []int
	for _, d := range all.Items {
		if d.Score != nil {
			scores = append(scores, *d.Score)
		}
	}
	slices.Sort(scores)
	scores = slices.Compact(scores)
	if len(scores) < 2 {
		t.Fatalf("the dashboard's filters need analyzed documents of two scores at least; the scores are %v", scores)
	}
	// A range that holds some analyzed documents and not others.
	lo, hi := scores[1], scores[len(scores)-1]

	tb := newTab(t, browserCtx, shots)
	signIn(tb, a)
	downloads := tb.allowDownloads()
	rows := `[...document.querySelectorAll("#documents tbody tr")].map((tr) => tr.dataset.id).sort()`
	settled := `(document.querySelector("#list-status")?.textContent || "Loading…") !== "Loading…" && !document.querySelector("#documents").hasAttribute("aria-busy")`
	// shows waits for the page's URL to hold the filters inURL, and
	// checks the list is the one the API gives for the query apiQuery.
	shows := func(what string, inURL, apiQuery url.Values) []string {
		t.Helper()
		tb.waitFor(what, fmt.Sprintf(`(() => { const p = new URLSearchParams(location.search); p.sort(); return p.toString(); })() === %q && %s`, inURL.Encode(), settled), 20*time.Second)
		var api struct {
			Items []struct {
				ID string `json:"id"`
			} `json:"items"`
		}
		apiQuery.Set("limit", "200")
		client.do(t, "GET", "/api/v1/documents?"+apiQuery.Encode(), "", &api)
		var ids []string
		for _, d := range api.Items {
			ids = append(ids, d.ID)
		}
		slices.Sort(ids)
		got := eval[[]string](tb, rows)
		if !slices.Equal(got, ids) {
			t.Errorf("%s: the dashboard lists %v, the API %v", what, got, ids)
		}
		return got
	}

	tb.do("open the dashboard", chromedp.Navigate(a.APIURL+"/"), chromedp.WaitVisible(chromedp.CSS("#f-min")))
	tb.waitFor("the list", settled, 10*time.Second)
	// Typed, then Tab: the field's change applies it.
	tb.do("a score range",
		fill("#f-min", fmt.Sprint(lo)), chromedp.KeyEvent(kb.Tab),
		fill("#f-max", fmt.Sprint(hi)), chromedp.KeyEvent(kb.Tab))
	scoreRange := func() url.Values { return url.Values{"min_score": {fmt.Sprint(lo)}, "max_score": {fmt.Sprint(hi)}} }
	inRange := shows("the score range", scoreRange(), scoreRange())
	if len(inRange) == 0 || len(inRange) == len(all.Items) {
		t.Errorf("the score range %d-%d shows %d of %d analyzed documents, want some and not all", lo, hi, len(inRange), len(all.Items))
	}
	tb.screenshot("dashboard-score-range")

	// Kept in the URL: a reload shows the same filters and rows.
	tb.do("reload", chromedp.Reload())
	tb.waitFor("the list reloaded", settled+` && document.querySelectorAll("#documents tbody tr").length > 0`, 10*time.Second)
	if got := eval[string](tb, `document.querySelector("#f-min").value + "-" + document.querySelector("#f-max").value`); got != fmt.Sprintf("%d-%d", lo, hi) {
		t.Errorf("after a reload the score fields hold %s", got)
	}
	shows("the score range after a reload", scoreRange(), scoreRange())

	// Exported as JSON: the filtered assessments, whole.
	tb.do("export JSON", chromedp.Click(chromedp.CSS("#export-json")))
	tb.waitFor("the export's outcome", `document.getElementById("export-status").textContent.startsWith("Exported")`, 20*time.Second)
	var exported []struct {
		DocumentID string          `json:"document_id"`
		Score      int             `json:"score"`
		Assessment json.RawMessage `json:"assessment"`
	}
	if err := json.Unmarshal([]byte(waitFile(t, downloads, ".json")), &exported); err != nil {
		t.Fatalf("the JSON export: %v", err)
	}
	var ids []string
	for _, e := range exported {
		ids = append(ids, e.DocumentID)
		if e.Score < lo || e.Score > hi || len(e.Assessment) < 10 {
			t.Errorf("exported %s with score %d (the range is %d-%d) and assessment %.40s", e.DocumentID, e.Score, lo, hi, e.Assessment)
		}
	}
	slices.Sort(ids)
	if !slices.Equal(ids, inRange) {
		t.Errorf("the JSON export holds %v, the filtered list %v", ids, inRange)
	}
	if got, want := tb.text("#export-status"), fmt.Sprintf("Exported %d assessment%s as JSON.", len(inRange), map[bool]string{true: "", false: "s"}[len(inRange) == 1]); got != want {
		t.Errorf("the export says %q, want %q", got, want)
	}

	// Dates: from today there are all of them; up to yesterday, none, and
	// the page says so.
	today := eval[string](tb, `(() => { const d = new Date(); return d.getFullYear() + "-" + String(d.getMonth() + 1).padStart(2, "0") + "-" + String(d.getDate()).padStart(2, "0"); })()`)
	yesterday := eval[string](tb, `(() => { const d = new Date(); d.setDate(d.getDate() - 1); return d.getFullYear() + "-" + String(d.getMonth() + 1).padStart(2, "0") + "-" + String(d.getDate()).padStart(2, "0"); })()`)
	setField := func(sel, value string) {
		t.Helper()
		eval[bool](tb, fmt.Sprintf(`(() => { const e = document.querySelector(%q); e.value = %q; e.dispatchEvent(new Event("change", { bubbles: true })); return true; })()`, sel, value))
	}
	tb.do("clear the filters", chromedp.Click(chromedp.CSS(".filters button[type=reset]")))
	tb.waitFor("no filters", `location.search === "" && `+settled, 20*time.Second)
	setField("#f-since", today)
	setField("#f-status", "analyzed")
	// Every document was uploaded today.
	shows("from today, analyzed", url.Values{"since": {today}, "status": {"analyzed"}}, url.Values{"status": {"analyzed"}})
	setField("#f-since", "")
	setField("#f-until", yesterday)
	tb.waitFor("up to yesterday", fmt.Sprintf(`location.search === "?status=analyzed&until=%s" && %s`, yesterday, settled), 20*time.Second)
	if got := tb.text("#list-status"); got != "No documents match these filters." || eval[int](tb, `document.querySelectorAll("#documents tbody tr").length`) != 0 {
		t.Errorf("up to yesterday the dashboard says %q", got)
	}

	// The defaults kept on the server open a dashboard without filters in
	// its URL.
	client.put(t, "/api/v1/me/preferences", `{"list":{"status":"analyzed","risk_level":"critical","page_size":50}}`)
	defer client.put(t, "/api/v1/me/preferences", `{}`)
	tb.do("open the dashboard", chromedp.Navigate(a.APIURL+"/"))
	tb.waitFor("the default filters", `document.querySelector("#f-status")?.value === "analyzed" && document.querySelector("#f-risk")?.value === "critical" && `+settled, 20*time.Second)
	shown := eval[[]string](tb, `[...document.querySelectorAll("#documents [data-risk]")].map((e) => e.dataset.risk)`)
	if len(shown) == 0 || slices.ContainsFunc(shown, func(r string) bool { return r != "critical" }) {
		t.Errorf("with the default filters the dashboard shows risks %v, want critical ones only", shown)
	}
	if strings.Contains(eval[string](tb, `location.href`), "?") {
		t.Error("the default filters went into the URL")
	}
}
