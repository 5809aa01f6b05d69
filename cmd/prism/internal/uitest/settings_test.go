package uitest

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// bearerStatus is the status of GET path with an API token.
func bearerStatus(t *testing.T, a *app, path, token string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, a.APIURL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

var tokenSecret = regexp.MustCompile(`^prism_[0-9A-Za-z]{49}$`)

// settingsTokens: a token made on the settings page is shown once, with a
// warning, works, is never shown again (not after a reload either), and
// once revoked after asking, is refused.
func settingsTokens(t *testing.T, a *app, browser context.Context, shots string) {
	tb := newTab(t, browser, shots)
	signIn(tb, a)
	tb.do("open the settings", chromedp.Navigate(a.APIURL+"/settings"))
	tb.waitFor("the tokens", `!!document.querySelector("table.tokens tbody tr")`, 10*time.Second)

	name := fmt.Sprintf("nightly export %d", time.Now().UnixNano())
	tb.do("create a token",
		fill("#token-name", name),
		chromedp.Click(chromedp.CSS("#token-name ~ button[type=submit]")))
	tb.waitFor("the new token's secret", `!!document.querySelector("#token-secret")`, 10*time.Second)
	secret := eval[string](tb, `document.querySelector("#token-secret").value`)
	if !tokenSecret.MatchString(secret) {
		t.Fatalf("the secret shown is %q", secret)
	}
	if w := tb.text("#token-warning"); !strings.Contains(w, "not be shown again") {
		t.Errorf("the secret comes with %q, want a warning that it is shown once", w)
	}
	tb.screenshot("settings-token-created")
	if code := bearerStatus(t, a, "/api/v1/documents", secret); code != http.StatusOK {
		t.Fatalf("the new token: %d, want 200", code)
	}

	tb.do("reload the settings", chromedp.Reload())
	row := fmt.Sprintf(`[...document.querySelectorAll("table.tokens tr")].find((r) => r.cells[0] && r.cells[0].textContent === %q)`, name)
	tb.waitFor("the token listed", "!!"+row, 10*time.Second)
	if eval[bool](tb, fmt.Sprintf(`!!document.querySelector("#token-secret") || document.documentElement.outerHTML.includes(%q)`, secret)) {
		t.Error("the secret is on the page again after a reload")
	}
	id := eval[string](tb, row+".dataset.id")
	sel := fmt.Sprintf(`table.tokens tr[data-id=%q]`, id)

	tb.do("revoke it",
		chromedp.Click(chromedp.CSS(sel+" button.danger")),
		chromedp.WaitVisible(chromedp.CSS("dialog.confirm[open] button.danger")))
	tb.screenshot("settings-revoke-confirm")
	tb.do("confirm", chromedp.Click(chromedp.CSS("dialog.confirm[open] button.danger")))
	tb.waitFor("the token revoked", fmt.Sprintf(`!!document.querySelector(%q)`, sel+`[data-state="revoked"]`), 10*time.Second)
	if code := bearerStatus(t, a, "/api/v1/documents", secret); code != http.StatusUnauthorized {
		t.Errorf("the revoked token: %d, want 401", code)
	}
	tb.screenshot("settings-token-revoked")
}

// darkBackground is the page's background in the dark theme (--bg).
const darkBackground = "rgb(11, 17, 32)"

// settingsTheme: choosing the dark theme darkens the page at once, and
// the choice is kept by the server (it holds after a reload), as are the
// dashboard's defaults.
func settingsTheme(t *testing.T, a *app, browser context.Context, shots string) {
	tb := newTab(t, browser, shots)
	signIn(tb, a)
	tb.do("open the settings", chromedp.Navigate(a.APIURL+"/settings"))
	tb.waitFor("the preferences", `(e => e && !e.disabled)(document.querySelector("#theme-dark"))`, 10*time.Second)
	background := `getComputedStyle(document.body).backgroundColor`
	if eval[string](tb, background) == darkBackground {
		t.Fatal("the page is dark before the dark theme is chosen")
	}
	dark := eval[string](tb, `(() => {
		document.querySelector("#theme-dark").click();
		return getComputedStyle(document.body).backgroundColor; // in the same task: at once
	})()`)
	if dark != darkBackground {
		t.Errorf("just after choosing the dark theme the background is %s, want %s", dark, darkBackground)
	}
	tb.waitFor("the theme saved", `document.querySelector("#preferences-status").textContent === "Theme saved."`, 10*time.Second)
	tb.do("choose the dashboard's defaults",
		chromedp.SetValue(chromedp.CSS("#default-status"), "analyzed"),
		chromedp.SetValue(chromedp.CSS("#default-risk"), "high"),
		fill("#default-page-size", "20"),
		chromedp.Click(chromedp.CSS("#default-page-size ~ button[type=submit]")))
	tb.waitFor("the defaults saved", `document.querySelector("#preferences-status").textContent === "Dashboard defaults saved."`, 10*time.Second)
	tb.screenshot("settings-dark")

	tb.do("reload the settings", chromedp.Reload())
	tb.waitFor("the preferences", `(e => e && !e.disabled)(document.querySelector("#theme-dark"))`, 10*time.Second)
	kept := eval[string](tb, `[document.documentElement.dataset.theme, document.querySelector("#theme-dark").checked,
		getComputedStyle(document.body).backgroundColor, document.querySelector("#default-status").value,
		document.querySelector("#default-risk").value, document.querySelector("#default-page-size").value].join(" ")`)
	if want := "dark true " + darkBackground + " analyzed high 20"; kept != want {
		t.Errorf("after a reload: %q, want %q", kept, want)
	}

	// Back to the defaults, for the pages tested after.
	if code := eval[int](tb, `(async () => {
		const me = await (await fetch("/api/v1/me", { cache: "no-store" })).json();
		const r = await fetch("/api/v1/me/preferences", { method: "PUT", headers: { "Content-Type": "application/json", "X-CSRF-Token": me.csrf_token }, body: "{}" });
		return r.status;
	})()`); code != http.StatusOK {
		t.Errorf("reset the preferences: %d", code)
	}
}
