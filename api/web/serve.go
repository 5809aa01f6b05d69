package web

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"strconv"
	"strings"
	"sync"

	"github.com/andybalholm/brotli"
	"github.com/gofiber/fiber/v2"
)

// cacheForever is the caching of a hashed file: its name changes with its
// content, so no cache ever needs to ask again.
const cacheForever = "public, max-age=31536000, immutable"

// Content codings, in the order preferred when a client accepts several
// equally.
type coding int

const (
	brotliCoding coding = iota
	gzipCoding
	identity
	codings
)

var codingNames = [codings]string{"br", "gzip", "identity"}

// file is one answer, in every coding worth sending.
type file struct {
	contentType  string
	cacheControl string
	tag          string          // names the content: hex of the first 12 bytes of its SHA-256
	bodies       [codings][]byte // nil: not sent in that coding (no smaller than identity)
}

// newFile compresses body once, at start, so no request pays for it.
func newFile(body []byte, contentType, cacheControl string) *file {
	sum := sha256.Sum256(body)
	f := &file{contentType: contentType, cacheControl: cacheControl, tag: hex.EncodeToString(sum[:12])}
	f.bodies[identity] = body
	for _, c := range []coding{brotliCoding, gzipCoding} {
		if z := compressOnce(sum, body, c); len(z) < len(body) {
			f.bodies[c] = z
		}
	}
	return f
}

// compressedKey names a compressed body by its content and coding.
type compressedKey struct {
	sum [sha256.Size]byte
	c   coding
}

// compressed holds every body compressed in this process, by content. The
// assets are the binary's own and never change, but each Site (each api
// server a test starts, several per test) compressed them all again at
// brotli's best level: seconds per server under the race detector.
var compressed sync.Map // compressedKey -> []byte

// compressOnce is compress(body, c), computed once per content in a
// process.
func compressOnce(sum [sha256.Size]byte, body []byte, c coding) []byte {
	k := compressedKey{sum: sum, c: c}
	if z, ok := compressed.Load(k); ok {
		return z.([]byte)
	}
	z, _ := compressed.LoadOrStore(k, compress(body, c))
	return z.([]byte)
}

func compress(body []byte, c coding) []byte {
	var buf bytes.Buffer
	var w io.WriteCloser
	if c == gzipCoding {
		w, _ = gzip.NewWriterLevel(&buf, gzip.BestCompression) // a valid level: no error
	} else {
		w = brotli.NewWriterLevel(&buf, brotli.BestCompression)
	}
	// Writing to a bytes.Buffer does not fail.
	_, _ = w.Write(body)
	_ = w.Close()
	return buf.Bytes()
}

// etag is a strong validator per coding: each coding is a representation
// of its own (RFC 9110 8.8.3).
func (f *file) etag(c coding) string {
	if c == identity {
		return `"` + f.tag + `"`
	}
	return `"` + f.tag + "-" + codingNames[c] + `"`
}

// serve answers with f in the coding the client prefers among those it
// accepts, or 304 when the client holds it already (in any coding: a
// conditional GET compares weakly).
func (f *file) serve(c *fiber.Ctx) error {
	enc := f.negotiate(c.Get(fiber.HeaderAcceptEncoding))
	h := &c.Response().Header
	h.Set(fiber.HeaderVary, fiber.HeaderAcceptEncoding)
	h.Set(fiber.HeaderCacheControl, f.cacheControl)
	h.Set(fiber.HeaderETag, f.etag(enc))
	if f.held(c.Get(fiber.HeaderIfNoneMatch)) {
		c.Status(fiber.StatusNotModified)
		return nil
	}
	h.Set(fiber.HeaderContentType, f.contentType)
	if enc != identity {
		h.Set(fiber.HeaderContentEncoding, codingNames[enc])
	}
	return c.Send(f.bodies[enc])
}

// negotiate picks the coding of the answer from Accept-Encoding (RFC 9110
// 12.5.3): the highest quality among the codings f has, brotli before gzip
// before identity on a tie. Identity is acceptable unless refused by name
// or by "*;q=0"; when nothing is acceptable, identity is sent all the same
// rather than a 406 a browser would show as an error.
func (f *file) negotiate(header string) coding {
	var q [codings]float64
	q[identity] = 1
	named := [codings]bool{}
	star := -1.0
	for item := range strings.SplitSeq(header, ",") {
		name, params, _ := strings.Cut(item, ";")
		name = strings.ToLower(strings.TrimSpace(name))
		weight := 1.0
		if v, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			if w, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil && w >= 0 && w <= 1 {
				weight = w
			}
		}
		if name == "*" {
			star = weight
			continue
		}
		for c, n := range codingNames {
			if n == name {
				q[c], named[c] = weight, true
			}
		}
	}
	if star >= 0 {
		for c := range q {
			if !named[c] {
				q[c] = star
			}
		}
	}
	best, bestQ := identity, 0.0
	for c := range coding(codings) { // in order of preference: a tie keeps the earlier
		if f.bodies[c] != nil && q[c] > bestQ {
			best, bestQ = c, q[c]
		}
	}
	return best
}

// held reports whether If-None-Match names f in any coding.
func (f *file) held(header string) bool {
	for tag := range strings.SplitSeq(header, ",") {
		tag = strings.TrimPrefix(strings.TrimSpace(tag), "W/")
		if tag == "*" {
			return true
		}
		for c := range coding(codings) {
			if f.bodies[c] != nil && tag == f.etag(c) {
				return true
			}
		}
	}
	return false
}

// Asset answers GET AssetsPath+name with the file of that hashed name.
// Files are public and the same for everyone: any origin may load them,
// which a CDN on another origin needs, since browsers fetch module scripts
// with CORS.
func (s *Site) Asset(c *fiber.Ctx) error {
	f, ok := s.byName[strings.TrimPrefix(c.Path(), AssetsPath)]
	if !ok {
		return fiber.ErrNotFound
	}
	c.Set(fiber.HeaderAccessControlAllowOrigin, "*")
	return f.serve(c)
}

// Page answers with the application's shell, whichever client route was
// asked for: the application reads the route from the URL. It is never
// used from a cache without asking (no-cache; its ETag makes asking
// cheap), so a deploy reaches every page at once, and its policy lets it
// run its own files and nothing else.
func (s *Site) Page(c *fiber.Ctx) error {
	c.Set(fiber.HeaderContentSecurityPolicy, s.csp)
	return s.shell.serve(c)
}

// IsPage reports whether path is one of the application's pages, a
// client route the shell resolves: not the API's (/api and under it), not
// under AssetsPath, and not a file's name (its last segment has a dot),
// which would otherwise be answered with HTML when the file is missing.
func IsPage(path string) bool {
	lower := strings.ToLower(path)
	switch {
	case lower == "/api" || strings.HasPrefix(lower, "/api/"), strings.HasPrefix(lower, AssetsPath):
		return false
	}
	return !strings.Contains(path[strings.LastIndex(path, "/")+1:], ".")
}
