package uitest

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestBrowser runs the application in one Chromium against one system:
// each subtest is a user's task, in the order a user would do them.
func TestBrowser(t *testing.T) {
	a := startApp(t)
	browser := newBrowser(t)
	shots := artifacts(t)

	t.Run("SignIn", func(t *testing.T) {
		tb := newTab(t, browser, shots)
		tb.do("open the application", chromedp.Navigate(a.APIURL+"/"), chromedp.WaitVisible(chromedp.CSS("#email")))
		tb.screenshot("sign-in")

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
			chromedp.WaitVisible(chromedp.CSS("#who")))
		if got := tb.text("#who"); !strings.Contains(got, a.email) {
			t.Errorf("signed in, the page says %q, want the user's email", got)
		}
		tb.screenshot("signed-in")
	})
	// The chat and the settings (chat_test.go, settings_test.go).
	t.Run("ChatOnDocument", func(t *testing.T) { chatOnDocument(t, a, browser, shots) })
	t.Run("ChatPages", func(t *testing.T) { chatPages(t, a, browser, shots) })
	t.Run("SettingsTokens", func(t *testing.T) { settingsTokens(t, a, browser, shots) })
	t.Run("SettingsTheme", func(t *testing.T) { settingsTheme(t, a, browser, shots) })
}
