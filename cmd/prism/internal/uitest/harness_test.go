package uitest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aiprism/prism/cmd/prism/internal/system"
	"github.com/aiprism/prism/platform/config"
	"github.com/aiprism/prism/platform/obs"
	"github.com/aiprism/prism/platform/testenv"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/rs/zerolog"
)

// ArtifactsEnv names a directory where the browser tests keep their
// screenshots (one subdirectory per run); without it they go to a
// temporary directory that is kept only when a test fails. Either way the
// test log says where.
const ArtifactsEnv = "PRISM_TEST_ARTIFACTS"

// app is the system under test: every role in this process, the API
// requiring a session (API_AUTH=token), and its dev account.
type app struct {
	*system.Dev
	email, password string
	varDir, dsn     string
	stop            func()
}

// startApp starts the whole system on a fresh data directory.
func startApp(t *testing.T) *app {
	t.Helper()
	a := &app{varDir: t.TempDir(), dsn: testenv.Postgres(t)}
	a.start(t)
	return a
}

// start starts (or, after stop, restarts) the system on a's data.
func (a *app) start(t *testing.T) {
	t.Helper()
	env := map[string]string{
		"PRISM_VAR_DIR":       a.varDir,
		"PRISM_DEV_NATS_PORT": "-1",
		"PRISM_DEV_S3_ADDR":   "127.0.0.1:0",
		"API_ADDR":            "127.0.0.1:0",
		"API_AUTH":            "token",
		"BEDROCKSIM_SPEED":    "0",
		"DATABASE_URL":        a.dsn,
	}
	if a.Dev != nil { // a restart keeps the address the browser holds
		env["API_ADDR"] = strings.TrimPrefix(a.APIURL, "http://")
	}
	ctx, cancel := context.WithCancel(context.Background())
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	dev, err := system.StartDev(ctx, config.MapEnv(env), obs.NewRegistry(), log)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	a.Dev = dev
	raw, err := os.ReadFile(dev.Account.PasswordFile)
	if err != nil {
		t.Fatalf("the dev account's password: %v", err)
	}
	a.email, a.password = dev.Account.Email, strings.TrimSpace(string(raw))
	var once sync.Once
	a.stop = func() {
		once.Do(func() {
			cancel()
			if err := dev.Wait(); err != nil {
				t.Errorf("roles stopped with: %v", err)
			}
			dev.Close()
		})
	}
	t.Cleanup(a.stop)
}

// chromiumPath finds the browser: $CHROMIUM, else chromium on PATH.
func chromiumPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	p, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("the browser tests need Chromium: install Debian's chromium package (apt-get install -y chromium), which .ci/run does, or point $CHROMIUM at a Chromium binary")
	}
	return p
}

// newBrowser starts a headless Chromium with a fresh profile, for the
// whole test, on this machine's closed network: nothing in the background
// tries to reach the internet.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	// Start the browser now, so a missing or broken one fails here.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		cancel()
		cancelAlloc()
		t.Fatalf("start Chromium: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	return ctx
}

// tab is one browser tab whose console is watched: an error written to
// it, an uncaught exception or a refused Content-Security-Policy fails the
// test that opened it.
type tab struct {
	ctx    context.Context
	t      *testing.T
	shots  string // the artifacts directory
	mu     sync.Mutex
	errors []string
}

// expectedNetwork matches the browser's own note of an answer the page
// asked for and handles: a 4xx is a Problem the page shows (a wrong
// password, not signed in). A 5xx, or any other error, is not expected.
var expectedNetwork = regexp.MustCompile(`^Failed to load resource: the server responded with a status of 4\d\d`)

// newTab opens a tab in the browser of browserCtx.
func newTab(t *testing.T, browserCtx context.Context, shots string) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browserCtx)
	tb := &tab{ctx: ctx, t: t, shots: shots}
	lctx, stopListening := context.WithCancel(ctx)
	messages := chromedp.Console(lctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Type != chromedp.ConsoleError && m.Type != chromedp.ConsoleException {
				continue
			}
			if m.Source == "network" && expectedNetwork.MatchString(m.Text) {
				continue
			}
			tb.mu.Lock()
			tb.errors = append(tb.errors, fmt.Sprintf("%s (%s %s:%d)", m, m.Source, m.URL, m.Line))
			tb.mu.Unlock()
		}
	}()
	// A dialog (alert, confirm) is never part of the application: one
	// that opens is text run as script. It is dismissed so the page goes on.
	dialogs := chromedp.Events(lctx, page.JavascriptDialogOpening)
	go func() {
		for d, err := range dialogs {
			if err != nil {
				return
			}
			tb.mu.Lock()
			tb.errors = append(tb.errors, fmt.Sprintf("a %s dialog opened: %q", d.Type, d.Message))
			tb.mu.Unlock()
			go func() {
				_, _ = chromedp.Call(lctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: false})
			}()
		}
	}()
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("open a tab: %v", err)
	}
	t.Cleanup(func() {
		stopListening()
		<-done
		cancel()
		tb.checkConsole()
	})
	return tb
}

// checkConsole fails the test for every error the page's console held.
func (tb *tab) checkConsole() {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	for _, e := range tb.errors {
		tb.t.Errorf("browser console: %s", e)
	}
	tb.errors = nil
}

// do runs browser actions, failing the test with what was being done.
func (tb *tab) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		tb.screenshot("failed-" + what)
		tb.t.Fatalf("%s: %v", what, err)
	}
}

// text returns the visible text of the first element sel matches.
func (tb *tab) text(sel string) string {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 30*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		tb.t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](tb *tab, expr string) T {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		tb.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// waitFor waits until a JavaScript expression is truthy.
func (tb *tab) waitFor(what, expr string, timeout time.Duration) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, timeout)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
		tb.screenshot("failed-" + what)
		tb.t.Fatalf("waiting for %s (%s): %v", what, expr, err)
	}
}

// screenshot saves the page as name.png among the artifacts.
func (tb *tab) screenshot(name string) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 15*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		tb.t.Errorf("screenshot %s: %v", name, err)
		return
	}
	name = regexp.MustCompile(`[^A-Za-z0-9_.-]+`).ReplaceAllString(name, "-")
	if err := os.WriteFile(filepath.Join(tb.shots, name+".png"), png, 0o644); err != nil {
		tb.t.Errorf("screenshot %s: %v", name, err)
	}
}

// artifacts is where this run's screenshots go: under $PRISM_TEST_ARTIFACTS
// when set, else a temporary directory removed when the test passes.
func artifacts(t *testing.T) string {
	t.Helper()
	base, keep := os.Getenv(ArtifactsEnv), true
	if base == "" {
		base, keep = os.TempDir(), false
	}
	if err := os.MkdirAll(base, 0o755); err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp(base, "prism-ui-"+time.Now().Format("20060102-150405")+"-")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots in %s", dir)
	t.Cleanup(func() {
		if !keep && !t.Failed() {
			_ = os.RemoveAll(dir)
		} else if t.Failed() {
			t.Logf("screenshots kept in %s", dir)
		}
	})
	return dir
}

// fill replaces the value of the input sel with value, typed as a user
// would (chromedp.Clear leaves the value a user typed in place).
func fill(sel, value string) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(
		chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			_, err := chromedp.Evaluate[bool](fmt.Sprintf(`(e => (e.value = "", true))(document.querySelector(%q))`, sel))(ctx, t)
			return err
		}),
		chromedp.SendKeys(chromedp.CSS(sel), value))
}
