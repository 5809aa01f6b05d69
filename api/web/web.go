// Package web serves AI-Prism's web application from the API: its source
// files, embedded in the binary (static/: plain ES modules, CSS and
// images, no build step), and the HTML shell every page of it starts from.
//
// Files are served the way a CDN in front of the API expects. At start
// each file gets a content-hashed name (app.3f9c2a1b04de.js) under
// AssetsPath, cached forever (immutable), and is compressed once, with
// gzip and brotli, into memory. Imports between modules and url() in CSS
// are rewritten to the hashed names, and a file's hash covers every file
// it reaches that way, so changing one module renames it and every module
// that imports it: a client never mixes old and new files. The shell is
// rendered with the hashed URLs, from the CDN's origin when a static base
// URL is set, and is never cached stale.
package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"io/fs"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strings"
)

// AssetsPath is where the files are served, under their hashed names.
const AssetsPath = "/assets/"

//go:embed static
var static embed.FS

//go:embed shell.html
var shellTemplate string

// Files are the application's source files as embedded.
func Files() fs.FS {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // "static" is a valid path: fs.Sub cannot fail on it
	}
	return sub
}

// Site is the application ready to serve: its files under their hashed
// names and its shell page, each in every encoding worth sending.
type Site struct {
	byName map[string]*file  // hashed path (app.3f9c2a1b04de.js) -> file
	hashed map[string]string // source path (app.js) -> hashed path
	base   string            // the assets' URL prefix in pages: AssetsPath or the static base URL's
	shell  *file
	csp    string // the shell's Content-Security-Policy
}

// entry is the module the shell loads; the modules it imports are
// preloaded.
const entry = "app.js"

// New prepares the files of fsys (Files in production) to be served.
// staticBase, when not empty, is the http(s) URL under which a CDN serves
// this server's AssetsPath (https://cdn.example.com puts app.js at
// https://cdn.example.com/assets/app.<hash>.js): pages then load every
// file from there, and their policy allows that origin.
func New(fsys fs.FS, staticBase string) (*Site, error) {
	s := &Site{byName: map[string]*file{}, hashed: map[string]string{}, base: AssetsPath}
	srcOrigin := ""
	if staticBase != "" {
		u, err := url.Parse(staticBase)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
			return nil, fmt.Errorf("web: static base URL %q: want an http(s) URL without user, query or fragment", staticBase)
		}
		s.base = strings.TrimSuffix(u.String(), "/") + AssetsPath
		srcOrigin = " " + u.Scheme + "://" + u.Host
	}
	g, err := readGraph(fsys)
	if err != nil {
		return nil, err
	}
	for _, p := range g.paths {
		ext := path.Ext(p)
		s.hashed[p] = strings.TrimSuffix(p, ext) + "." + g.closureHash(p)[:12] + ext
	}
	for _, p := range g.paths {
		s.byName[s.hashed[p]] = newFile(g.rewrite(p, s.hashed), contentTypes[path.Ext(p)], cacheForever)
	}
	if _, ok := s.hashed[entry]; !ok {
		return nil, fmt.Errorf("web: no %s among the files", entry)
	}
	if err := s.renderShell(g); err != nil {
		return nil, err
	}
	s.csp = "default-src 'none'; script-src 'self'" + srcOrigin + "; style-src 'self'" + srcOrigin +
		"; img-src 'self'" + srcOrigin + "; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'" +
		// Text reaches the page as text nodes only (static/dom.js): a
		// string given to innerHTML and the like is refused.
		"; require-trusted-types-for 'script'; trusted-types 'none'"
	return s, nil
}

// URL is where pages load the source file src from (its hashed URL), ""
// for a file that is not served.
func (s *Site) URL(src string) string {
	h, ok := s.hashed[src]
	if !ok {
		return ""
	}
	return s.base + h
}

// CSP is the Content-Security-Policy of the pages.
func (s *Site) CSP() string { return s.csp }

func (s *Site) renderShell(g *graph) error {
	var preload []string
	for _, p := range g.reach(entry) {
		if p != entry && path.Ext(p) == ".js" {
			preload = append(preload, s.URL(p))
		}
	}
	t, err := template.New("shell").Funcs(template.FuncMap{"asset": func(src string) (string, error) {
		if u := s.URL(src); u != "" {
			return u, nil
		}
		return "", fmt.Errorf("no file %s", src)
	}}).Parse(shellTemplate)
	if err != nil {
		return fmt.Errorf("web: shell template: %w", err)
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, struct{ Preload []string }{preload}); err != nil {
		return fmt.Errorf("web: shell: %w", err)
	}
	s.shell = newFile(buf.Bytes(), "text/html; charset=utf-8", "no-cache")
	return nil
}

// contentTypes are the types of the files the application may hold; a
// file of another kind is refused at start rather than served as
// something a browser might sniff.
var contentTypes = map[string]string{
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
	".png":  "image/png",
	".ico":  "image/x-icon",
	".json": "application/json",
	".txt":  "text/plain; charset=utf-8",
}

// graph is the files and the references between them (imports, url()).
type graph struct {
	paths []string            // sorted
	raw   map[string][]byte   // as written
	refs  map[string][]ref    // by referring file, in order
	deps  map[string][]string // by referring file, the files it names
}

// ref is one reference to another file in a file's text: the bytes at
// [start, end) name target.
type ref struct {
	start, end int
	target     string
}

// References the files make to one another. Only relative ones name our
// files: in JS a module specifier starting with ./ or ../ after import,
// from or import(; in CSS a url() or @import that has no scheme and is not
// absolute.
var (
	jsRef  = regexp.MustCompile(`(?:\bfrom|\bimport)\s*\(?\s*["'](\.\.?/[^"'\n]+)["']`)
	cssRef = regexp.MustCompile(`(?:url\(\s*["']?|@import\s+["'])([^"')\s]+)`)
)

func readGraph(fsys fs.FS) (*graph, error) {
	g := &graph{raw: map[string][]byte{}, refs: map[string][]ref{}, deps: map[string][]string{}}
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if _, ok := contentTypes[path.Ext(p)]; !ok {
			return fmt.Errorf("web: %s: no content type for %q files", p, path.Ext(p))
		}
		raw, err := fs.ReadFile(fsys, p)
		if err != nil {
			return fmt.Errorf("web: %w", err)
		}
		g.paths, g.raw[p] = append(g.paths, p), raw
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.Sort(g.paths)
	for _, p := range g.paths {
		var re *regexp.Regexp
		switch path.Ext(p) {
		case ".js":
			re = jsRef
		case ".css":
			re = cssRef
		default:
			continue
		}
		for _, m := range re.FindAllSubmatchIndex(g.raw[p], -1) {
			spec := string(g.raw[p][m[2]:m[3]])
			name, _, _ := strings.Cut(spec, "#") // icon.svg#logo names icon.svg
			name, _, _ = strings.Cut(name, "?")
			if strings.Contains(name, ":") || strings.HasPrefix(name, "/") || name == "" {
				continue // data:, https://, an absolute path: not one of ours
			}
			target := path.Join(path.Dir(p), name)
			if _, ok := g.raw[target]; !ok {
				return nil, fmt.Errorf("web: %s refers to %q, which is not among the files", p, spec)
			}
			// Only the file name part changes: the directories stay as written.
			start := m[2] + strings.LastIndex(name, "/") + 1
			g.refs[p] = append(g.refs[p], ref{start: start, end: m[2] + len(name), target: target})
			if !slices.Contains(g.deps[p], target) {
				g.deps[p] = append(g.deps[p], target)
			}
		}
	}
	return g, nil
}

// reach lists p and every file it reaches through references, sorted.
// Modules may import each other in a cycle.
func (g *graph) reach(p string) []string {
	seen := map[string]bool{p: true}
	todo := []string{p}
	for len(todo) > 0 {
		next := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		for _, d := range g.deps[next] {
			if !seen[d] {
				seen[d] = true
				todo = append(todo, d)
			}
		}
	}
	out := make([]string, 0, len(seen))
	for q := range seen {
		out = append(out, q)
	}
	slices.Sort(out)
	return out
}

// closureHash is the hex SHA-256 of p and every file p reaches, names
// and contents: the served bytes of p are a function of exactly these, so
// the hash names them, and a change in any file it imports changes it.
func (g *graph) closureHash(p string) string {
	h := sha256.New()
	for _, q := range g.reach(p) {
		fmt.Fprintf(h, "%s\x00%d\x00", q, len(g.raw[q]))
		h.Write(g.raw[q])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// rewrite returns p's text with every reference renamed to its hashed
// file.
func (g *graph) rewrite(p string, hashed map[string]string) []byte {
	raw := g.raw[p]
	var out bytes.Buffer
	at := 0
	for _, r := range g.refs[p] {
		out.Write(raw[at:r.start])
		out.WriteString(path.Base(hashed[r.target]))
		at = r.end
	}
	out.Write(raw[at:])
	return out.Bytes()
}
