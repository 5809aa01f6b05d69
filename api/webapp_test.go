package api_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/aiprism/prism/api"
	"github.com/aiprism/prism/api/web"
	"github.com/aiprism/prism/platform/config"
	"github.com/aiprism/prism/platform/obs"
	"github.com/andybalholm/brotli"
	"github.com/rs/zerolog"
	"golang.org/x/net/html"
)

// shellPage is the app shell as a browser would read it.
type shellPage struct {
	header http.Header
	body   []byte
	assets []string // URLs of the files it loads: scripts, stylesheets, icons, preloads
}

// readPage parses an HTML answer, failing the test on anything the page's
// policy would refuse to run: inline script, inline style, event handler
// attributes.
func readPage(t *testing.T, header http.Header, body []byte) shellPage {
	t.Helper()
	p := shellPage{header: header, body: body}
	doc, err := html.Parse(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			attrs := map[string]string{}
			for _, a := range n.Attr {
				attrs[a.Key] = a.Val
				if strings.HasPrefix(a.Key, "on") || a.Key == "style" {
					t.Errorf("inline %s on <%s>", a.Key, n.Data)
				}
			}
			switch n.Data {
			case "script":
				if attrs["src"] == "" || n.FirstChild != nil {
					t.Errorf("an inline script: %v", attrs)
				}
				p.assets = append(p.assets, attrs["src"])
			case "style":
				t.Error("an inline <style>")
			case "link":
				p.assets = append(p.assets, attrs["href"])
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	return p
}

// directives splits a Content-Security-Policy into its directives.
func directives(csp string) map[string][]string {
	out := map[string][]string{}
	for d := range strings.SplitSeq(csp, ";") {
		f := strings.Fields(d)
		if len(f) > 0 {
			out[f[0]] = f[1:]
		}
	}
	return out
}

// checkPageHeaders: never cached stale, and a policy without inline
// script or style that lets the page load its files from assetOrigin
// ("" = this server only) and talk to its own API.
func checkPageHeaders(t *testing.T, h http.Header, assetOrigin string) {
	t.Helper()
	if ct := h.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	if cc := h.Get("Cache-Control"); cc != "no-cache" {
		t.Errorf("Cache-Control %q, want no-cache", cc)
	}
	csp := h.Get("Content-Security-Policy")
	if strings.Contains(csp, "unsafe-") || strings.Contains(csp, "nonce-") {
		t.Errorf("the policy allows inline content: %s", csp)
	}
	want := []string{"'self'"}
	if assetOrigin != "" {
		want = append(want, assetOrigin)
	}
	d := directives(csp)
	for name, sources := range map[string][]string{
		"script-src": want, "style-src": want, "connect-src": {"'self'"}, "frame-ancestors": {"'none'"},
		"base-uri": {"'none'"}, "form-action": {"'self'"}, "object-src": {"'none'"}, "default-src": {"'none'"},
	} {
		if !slices.Equal(d[name], sources) {
			t.Errorf("%s %v, want %v (policy %s)", name, d[name], sources, csp)
		}
	}
	for _, name := range []string{"X-Content-Type-Options", "X-Frame-Options", "Referrer-Policy"} {
		if h.Get(name) == "" {
			t.Errorf("no %s", name)
		}
	}
}

// received reads an answer to its end, failing the test if there is none.
func received(t *testing.T) func(*http.Response, error) response {
	return func(resp *http.Response, err error) response {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return response{resp, body}
	}
}

// assetName is a hashed file name under /assets/.
var assetName = regexp.MustCompile(`^/assets/((?:[a-z]+/)*[a-z]+)\.[0-9a-f]{12}\.(js|css|svg)$`)

// moduleImport finds relative module specifiers in served JavaScript.
var moduleImport = regexp.MustCompile(`(?:from|import)\s*\(?\s*"(\./[^"]+)"`)

// TestWebApplicationAssets: the shell, served for / and any client route
// but never for the API's paths, loads files under content-hashed names
// that are cached forever, sent in gzip or brotli by Accept-Encoding
// (decoding to the same bytes), revalidated by ETag, and rewritten to
// import each other by hashed name.
func TestWebApplicationAssets(t *testing.T) {
	e := newEnv(t)
	// Pages are not API operations: the unchecked client.
	get := func(path string, header ...string) response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, e.url+path, nil)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		return received(t)(e.unchecked.Do(req))
	}
	root := get("/", "Accept-Encoding", "identity")
	expect(t, root, http.StatusOK)
	checkPageHeaders(t, root.Header, "")
	shell := readPage(t, root.Header, root.body)
	for _, route := range []string{"/documents/01JTESTDOCUMENT", "/chat", "/settings", "/Settings/"} {
		r := get(route, "Accept-Encoding", "identity")
		expect(t, r, http.StatusOK)
		checkPageHeaders(t, r.Header, "")
		if !bytes.Equal(r.body, root.body) {
			t.Errorf("%s is not the shell", route)
		}
	}
	// The API's paths stay the API's: JSON problems, never the shell.
	for _, path := range []string{"/api/nowhere", "/api/v1/nowhere", "/API/v1/nowhere"} {
		e.get(path, alice).problem(t, http.StatusNotFound, "no-route")
	}
	e.do(http.MethodPut, "/api/nowhere", alice, nil).problem(t, http.StatusNotFound, "no-route")
	e.do(http.MethodPut, "/api/v1/documents", alice, nil).problem(t, http.StatusMethodNotAllowed, "method-not-allowed")
	// A missing file is missing, not a page; so is a file by its source name.
	for _, path := range []string{"/favicon.ico", "/assets/app.js", "/assets/app.000000000000.js"} {
		if r := get(path); r.StatusCode != http.StatusNotFound {
			t.Errorf("%s: %d %.100s", path, r.StatusCode, r.body)
		}
	}

	// Every file the shell loads, and every module those import.
	sources := web.Files()
	seen := map[string]bool{}
	todo := slices.Clone(shell.assets)
	if len(todo) < 4 { // app.js, app.css, icon.svg, a preloaded module
		t.Fatalf("the shell loads %v", todo)
	}
	for len(todo) > 0 {
		url := todo[0]
		todo = todo[1:]
		if seen[url] {
			continue
		}
		seen[url] = true
		m := assetName.FindStringSubmatch(url)
		if m == nil {
			t.Fatalf("%s is not a hashed asset name", url)
		}
		plain := get(url, "Accept-Encoding", "identity")
		expect(t, plain, http.StatusOK)
		h := plain.Header
		if h.Get("Cache-Control") != "public, max-age=31536000, immutable" || h.Get("Vary") != "Accept-Encoding" ||
			h.Get("X-Content-Type-Options") != "nosniff" || h.Get("ETag") == "" || h.Get("Content-Encoding") != "" ||
			h.Get("Access-Control-Allow-Origin") != "*" {
			t.Errorf("%s: headers %v", url, h)
		}
		wantType := map[string]string{"js": "text/javascript; charset=utf-8", "css": "text/css; charset=utf-8", "svg": "image/svg+xml"}[m[2]]
		if got := h.Get("Content-Type"); got != wantType {
			t.Errorf("%s: Content-Type %q, want %q", url, got, wantType)
		}
		// The source, but for the hashed names of the files it refers to.
		src, err := fs.ReadFile(sources, m[1]+"."+m[2])
		if err != nil {
			t.Fatalf("%s: no source: %v", url, err)
		}
		if unhashed := regexp.MustCompile(`\.[0-9a-f]{12}\.(js|css|svg)`).ReplaceAll(plain.body, []byte(".$1")); !bytes.Equal(unhashed, src) {
			t.Errorf("%s is not its source with hashed names:\n%s", url, plain.body)
		}
		for _, imp := range moduleImport.FindAllSubmatch(plain.body, -1) {
			todo = append(todo, "/assets/"+strings.TrimPrefix(string(imp[1]), "./"))
		}
		for _, c := range []struct {
			accept, coding string
			decode         func(io.Reader) (io.Reader, error)
		}{
			{"gzip, deflate", "gzip", func(r io.Reader) (io.Reader, error) { return gzip.NewReader(r) }},
			{"gzip;q=0.5, br", "br", func(r io.Reader) (io.Reader, error) { return brotli.NewReader(r), nil }},
		} {
			z := get(url, "Accept-Encoding", c.accept)
			expect(t, z, http.StatusOK)
			if z.Header.Get("Content-Encoding") != c.coding || z.Header.Get("Vary") != "Accept-Encoding" ||
				z.Header.Get("ETag") == h.Get("ETag") || z.Header.Get("Content-Type") != wantType {
				t.Errorf("%s as %s: headers %v", url, c.coding, z.Header)
			}
			r, err := c.decode(bytes.NewReader(z.body))
			if err != nil {
				t.Fatalf("%s as %s: %v", url, c.coding, err)
			}
			if got, err := io.ReadAll(r); err != nil || !bytes.Equal(got, plain.body) {
				t.Errorf("%s as %s decodes to %d bytes (%v), want the %d sent plain", url, c.coding, len(got), err, len(plain.body))
			}
			// Revalidation: any coding's tag says the client has it.
			for _, tag := range []string{h.Get("ETag"), z.Header.Get("ETag"), "W/" + h.Get("ETag")} {
				nm := get(url, "Accept-Encoding", c.accept, "If-None-Match", `"other", `+tag)
				if nm.StatusCode != http.StatusNotModified || len(nm.body) != 0 || nm.Header.Get("ETag") != z.Header.Get("ETag") ||
					nm.Header.Get("Cache-Control") != h.Get("Cache-Control") {
					t.Errorf("%s If-None-Match %s: %d %v", url, tag, nm.StatusCode, nm.Header)
				}
			}
		}
		if r := get(url, "If-None-Match", `"other"`); r.StatusCode != http.StatusOK {
			t.Errorf("%s with a stale ETag: %d", url, r.StatusCode)
		}
	}
	if len(seen) < 5 { // app.js, api.js, dom.js, app.css, icon.svg
		t.Fatalf("followed only %v", seen)
	}
	// The shell itself is sent compressed too, and revalidates.
	z := get("/settings", "Accept-Encoding", "br")
	if z.Header.Get("Content-Encoding") != "br" {
		t.Errorf("the shell as br: %v", z.Header)
	}
	if r := get("/chat", "If-None-Match", root.Header.Get("ETag")); r.StatusCode != http.StatusNotModified {
		t.Errorf("the shell with its ETag: %d", r.StatusCode)
	}
}

// TestStaticBaseURL: with a CDN in front, pages load every file from its
// origin, and their policy allows that origin for scripts and styles; the
// files are still served here, for the CDN to pull.
func TestStaticBaseURL(t *testing.T) {
	srv := api.New(api.Config{Auth: api.AuthToken, StaticBaseURL: "https://cdn.example.com/prism/"},
		api.Deps{Registry: obs.NewRegistry(), Log: zerolog.Nop()})
	do := func(path string) response {
		t.Helper()
		return received(t)(srv.App().Test(httptest.NewRequest(http.MethodGet, path, nil), 10_000))
	}
	r := do("/documents/01JTESTDOCUMENT")
	expect(t, r, http.StatusOK)
	checkPageHeaders(t, r.Header, "https://cdn.example.com")
	p := readPage(t, r.Header, r.body)
	if len(p.assets) < 4 {
		t.Fatalf("the page loads %v", p.assets)
	}
	for _, u := range p.assets {
		local, ok := strings.CutPrefix(u, "https://cdn.example.com/prism")
		if !ok || !assetName.MatchString(local) {
			t.Fatalf("%s is not a hashed file on the CDN", u)
		}
		expect(t, do(local), http.StatusOK)
	}
}

// TestStaticBaseURLConfig: STATIC_BASE_URL is an http(s) URL naming where
// the assets are, nothing more.
func TestStaticBaseURLConfig(t *testing.T) {
	l := config.New(config.MapEnv(map[string]string{"STATIC_BASE_URL": "https://cdn.example.com/prism"}))
	if c := api.ConfigFromEnv(l); l.Err() != nil || c.StaticBaseURL != "https://cdn.example.com/prism" {
		t.Fatalf("%q: %v", c.StaticBaseURL, l.Err())
	}
	for _, bad := range []string{"cdn.example.com", "ftp://cdn.example.com", "https://cdn.example.com/?v=2", "https://user@cdn.example.com", "https://cdn.example.com/#top"} {
		l := config.New(config.MapEnv(map[string]string{"STATIC_BASE_URL": bad}))
		api.ConfigFromEnv(l)
		if err := l.Err(); err == nil || !strings.Contains(err.Error(), "STATIC_BASE_URL") {
			t.Errorf("%q accepted: %v", bad, err)
		}
	}
}
