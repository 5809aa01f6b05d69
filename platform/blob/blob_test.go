package blob_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aiprism/prism/platform/blob"
	"github.com/aiprism/prism/platform/s3local"
	"github.com/aiprism/prism/platform/testenv"
)

const bucket = "prism-docs"

// wire records the requests a Store sends, through a proxy in front of
// s3local, so tests can assert on headers as they appear on the wire.
type wire struct {
	mu   sync.Mutex
	reqs []*http.Request // clones without bodies
}

func (w *wire) writes() []*http.Request {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []*http.Request
	for _, r := range w.reqs {
		q := r.URL.Query()
		q.Del("x-id")
		if (r.Method == http.MethodPut && len(q) == 0) || (r.Method == http.MethodPost && q.Has("uploads")) {
			out = append(out, r)
		}
	}
	return out
}

// server is an S3 server the Store's tests run against: what they check
// depends on the server (encryption reported, multipart uploads, failed
// uploads leaving nothing), so each runs on ours and on a real one.
type server struct {
	name  string
	start func(t *testing.T) (endpoint, bucket string)
}

// s3Local is our stand-in, run in make test; seaweedFS is a real S3 server,
// run by make test-real-s3 (its first build takes minutes: see
// scripts/build-weed.sh).
var (
	s3Local = server{"s3local", func(t *testing.T) (string, string) {
		srv, err := s3local.Start(t.Context(), s3local.Options{Dir: t.TempDir(), Buckets: []string{bucket}, RequireSSE: true})
		if err != nil {
			t.Fatalf("s3local: %v", err)
		}
		t.Cleanup(func() { _ = srv.Close(context.Background()) })
		return srv.URL(), bucket
	}}
	seaweedFS = server{"seaweedfs", func(t *testing.T) (string, string) {
		cfg := testenv.WeedS3Config(t)
		return cfg.Endpoint, cfg.Bucket
	}}
)

// onServer starts srv and runs every case on it as a subtest, each with a
// Store of its own behind a recording proxy.
func onServer(t *testing.T, srv server, cases []storeCase) {
	endpoint, bucket := srv.start(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st, rec := storeAt(t, endpoint, bucket)
			c.run(t, st, rec)
		})
	}
}

type storeCase struct {
	name string
	run  func(t *testing.T, st *blob.Store, rec *wire)
}

// serverCases are the Store's behaviour that rests on the server.
var serverCases = []storeCase{
	{"put get head delete", putGetHeadDelete},
	{"large multipart", largeMultipart},
	{"put rejects wrong size", putRejectsWrongSize},
	{"put small shapes", putSmallShapes},
}

// TestStoreOnS3Local: the server-dependent cases on our stand-in.
func TestStoreOnS3Local(t *testing.T) { onServer(t, s3Local, serverCases) }

// TestRealS3Store: the same cases on SeaweedFS, a real S3 server.
func TestRealS3Store(t *testing.T) { onServer(t, seaweedFS, serverCases) }

// storeAt is a Store on bucket at endpoint, through a proxy that records
// the requests.
func storeAt(t *testing.T, endpoint, bucket string) (*blob.Store, *wire) {
	t.Helper()
	target, _ := url.Parse(endpoint)
	rec := &wire{}
	proxy := httputil.NewSingleHostReverseProxy(target)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.mu.Lock()
		rec.reqs = append(rec.reqs, r.Clone(context.Background()))
		rec.mu.Unlock()
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)

	st, err := blob.New(t.Context(), blob.Config{
		Endpoint: front.URL, Region: "us-east-1", Bucket: bucket,
		AccessKeyID: "test", SecretAccessKey: "test", UsePathStyle: true,
	})
	if err != nil {
		t.Fatalf("new store: %v", err)
	}
	return st, rec
}

func readAll(t *testing.T, rc io.ReadCloser) []byte {
	t.Helper()
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return b
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func putGetHeadDelete(t *testing.T, st *blob.Store, rec *wire) {
	ctx := t.Context()
	if err := st.Ping(ctx); err != nil {
		t.Fatalf("ping: %v", err)
	}
	data := []byte("The quick brown fox jumps over the lazy dog")
	key := blob.Key("alice", "doc-1", "fox.txt", time.Date(2025, 3, 4, 23, 0, 0, 0, time.UTC))

	res, err := st.Put(ctx, key, bytes.NewReader(data), int64(len(data)), "text/plain")
	if err != nil {
		t.Fatalf("put: %v", err)
	}
	if res.Key != key || res.Size != int64(len(data)) || res.SHA256 != sum(data) || res.ETag == "" {
		t.Fatalf("put result = %+v", res)
	}

	rc, info, err := st.Get(ctx, key)
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	if got := readAll(t, rc); !bytes.Equal(got, data) {
		t.Fatalf("get body = %q", got)
	}
	if info.Size != int64(len(data)) || info.ContentType != "text/plain" || info.SSE != blob.SSEAES256 || info.ETag != res.ETag {
		t.Errorf("get info = %+v", info)
	}

	rc, info, err = st.GetRange(ctx, key, 4, 5)
	if err != nil {
		t.Fatalf("get range: %v", err)
	}
	if got := readAll(t, rc); string(got) != "quick" {
		t.Errorf("range body = %q, want quick", got)
	}
	if info.Size != int64(len(data)) {
		t.Errorf("range info size = %d, want whole object %d", info.Size, len(data))
	}
	rc, _, err = st.GetRange(ctx, key, int64(len(data))-3, 100)
	if err != nil {
		t.Fatalf("get range past end: %v", err)
	}
	if got := readAll(t, rc); string(got) != "dog" {
		t.Errorf("range past end = %q, want dog", got)
	}
	if _, _, err := st.GetRange(ctx, key, -1, 5); err == nil {
		t.Error("negative offset accepted")
	}

	head, err := st.Head(ctx, key)
	if err != nil {
		t.Fatalf("head: %v", err)
	}
	if head.Size != int64(len(data)) || head.SSE != blob.SSEAES256 || head.LastModified.IsZero() {
		t.Errorf("head = %+v", head)
	}

	if err := st.Delete(ctx, key); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if err := st.Delete(ctx, key); err != nil {
		t.Fatalf("second delete: %v", err)
	}
	if _, err := st.Head(ctx, key); !errors.Is(err, blob.ErrNotFound) {
		t.Errorf("head after delete: err = %v, want ErrNotFound", err)
	}
	if _, _, err := st.Get(ctx, key); !errors.Is(err, blob.ErrNotFound) {
		t.Errorf("get after delete: err = %v, want ErrNotFound", err)
	}
	if _, _, err := st.GetRange(ctx, "missing", 0, 1); !errors.Is(err, blob.ErrNotFound) {
		t.Errorf("get range of missing: err = %v, want ErrNotFound", err)
	}

	writes := rec.writes()
	if len(writes) != 1 {
		t.Fatalf("saw %d object writes, want 1", len(writes))
	}
	if got := writes[0].Header.Get("X-Amz-Server-Side-Encryption"); got != "AES256" {
		t.Errorf("x-amz-server-side-encryption on the wire = %q, want AES256", got)
	}
	if writes[0].Header.Get("X-Amz-Checksum-Sha256") == "" {
		t.Error("single-part put did not send its SHA-256 for S3 to verify")
	}
}

func largeMultipart(t *testing.T, st *blob.Store, rec *wire) {
	ctx := t.Context()
	data := make([]byte, 20<<20)
	rng := rand.NewChaCha8([32]byte{1})
	_, _ = rng.Read(data)

	for _, tc := range []struct {
		name string
		size int64
		body io.Reader
	}{
		{"known size", int64(len(data)), bytes.NewReader(data)},
		{"unknown size", -1, io.MultiReader(bytes.NewReader(data))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := "big/" + strings.ReplaceAll(tc.name, " ", "-")
			res, err := st.Put(ctx, key, tc.body, tc.size, "application/pdf")
			if err != nil {
				t.Fatalf("put: %v", err)
			}
			if res.Size != int64(len(data)) || res.SHA256 != sum(data) {
				t.Fatalf("put result size %d sha %s, want %d %s", res.Size, res.SHA256, len(data), sum(data))
			}
			rc, info, err := st.Get(ctx, key)
			if err != nil {
				t.Fatalf("get: %v", err)
			}
			if got := readAll(t, rc); sum(got) != sum(data) {
				t.Fatalf("stored object differs (%d bytes)", len(got))
			}
			if info.SSE != blob.SSEAES256 || info.ContentType != "application/pdf" {
				t.Errorf("info = %+v", info)
			}
		})
	}
	writes := rec.writes()
	if len(writes) != 2 {
		t.Fatalf("saw %d object writes, want 2 multipart creations", len(writes))
	}
	for _, w := range writes {
		if w.Method != http.MethodPost || !w.URL.Query().Has("uploads") {
			t.Errorf("20 MiB upload used %s %s, want CreateMultipartUpload", w.Method, w.URL)
		}
		if got := w.Header.Get("X-Amz-Server-Side-Encryption"); got != "AES256" {
			t.Errorf("multipart SSE header = %q, want AES256", got)
		}
	}
}

func putRejectsWrongSize(t *testing.T, st *blob.Store, _ *wire) {
	ctx := t.Context()
	for _, tc := range []struct {
		name string
		body []byte
		size int64
	}{
		{"short", []byte("abc"), 4},
		{"long", []byte("abcde"), 4},
		{"long large", make([]byte, 9<<20), 8<<20 + 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := "size/" + strings.ReplaceAll(tc.name, " ", "-")
			if _, err := st.Put(ctx, key, bytes.NewReader(tc.body), tc.size, ""); err == nil {
				t.Fatal("put with wrong size succeeded")
			}
			if _, err := st.Head(ctx, key); !errors.Is(err, blob.ErrNotFound) {
				t.Fatalf("head after failed put: %v, want ErrNotFound", err)
			}
		})
	}
	if _, err := st.Put(ctx, "", strings.NewReader("x"), 1, ""); err == nil {
		t.Error("empty key accepted")
	}
}

func TestEnsureBucket(t *testing.T) {
	srv, err := s3local.Start(t.Context(), s3local.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatalf("s3local: %v", err)
	}
	defer srv.Close(context.Background())
	st, err := blob.New(t.Context(), blob.Config{
		Endpoint: srv.URL(), Region: "us-east-1", Bucket: "fresh-bucket",
		AccessKeyID: "k", SecretAccessKey: "s", UsePathStyle: true,
	})
	if err != nil {
		t.Fatalf("new: %v", err)
	}
	if err := st.Ping(t.Context()); err == nil {
		t.Fatal("ping of a missing bucket succeeded")
	}
	for range 2 { // idempotent
		if err := st.EnsureBucket(t.Context()); err != nil {
			t.Fatalf("ensure bucket: %v", err)
		}
	}
	if err := st.Ping(t.Context()); err != nil {
		t.Fatalf("ping after ensure: %v", err)
	}
}

func putSmallShapes(t *testing.T, st *blob.Store, _ *wire) {
	ctx := t.Context()
	for _, tc := range []struct {
		name string
		data string
		size int64
	}{
		{"empty known", "", 0},
		{"empty unknown", "", -1},
		{"small unknown", "hello", -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := "shapes/" + strings.ReplaceAll(tc.name, " ", "-")
			res, err := st.Put(ctx, key, io.MultiReader(strings.NewReader(tc.data)), tc.size, "")
			if err != nil {
				t.Fatalf("put: %v", err)
			}
			if res.Size != int64(len(tc.data)) || res.SHA256 != sum([]byte(tc.data)) {
				t.Fatalf("put result = %+v", res)
			}
			rc, info, err := st.Get(ctx, key)
			if err != nil {
				t.Fatalf("get: %v", err)
			}
			if got := readAll(t, rc); string(got) != tc.data || info.ContentType != "application/octet-stream" {
				t.Fatalf("got %q, info %+v", got, info)
			}
		})
	}
}
