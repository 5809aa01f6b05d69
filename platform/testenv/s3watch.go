package testenv

import (
	"encoding/xml"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/aiprism/prism/platform/blob"
)

// S3Watch is a local S3 endpoint (as S3Config starts) seen through a proxy
// that records every request and can answer chosen keys with an error, as
// a real S3 endpoint would: tests see which objects a stage read, and how
// it copes with S3 failing.
type S3Watch struct {
	// Config reaches the endpoint through the proxy.
	Config blob.Config

	mu    sync.Mutex
	seen  []S3Request
	fails map[string]S3Error
}

// S3Request is one request the endpoint received.
type S3Request struct {
	Method string
	Key    string // the object key, "" for requests about the bucket
}

// S3Error is an error answer of S3: an HTTP status and the Code and
// Message of its XML body.
type S3Error struct {
	Status  int
	Code    string
	Message string
}

// S3Watched starts a local S3 endpoint behind a recording proxy. Both stop
// when the test ends.
func S3Watched(t testing.TB) *S3Watch {
	t.Helper()
	srv := serveS3(t)
	target, err := url.Parse(srv.URL())
	if err != nil {
		t.Fatalf("testenv: S3 endpoint %q: %v", srv.URL(), err)
	}
	w := &S3Watch{fails: map[string]S3Error{}}
	proxy := httputil.NewSingleHostReverseProxy(target)
	front := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		key := strings.TrimPrefix(strings.TrimPrefix(r.URL.Path, "/"+TestBucket), "/")
		w.mu.Lock()
		w.seen = append(w.seen, S3Request{Method: r.Method, Key: key})
		fail, failing := w.fails[key]
		w.mu.Unlock()
		if failing {
			writeS3Error(rw, r, fail)
			return
		}
		proxy.ServeHTTP(rw, r)
	}))
	t.Cleanup(front.Close)
	w.Config = S3ConfigAt(front.URL)
	return w
}

// Store returns a blob.Store on the watched endpoint.
func (w *S3Watch) Store(t testing.TB) *blob.Store {
	t.Helper()
	return storeAt(t, w.Config)
}

// Count is how many requests with method (e.g. GET, HEAD, DELETE) named
// key so far.
func (w *S3Watch) Count(method, key string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, r := range w.seen {
		if r.Method == method && r.Key == key {
			n++
		}
	}
	return n
}

// Fail makes every request for key answer e from now on.
func (w *S3Watch) Fail(key string, e S3Error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.fails[key] = e
}

// writeS3Error answers as S3 does: the status, and for requests that may
// have a body the XML error document the SDK reads Code and Message from.
func writeS3Error(rw http.ResponseWriter, r *http.Request, e S3Error) {
	body, _ := xml.Marshal(struct {
		XMLName   xml.Name `xml:"Error"`
		Code      string
		Message   string
		Resource  string
		RequestID string `xml:"RequestId"`
	}{Code: e.Code, Message: e.Message, Resource: r.URL.Path, RequestID: "testenv-s3watch"})
	rw.Header().Set("Content-Type", "application/xml")
	rw.Header().Set("X-Amz-Request-Id", "testenv-s3watch")
	rw.WriteHeader(e.Status)
	if r.Method != http.MethodHead {
		_, _ = rw.Write(append([]byte(xml.Header), body...))
	}
}
