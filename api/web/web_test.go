package web

import (
	"regexp"
	"strings"
	"testing"
	"testing/fstest"
)

// hashedName is a file name with its content hash.
var hashedName = regexp.MustCompile(`^(.*)\.[0-9a-f]{12}(\.[a-z]+)$`)

// TestEmbeddedFilesLoad: the files the binary carries prepare, with the
// CDN base too, and every one is served under a hashed name.
func TestEmbeddedFilesLoad(t *testing.T) {
	for _, base := range []string{"", "https://cdn.example.com/prism/"} {
		s, err := New(Files(), base)
		if err != nil {
			t.Fatalf("base %q: %v", base, err)
		}
		for src, name := range s.hashed {
			if m := hashedName.FindStringSubmatch(name); m == nil || m[1]+m[2] != src {
				t.Errorf("%s served as %s", src, name)
			}
		}
		want := "/assets/"
		if base != "" {
			want = "https://cdn.example.com/prism/assets/"
		}
		if u := s.URL("app.js"); !strings.HasPrefix(u, want) {
			t.Errorf("base %q: app.js at %s", base, u)
		}
	}
}

// TestHashedNamesFollowImports: a module's name changes when it changes
// or when anything it imports (directly, through another module, or in a
// cycle) changes, and only then; references are rewritten to the new
// names, in JS imports and CSS url() alike.
func TestHashedNamesFollowImports(t *testing.T) {
	files := func(b string) fstest.MapFS {
		return fstest.MapFS{
			"app.js":       {Data: []byte(`import { a } from "./lib/a.js";` + "\n" + `const later = () => import("./lazy.js");`)},
			"lib/a.js":     {Data: []byte(`export { b } from "./b.js"; export const a = 1;`)},
			"lib/b.js":     {Data: []byte(`import "../app.js"; export const b = "` + b + `";`)}, // a cycle back to app.js
			"lazy.js":      {Data: []byte(`export default 1;`)},
			"app.css":      {Data: []byte(`.brand { background: url("img/logo.svg#logo") } .x { background: url(data:image/png;base64,AA==) }`)},
			"img/logo.svg": {Data: []byte(`<svg xmlns="http://www.w3.org/2000/svg"/>`)},
			"icon.svg":     {Data: []byte(`<svg xmlns="http://www.w3.org/2000/svg"/>`)},
		}
	}
	before, err := New(files("one"), "")
	if err != nil {
		t.Fatal(err)
	}
	after, err := New(files("two"), "")
	if err != nil {
		t.Fatal(err)
	}
	for src, renamed := range map[string]bool{"app.js": true, "lib/a.js": true, "lib/b.js": true, "lazy.js": false, "app.css": false, "img/logo.svg": false} {
		if got := before.hashed[src] != after.hashed[src]; got != renamed {
			t.Errorf("%s: %s then %s; want renamed %v", src, before.hashed[src], after.hashed[src], renamed)
		}
	}
	body := func(s *Site, src string) string { return string(s.byName[s.hashed[src]].bodies[identity]) }
	base := func(s *Site, src string) string { return s.hashed[src][strings.LastIndex(s.hashed[src], "/")+1:] }
	for _, c := range []struct{ in, want string }{
		{"app.js", `from "./lib/` + base(after, "lib/a.js") + `"`},
		{"app.js", `import("./` + base(after, "lazy.js") + `")`},
		{"lib/a.js", `from "./` + base(after, "lib/b.js") + `"`},
		{"lib/b.js", `import "../` + base(after, "app.js") + `"`},
		{"app.css", `url("img/` + base(after, "img/logo.svg") + `#logo")`},
		{"app.css", `url(data:image/png;base64,AA==)`},
	} {
		if !strings.Contains(body(after, c.in), c.want) {
			t.Errorf("%s does not say %s:\n%s", c.in, c.want, body(after, c.in))
		}
	}
	// The shell preloads every module the entry reaches.
	shell := string(after.shell.bodies[identity])
	for _, src := range []string{"lib/a.js", "lib/b.js", "lazy.js"} {
		if !strings.Contains(shell, `<link rel="modulepreload" href="`+after.URL(src)+`">`) {
			t.Errorf("the shell does not preload %s:\n%s", src, shell)
		}
	}
}

// TestRefusedFiles: what would be served wrong is refused at start.
func TestRefusedFiles(t *testing.T) {
	ok := fstest.MapFS{"app.js": {Data: []byte(`export {};`)}, "app.css": {}, "icon.svg": {}}
	with := func(name, data string) fstest.MapFS {
		fs := fstest.MapFS{name: {Data: []byte(data)}}
		for k, v := range ok {
			if _, set := fs[k]; !set {
				fs[k] = v
			}
		}
		return fs
	}
	for _, c := range []struct {
		name  string
		fs    fstest.MapFS
		base  string
		error string
	}{
		{"an import of a missing module", with("app.js", `import "./gone.js";`), "", `refers to "./gone.js"`},
		{"a file of unknown type", with("notes.md", "# hi"), "", `no content type for ".md"`},
		{"no entry module", fstest.MapFS{"app.css": {}, "icon.svg": {}}, "", "no app.js"},
		{"a base that is not a URL", ok, "cdn.example.com", "static base URL"},
		{"a base with a query", ok, "https://cdn.example.com/?v=1", "static base URL"},
	} {
		if _, err := New(c.fs, c.base); err == nil || !strings.Contains(err.Error(), c.error) {
			t.Errorf("%s: %v, want an error saying %q", c.name, err, c.error)
		}
	}
	if _, err := New(ok, "https://cdn.example.com"); err != nil {
		t.Fatalf("the minimal files: %v", err)
	}
}

// TestNegotiate: the coding sent follows Accept-Encoding's qualities,
// prefers brotli on a tie, and falls back to identity.
func TestNegotiate(t *testing.T) {
	f := newFile([]byte(strings.Repeat("compressible ", 100)), "text/plain", "no-cache")
	for header, want := range map[string]coding{
		"":                           identity,
		"gzip":                       gzipCoding,
		"gzip, deflate, br, zstd":    brotliCoding,
		"br;q=0.5, gzip":             gzipCoding,
		"BR":                         brotliCoding,
		"*":                          brotliCoding,
		"*;q=0, gzip;q=0.1":          gzipCoding,
		"br;q=0, gzip;q=0":           identity,
		"identity;q=0, *;q=0":        identity, // nothing acceptable: identity all the same
		"gzip;q=0.8, identity;q=0.9": identity,
		"deflate":                    identity,
		"br;q=nonsense":              brotliCoding,
	} {
		if got := f.negotiate(header); got != want {
			t.Errorf("Accept-Encoding %q: %s, want %s", header, codingNames[got], codingNames[want])
		}
	}
	tiny := newFile([]byte("x"), "text/plain", "no-cache") // compressing makes it larger
	if got := tiny.negotiate("br, gzip"); got != identity {
		t.Errorf("a file not worth compressing is sent as %s", codingNames[got])
	}
}
