package uitest

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aiprism/prism/accounts"
	"github.com/aiprism/prism/analyzer/bedrocksim"
	"github.com/aiprism/prism/analyzer/router"
	"github.com/aiprism/prism/cmd/prism/internal/system"
	"github.com/aiprism/prism/platform/config"
	"github.com/aiprism/prism/platform/obs"
	"github.com/aiprism/prism/platform/testenv"
	"github.com/chromedp/cdproto/browser"
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
// (requiring a session: API_AUTH=token) started apart from the others so a
// test can restart it, and a user to sign in as.
type app struct {
	dev             *system.Dev
	env             map[string]string
	APIURL          string
	email, password string
	stopAPI         func()
	t               *testing.T // the test the system lives as long as
}

// startApp starts the whole system on a fresh data directory. Documents
// are analyzed in chunks of 2000 bytes, so a contract of a few pages shows
// its chunk progress, and the one model, when throttled, rests a second.
func startApp(t *testing.T) *app {
	t.Helper()
	var roles []string
	for _, r := range system.RoleNames() {
		if r != system.RoleAPI {
			roles = append(roles, r)
		}
	}
	// One model of the default chain, resting one second after a throttle
	// instead of thirty: a test that makes it busy waits seconds.
	chain := router.DefaultChain()[:1]
	chain[0].CooldownSeconds = 1
	raw, err := json.Marshal(chain)
	if err != nil {
		t.Fatal(err)
	}
	chainFile := filepath.Join(t.TempDir(), "models.json")
	if err := os.WriteFile(chainFile, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	a := &app{t: t, env: map[string]string{
		"ANALYZER_MODELS_FILE": chainFile,
		"PRISM_VAR_DIR":        t.TempDir(),
		"PRISM_DEV_NATS_PORT":  "-1",
		"PRISM_DEV_S3_ADDR":    "127.0.0.1:0",
		"PRISM_DEV_ROLES":      strings.Join(roles, ","),
		"API_AUTH":             "token",
		"BEDROCKSIM_SPEED":     "0",
		"ANALYZER_CHUNK_BYTES": "2000",
		// One user opens many tabs in quick succession, and the server
		// hears that a closed tab's stream is gone (and gives back its
		// place) only at its next heartbeat: the per-user limit of 20 open
		// streams would refuse the later tabs' streams.
		"API_LIMIT_SSE_STREAMS": "200",
		"DATABASE_URL":          testenv.Postgres(t),
	}}
	ctx, cancel := context.WithCancel(context.Background())
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	dev, err := system.StartDev(ctx, config.MapEnv(a.env), obs.NewRegistry(), log)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	a.dev = dev
	t.Cleanup(func() {
		cancel()
		if err := dev.Wait(); err != nil {
			t.Errorf("roles stopped with: %v", err)
		}
		dev.Close()
	})
	a.email, a.password = "analyst@example.com", rand.Text()
	users := accounts.NewUsers(dev.Infra.Pool, accounts.DefaultParams())
	if _, err := users.Add(ctx, accounts.NewUser{Email: a.email, DisplayName: "Risk analyst", Role: accounts.RoleUser, Password: a.password}); err != nil {
		t.Fatal(err)
	}
	a.startAPI("127.0.0.1:0")
	return a
}

// startAPI starts the api role on the system's connections, listening on
// addr, until the end of the test that started the system.
func (a *app) startAPI(addr string) {
	t := a.t
	t.Helper()
	roles, err := system.LookupRoles([]string{system.RoleAPI})
	if err != nil {
		t.Fatal(err)
	}
	over := map[string]string{}
	for k, v := range a.dev.RoleEnv {
		over[k] = v
	}
	over["API_ADDR"] = addr
	ctx, cancel := context.WithCancel(context.Background())
	running, err := system.StartRoles(ctx, a.dev.Infra, config.Overlay(config.MapEnv(a.env), over), roles)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	a.APIURL = "http://" + running.APIAddr
	var once sync.Once
	a.stopAPI = func() {
		once.Do(func() {
			cancel()
			if err := running.Wait(); err != nil {
				t.Errorf("the api stopped with: %v", err)
			}
		})
	}
	t.Cleanup(a.stopAPI)
}

// restartAPI starts the API again, after stopAPI, at the same address, as
// after a deploy or a crash: the browser's connections come back.
func (a *app) restartAPI() {
	a.startAPI(strings.TrimPrefix(a.APIURL, "http://"))
}

// setFaults makes every model of the simulator fail as f says, until the
// returned lift is called or the test ends.
func (a *app) setFaults(t *testing.T, f bedrocksim.Faults) (lift func()) {
	t.Helper()
	if err := a.dev.Sim.SetFaults("*", f); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	lift = func() {
		once.Do(func() {
			if err := a.dev.Sim.SetFaults("*", bedrocksim.Faults{}); err != nil {
				t.Errorf("lift the simulator's faults: %v", err)
			}
		})
	}
	t.Cleanup(lift)
	return lift
}

// allowDownloads makes the tab's browser save downloads in a directory of
// the test's, and returns it.
func (tb *tab) allowDownloads() string {
	tb.t.Helper()
	dir := tb.t.TempDir()
	if _, err := chromedp.CallBrowser(tb.ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: dir,
	}); err != nil {
		tb.t.Fatal(err)
	}
	return dir
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
	ctx      context.Context
	t        *testing.T
	shots    string // the artifacts directory
	mu       sync.Mutex
	errors   []string
	tolerant []*regexp.Regexp // messages expected for now
}

// tolerate accepts console errors matching re from now on, until the
// returned function is called: a test that takes the server away expects
// the browser to say it cannot reach it.
func (tb *tab) tolerate(re *regexp.Regexp) (end func()) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	tb.tolerant = append(tb.tolerant, re)
	return func() {
		tb.mu.Lock()
		defer tb.mu.Unlock()
		tb.tolerant = slices.DeleteFunc(tb.tolerant, func(x *regexp.Regexp) bool { return x == re })
	}
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
			if !slices.ContainsFunc(tb.tolerant, func(re *regexp.Regexp) bool { return re.MatchString(m.Text) }) {
				tb.errors = append(tb.errors, fmt.Sprintf("%s (%s %s:%d)", m, m.Source, m.URL, m.Line))
			}
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

// client is an HTTP client signed in as the app's user, for setting up
// what a test needs through the API.
type client struct {
	http *http.Client
	base string
	csrf string
}

func (a *app) signedInClient(t *testing.T) *client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &client{http: &http.Client{Jar: jar}, base: a.APIURL}
	body, _ := json.Marshal(map[string]string{"email": a.email, "password": a.password})
	var out struct {
		CSRF string `json:"csrf_token"`
	}
	c.do(t, http.MethodPost, "/api/v1/session", string(body), &out)
	c.csrf = out.CSRF
	return c
}

func (c *client) put(t *testing.T, path, body string) {
	t.Helper()
	c.do(t, http.MethodPut, path, body, nil)
}

// do sends a JSON request, with the CSRF token and the page's origin, and
// decodes a 2xx answer into out.
func (c *client) do(t *testing.T, method, path, body string, out any) {
	t.Helper()
	req, err := http.NewRequest(method, c.base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", c.base)
	if c.csrf != "" {
		req.Header.Set("X-CSRF-Token", c.csrf)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
	}
}
