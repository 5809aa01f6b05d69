package uitest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aiprism/prism/analyzer/bedrocksim"
	"github.com/aiprism/prism/extractor/corpus"
	"github.com/chromedp/chromedp"
)

// hostile is a file name, and text, that would run script or inject an
// element if the page ever treated either as markup.
const hostile = `<script>alert(1)</script>"><img src=x onerror=alert(2)>`

// TestBrowser runs the application in one Chromium against one system:
// each subtest is a user's task, in the order a user would do them.
func TestBrowser(t *testing.T) {
	a := startApp(t)
	ctx := newBrowser(t)
	shots := artifacts(t)
	dir := corpus.MustDir(t)
	pdf := filepath.Join(dir, "vendor-contract", "vendor-contract.libreoffice.pdf")
	docx := filepath.Join(dir, "dpa-transfer", "dpa-transfer.libreoffice.docx")
	incident := filepath.Join(dir, "incident-report", "incident-report.libreoffice.pdf")
	open := func(t *testing.T, path string) *tab {
		t.Helper()
		tb := newTab(t, ctx, shots)
		tb.do("open "+path, chromedp.Navigate(a.APIURL+path))
		return tb
	}

	// Slowed down after wrong passwords (outcomes_test.go), before anyone
	// signs in.
	t.Run("SignInThrottled", func(t *testing.T) { signInThrottled(t, a, ctx, shots) })
	t.Run("SignIn", func(t *testing.T) {
		tb := open(t, "/")
		tb.do("see the sign-in form", chromedp.WaitVisible(chromedp.CSS("#email")))
		checkPage(tb, "sign-in")

		// A wrong password: the server's sentence, and the form stays.
		tb.do("sign in with a wrong password",
			fill("#email", a.email),
			fill("#password", "not-the-password"),
			chromedp.Click(chromedp.CSS("form button[type=submit]")))
		tb.waitFor("the refusal", `document.querySelector("form [role=status]").textContent.length > 0 && !document.querySelector("form button").disabled`, 10*time.Second)
		if got := tb.text("form [role=status]"); !strings.Contains(strings.ToLower(got), "password") {
			t.Errorf("a wrong password shows %q, want the server's sentence about the email or password", got)
		}
		tb.screenshot("sign-in-refused")

		tb.do("sign in",
			fill("#password", a.password),
			chromedp.Click(chromedp.CSS("form button[type=submit]")),
			chromedp.WaitVisible(chromedp.CSS("#documents")))
		if got := tb.text("#who"); got != a.email {
			t.Errorf("signed in, the navigation names %q, want %q", got, a.email)
		}
	})

	t.Run("UploadAndWatchLive", func(t *testing.T) {
		tb := open(t, "/")
		tb.do("see the dashboard", chromedp.WaitVisible(chromedp.CSS("#documents")))
		tb.waitFor("the live feed", `document.querySelector(".live").dataset.state === "live"`, 10*time.Second)
		// Every status each row shows, as it shows it: a row that only
		// ever showed "analyzed" was not updated live.
		eval[bool](tb, `(() => {
			window.seen = {};
			const record = () => {
				for (const tr of document.querySelectorAll("#documents tbody tr")) {
					const name = tr.querySelector("td.name").textContent;
					const s = tr.querySelector("[data-status]").dataset.status;
					const l = (window.seen[name] ||= []);
					if (l.at(-1) !== s) l.push(s);
				}
			};
			new MutationObserver(record).observe(document.getElementById("documents"), { subtree: true, childList: true, attributes: true });
			return true;
		})()`)
		tb.do("pick a PDF and a DOCX at once", chromedp.SetUploadFiles(chromedp.CSS("#upload-files"), []string{pdf, docx}))
		tb.waitFor("both uploads analyzed", `document.querySelectorAll("#uploads li[data-status=analyzed]").length === 2`, 30*time.Second)
		tb.waitFor("both rows analyzed", `["vendor-contract.libreoffice.pdf", "dpa-transfer.libreoffice.docx"].every(n =>
			[...document.querySelectorAll("#documents tbody tr")].some(tr => tr.querySelector("td.name").textContent === n && tr.querySelector("[data-status]").dataset.status === "analyzed"))`, 30*time.Second)
		seen := eval[map[string][]string](tb, `window.seen`)
		for _, name := range []string{filepath.Base(pdf), filepath.Base(docx)} {
			if s := seen[name]; len(s) < 2 || s[len(s)-1] != "analyzed" {
				t.Errorf("the row of %s showed %v: want it to move live, from an earlier status to analyzed", name, s)
			}
		}
		if n := eval[int](tb, `document.querySelectorAll("#uploads progress").length`); n != 2 {
			t.Errorf("%d upload progress bars, want one per file", n)
		}
		tb.screenshot("dashboard")
		tb.screenshot("dashboard-uploads")
	})

	t.Run("DocumentPage", func(t *testing.T) {
		tb := open(t, "/")
		tb.do("open the PDF from the dashboard",
			chromedp.WaitVisible(chromedp.CSS("#documents tbody tr")),
			chromedp.Click(chromedp.CSS(`#documents tbody tr:has(td.name a) td.name a[href^="/documents/"]`)))
		// The newest is the DOCX or the PDF, uploaded together; go to the PDF by name.
		id := eval[string](tb, `(() => { const a = [...document.querySelectorAll("#documents td.name a")].find(a => a.textContent === "vendor-contract.libreoffice.pdf"); return a ? a.getAttribute("href").split("/").pop() : ""; })()`)
		if id == "" {
			// The click above already left the dashboard.
			tb.do("back to the dashboard", chromedp.NavigateBack(), chromedp.WaitVisible(chromedp.CSS("#documents tbody tr")))
			id = eval[string](tb, `[...document.querySelectorAll("#documents td.name a")].find(a => a.textContent === "vendor-contract.libreoffice.pdf").getAttribute("href").split("/").pop()`)
		}
		tb.do("open the PDF's page", chromedp.Navigate(a.APIURL+"/documents/"+id))
		tb.waitFor("the timeline at analyzed", `document.querySelector('#steps [data-step=analyze]')?.dataset.state === "done"`, 20*time.Second)
		tb.waitFor("the text with its evidence", `document.querySelectorAll("#text mark.evidence").length > 0`, 20*time.Second)
		if got := tb.text("#doc-name"); got != "vendor-contract.libreoffice.pdf" {
			t.Errorf("the page is titled %q", got)
		}
		// The activity holds every event of the run once, in order.
		seqs := eval[[]int](tb, `[...document.querySelectorAll("#activity li")].map(li => Number(li.dataset.seq))`)
		types := eval[[]string](tb, `[...document.querySelectorAll("#activity li")].map(li => li.dataset.type)`)
		if len(types) < 3 || types[0] != "uploaded" || types[len(types)-1] != "analyzed" || !slices.IsSorted(seqs) || len(slices.Compact(slices.Clone(seqs))) != len(seqs) {
			t.Errorf("activity: types %v seqs %v; want uploaded … analyzed, each event once, in order", types, seqs)
		}
		// A marked quote is the evidence of a risk factor, and that
		// factor's "Show in the text" goes to it.
		check := eval[map[string]string](tb, `(() => {
			const mark = document.querySelector("#text mark.evidence");
			const button = document.querySelector('button[data-mark="' + mark.id + '"]');
			const quote = button.closest(".factor").querySelector("blockquote").textContent;
			button.click();
			const norm = s => s.replace(/\s+/g, " ").trim();
			return { mark: norm(mark.textContent), quote: norm(quote), focused: document.activeElement.id, id: mark.id };
		})()`)
		if check["mark"] == "" || check["mark"] != check["quote"] || check["focused"] != check["id"] {
			t.Errorf("highlight: %v; want the mark to hold the factor's quote and its button to focus it", check)
		}
		for _, sel := range []string{"#score", "#model", ".factor [data-severity], .factor", ".recommendations li", ".concerns li"} {
			if n := eval[int](tb, fmt.Sprintf(`document.querySelectorAll(%q).length`, sel)); n == 0 {
				t.Errorf("the assessment shows no %s", sel)
			}
		}
		if n := eval[int](tb, `document.querySelectorAll("#chat-panel").length`); n != 1 {
			t.Errorf("%d #chat-panel elements, want 1 for the chat panel", n)
		}
		tb.screenshot("document") // at both widths: EveryPage
	})

	t.Run("ExportCSV", func(t *testing.T) {
		tb := open(t, "/")
		downloads := tb.allowDownloads()
		tb.do("export CSV", chromedp.WaitVisible(chromedp.CSS("#documents tbody tr")), chromedp.Click(chromedp.CSS("#export-csv")))
		tb.waitFor("the export's outcome", `document.getElementById("export-status").textContent.startsWith("Exported")`, 20*time.Second)
		if got := tb.text("#export-status"); got != "Exported 2 assessments as CSV." {
			t.Errorf("export status %q", got)
		}
		csv := waitFile(t, downloads, ".csv")
		for _, want := range []string{"filename", filepath.Base(pdf), filepath.Base(docx)} {
			if !strings.Contains(csv, want) {
				t.Errorf("the exported CSV lacks %q:\n%.500s", want, csv)
			}
		}
		tb.screenshot("export")
	})

	t.Run("HostileNameAndText", func(t *testing.T) {
		// Dropped as a file of that name (a file on disk cannot hold its
		// slashes). The API keeps a safe form of a name (blob.SafeFilename),
		// so the markup of the name reaches only the upload list; the text
		// reaches the text and the evidence quotes as it is.
		name := hostile + ".txt"
		text := "SUPPLY AGREEMENT\n" + hostile + "\nThe Customer accepts unlimited liability for all damages " + hostile + " and shall indemnify the Supplier.\n"
		tb := open(t, "/")
		tb.do("see the dashboard", chromedp.WaitVisible(chromedp.CSS("#documents")))
		tb.waitFor("the live feed", `document.querySelector(".live").dataset.state === "live"`, 10*time.Second)
		drop := fmt.Sprintf(`(() => {
			const dt = new DataTransfer();
			dt.items.add(new File([%s], %s, { type: "text/plain" }));
			document.getElementById("dropzone").dispatchEvent(new DragEvent("drop", { dataTransfer: dt, bubbles: true, cancelable: true }));
			return true;
		})()`, jsString(text), jsString(name))
		eval[bool](tb, drop)
		tb.waitFor("its upload analyzed", `document.querySelector("#uploads li[data-status=analyzed] .open a") !== null`, 30*time.Second)
		if got := eval[string](tb, `document.querySelector("#uploads li .name").textContent`); got != name {
			t.Errorf("the upload list names %q, want %q", got, name)
		}
		id := eval[string](tb, `document.querySelector("#uploads li .open a").getAttribute("href").split("/").pop()`)
		kept := eval[string](tb, `fetch("/api/v1/documents/`+id+`").then(r => r.json()).then(d => d.filename)`)
		tb.waitFor("its row analyzed", fmt.Sprintf(`document.querySelector('#documents tr[data-id=%q] [data-status=analyzed]') !== null`, id), 10*time.Second)
		if got := tb.text(fmt.Sprintf(`#documents tr[data-id=%q] td.name`, id)); got != kept {
			t.Errorf("the row names %q, want %q", got, kept)
		}
		injected(t, tb)
		tb.screenshot("hostile-dashboard")
		tb.do("open its page", chromedp.Navigate(a.APIURL+"/documents/"+id))
		tb.waitFor("its text", `document.getElementById("text") !== null`, 20*time.Second)
		if got := tb.text("#doc-name"); got != kept {
			t.Errorf("the page is titled %q, want %q", got, kept)
		}
		if got := eval[string](tb, `document.getElementById("text").textContent`); got != text {
			t.Errorf("the text shows %q, want %q", got, text)
		}
		if n := eval[int](tb, `[...document.querySelectorAll("blockquote")].filter(b => b.textContent.includes("<img src=x onerror=alert(2)>")).length`); n == 0 {
			t.Error("no evidence quote shows the markup as text")
		}
		injected(t, tb)
		tb.screenshot("hostile-document")
	})

	t.Run("FiltersAndPaging", func(t *testing.T) {
		// Three documents: the PDF and the DOCX (critical), the hostile
		// text (high).
		tb := open(t, "/?q=vendor")
		tb.waitFor("the search applied", `document.querySelectorAll("#documents tbody tr").length === 1`, 10*time.Second)
		if got := tb.text("#documents tbody td.name"); got != filepath.Base(pdf) {
			t.Errorf("searching vendor shows %q", got)
		}
		if got := eval[string](tb, `document.getElementById("f-q").value`); got != "vendor" {
			t.Errorf("the search field holds %q, want the URL's vendor", got)
		}
		eval[bool](tb, `(() => {
			document.getElementById("f-q").value = "";
			const s = document.getElementById("f-risk");
			s.value = "high";
			s.dispatchEvent(new Event("change", { bubbles: true }));
			return true;
		})()`)
		tb.waitFor("the risk filter applied", `location.search === "?risk_level=high" && document.querySelectorAll("#documents tbody tr").length === 1 && document.querySelector("#documents [data-risk]").dataset.risk === "high"`, 10*time.Second)
		tb.screenshot("dashboard-filtered")

		// Two to a page, as the user's preferences say.
		client := a.signedInClient(t)
		client.put(t, "/api/v1/me/preferences", `{"list":{"page_size":2}}`)
		defer client.put(t, "/api/v1/me/preferences", `{}`)
		tb.do("open the dashboard unfiltered", chromedp.Navigate(a.APIURL+"/"))
		tb.waitFor("the first page", `document.querySelectorAll("#documents tbody tr").length === 2 && !document.getElementById("next-page").disabled`, 10*time.Second)
		first := eval[[]string](tb, `[...document.querySelectorAll("#documents tbody tr")].map(tr => tr.dataset.id)`)
		tb.do("next page", chromedp.Click(chromedp.CSS("#next-page")))
		tb.waitFor("the second page", `document.querySelectorAll("#documents tbody tr").length === 1 && document.getElementById("next-page").disabled`, 10*time.Second)
		second := eval[[]string](tb, `[...document.querySelectorAll("#documents tbody tr")].map(tr => tr.dataset.id)`)
		if slices.Contains(first, second[0]) {
			t.Errorf("page 2 %v repeats page 1 %v", second, first)
		}
		tb.do("previous page", chromedp.Click(chromedp.CSS("#prev-page")))
		tb.waitFor("the first page again", `document.querySelectorAll("#documents tbody tr").length === 2 && document.getElementById("prev-page").disabled`, 10*time.Second)
	})

	t.Run("DashboardFilters", func(t *testing.T) { dashboardFilters(t, a, ctx, shots) })

	t.Run("RestartWhileOpen", func(t *testing.T) {
		// Every model answers "too busy" until the faults are lifted: the
		// document waits for model capacity, with its page open. (The
		// Retry-After is longer than the analyzer waits for capacity, so it
		// queues the document at once instead of calling again.)
		lift := a.setFaults(t, bedrocksim.Faults{Throttle: 1, RetryAfterSeconds: 3})
		tb := open(t, "/upload")
		tb.do("upload a contract", chromedp.WaitVisible(chromedp.CSS("#dropzone")), chromedp.SetUploadFiles(chromedp.CSS("#upload-files"), []string{incident}))
		tb.waitFor("its upload", `document.querySelector("#uploads li .open a") !== null`, 20*time.Second)
		id := eval[string](tb, `document.querySelector("#uploads li .open a").getAttribute("href").split("/").pop()`)
		tb.do("open its page", chromedp.Click(chromedp.CSS("#uploads li .open a")))
		tb.waitFor("waiting for model capacity", `document.querySelector('#steps [data-step=analyze]')?.dataset.state === "waiting"`, 30*time.Second)
		tb.screenshot("document-waiting")

		start := time.Now()
		// Until the API is back the browser cannot reach it, and says so.
		defer tb.tolerate(regexp.MustCompile(`net::ERR_CONNECTION_REFUSED`))()
		a.stopAPI()
		down := true
		defer func() {
			if down { // the later subtests need the API
				a.restartAPI()
			}
		}()
		tb.waitFor("the page to notice", `document.querySelector(".live").dataset.state === "reconnecting"`, 10*time.Second)
		lift()
		tb.screenshot("document-reconnecting")
		// The pipeline goes on without the API: the document is analyzed
		// while the page cannot hear of it. Back, the API must send the page
		// exactly what it missed.
		waitStatus(t, a, id, "analyzed")
		if n := eval[int](tb, `document.querySelectorAll("#activity [data-type=analyzed]").length`); n != 0 {
			t.Fatal("the page heard of the analysis while the API was down")
		}
		a.restartAPI()
		down = false
		tb.waitFor("the timeline to end analyzed", `document.querySelector('#steps [data-step=analyze]')?.dataset.state === "done"`, 40*time.Second)
		t.Logf("analyzed %v after the API went down", time.Since(start).Round(time.Millisecond))
		shown := eval[[]int](tb, `[...document.querySelectorAll("#activity li")].map(li => Number(li.dataset.seq))`)
		logged := eval[[]int](tb, `fetch("/api/v1/documents/`+id+`").then(r => r.json()).then(d => d.timeline.filter(e => !e.type.startsWith("audit.")).map(e => e.seq))`)
		if !slices.Equal(shown, logged) {
			t.Errorf("the page shows events %v, the document's timeline is %v: want each once, none missing", shown, logged)
		}
		types := eval[[]string](tb, `[...document.querySelectorAll("#activity li")].map(li => li.dataset.type + ":" + li.textContent)`)
		t.Logf("events: %q", types)
		tb.screenshot("document-after-restart")
	})

	t.Run("ReanalyzeAndDelete", func(t *testing.T) {
		tb := open(t, "/")
		tb.waitFor("the DOCX's row", `[...document.querySelectorAll("#documents td.name a")].some(a => a.textContent === "dpa-transfer.libreoffice.docx")`, 10*time.Second)
		id := eval[string](tb, `[...document.querySelectorAll("#documents td.name a")].find(a => a.textContent === "dpa-transfer.libreoffice.docx").getAttribute("href").split("/").pop()`)
		tb.do("open it", chromedp.Click(chromedp.CSS(`a[href="/documents/`+id+`"]`)))
		tb.waitFor("its timeline at analyzed", `document.querySelector('#steps [data-step=analyze]')?.dataset.state === "done" && !document.getElementById("reanalyze").disabled`, 10*time.Second)
		tb.do("analyze it again", chromedp.Click(chromedp.CSS("#reanalyze")))
		tb.waitFor("run 2 analyzed", `document.querySelector("#steps .run")?.textContent === "Run 2" && document.querySelector('#steps [data-step=analyze]').dataset.state === "done" && document.querySelector("#activity [data-run='2'][data-type=analyzed]") !== null`, 20*time.Second)
		if got := tb.text("#action-status"); got != "Analysis run 2 started." {
			t.Errorf("reanalyze says %q", got)
		}
		tb.screenshot("document-run-2")

		tb.do("ask to delete it", chromedp.Click(chromedp.CSS("#delete")), chromedp.WaitVisible(chromedp.CSS("#delete-dialog")))
		if got := eval[string](tb, `document.activeElement.textContent`); got != "Cancel" {
			t.Errorf("the confirmation opens with focus on %q, want Cancel", got)
		}
		tb.screenshot("document-delete")
		tb.do("confirm", chromedp.Click(chromedp.CSS("#confirm-delete")))
		tb.waitFor("the dashboard without it", `location.pathname === "/" && document.querySelectorAll("#documents tbody tr").length > 0 && !document.querySelector('#documents tr[data-id="`+id+`"]')`, 10*time.Second)
		if got := tb.text("#notice"); got != "Deleted “dpa-transfer.libreoffice.docx”." {
			t.Errorf("after deleting, the notice says %q", got)
		}
		if code := eval[int](tb, `fetch("/api/v1/documents/`+id+`").then(r => r.status)`); code != 404 {
			t.Errorf("the deleted document answers %d, want 404", code)
		}
	})

	t.Run("SignOut", func(t *testing.T) {
		tb := open(t, "/")
		tb.do("sign out", chromedp.WaitVisible(chromedp.CSS("#sign-out")), chromedp.Click(chromedp.CSS("#sign-out")), chromedp.WaitVisible(chromedp.CSS("#email")))
		if got := tb.text("form [role=status]"); got != "Signed out." {
			t.Errorf("after signing out the form says %q", got)
		}
		if code := eval[int](tb, `fetch("/api/v1/documents").then(r => r.status)`); code != 401 {
			t.Errorf("after signing out, GET /api/v1/documents answers %d, want 401", code)
		}
		tb.do("open the dashboard again", chromedp.Navigate(a.APIURL+"/"), chromedp.WaitVisible(chromedp.CSS("#email")))
		if n := eval[int](tb, `document.querySelectorAll("#documents, #nav").length`); n != 0 {
			t.Error("signed out, the page still shows the documents or the navigation")
		}
		tb.screenshot("signed-out")
	})
	// A keyboard alone, from signed out (keyboard_test.go).
	t.Run("Keyboard", func(t *testing.T) { keyboardWalk(t, a, ctx, shots) })
	// The chat and the settings (chat_test.go, settings_test.go).
	t.Run("ChatOnDocument", func(t *testing.T) { chatOnDocument(t, a, ctx, shots) })
	t.Run("ChatPages", func(t *testing.T) { chatPages(t, a, ctx, shots) })
	t.Run("SettingsTokens", func(t *testing.T) { settingsTokens(t, a, ctx, shots) })
	t.Run("SettingsTheme", func(t *testing.T) { settingsTheme(t, a, ctx, shots) })
	// Every page, checked at two widths in two themes (a11y_test.go).
	t.Run("EveryPage", func(t *testing.T) { everyPage(t, a, ctx, shots) })
	// Last: its throttles leave the one model's learned rate lowered for
	// about a minute, which a later question would wait out.
	t.Run("ChatRefusals", func(t *testing.T) { chatRefusals(t, a, ctx, shots) })
}

// injected fails the test when the page holds an element that text
// could only have made as markup.
func injected(t *testing.T, tb *tab) {
	t.Helper()
	if n := eval[int](tb, `document.querySelectorAll("img, [onerror], body script, main script").length`); n != 0 {
		t.Errorf("%d injected elements in the page", n)
	}
}

// waitFile waits for a finished download ending in ext in dir and returns
// its content.
func waitFile(t *testing.T, dir, ext string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		matches, _ := filepath.Glob(filepath.Join(dir, "*"+ext))
		if len(matches) == 1 {
			raw, err := os.ReadFile(matches[0])
			if err == nil && len(raw) > 0 {
				return string(raw)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	entries, _ := os.ReadDir(dir)
	t.Fatalf("no %s download in %s (%v)", ext, dir, entries)
	return ""
}

// jsString is s as a JavaScript string literal.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// waitStatus waits until the read model has document id at status.
func waitStatus(t *testing.T, a *app, id, status string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var got string
	for ctx.Err() == nil {
		if err := a.dev.Infra.Pool.QueryRow(ctx, `SELECT status FROM documents WHERE id = $1`, id).Scan(&got); err == nil && got == status {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("document %s is %q, not %s, after 20 s", id, got, status)
}
