// Package s3local serves an S3-compatible API from a local directory.
//
// `prism dev` and the tests of every module use it so that blob storage is
// exercised through the real aws-sdk-go-v2 client (signing, multipart,
// ranges, SSE headers) without AWS credentials or network access. Data is
// kept under Options.Dir and survives restarts.
//
// It is built on gofakes3 with its s3afero backend: every object is a
// plain file under Dir/buckets (metadata as JSON under Dir/metadata), so
// uploads stream to disk instead of being held in memory as the bbolt
// backend does, no extra dependency is needed, and the data can be
// inspected with ordinary tools. Uploads are spooled to Dir/tmp first so an
// interrupted upload never replaces an object with a truncated one.
// Multipart uploads in progress are kept in memory by gofakes3 (parts
// included) and are lost on restart; completed objects are not.
package s3local

import (
	"context"
	"errors"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3afero"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/spf13/afero"
)

// Options configures the server.
type Options struct {
	// Dir holds buckets and object metadata. Required; created if missing.
	Dir string
	// Addr is the TCP address to listen on; "" means "127.0.0.1:0" (a free
	// loopback port, see URL).
	Addr string
	// Buckets are created at start if they do not exist yet.
	Buckets []string
	// RequireSSE rejects object writes (PutObject, CopyObject,
	// CreateMultipartUpload) that do not request server-side encryption,
	// mirroring the bucket policy used in production so a code path that
	// forgets SSE fails in tests rather than in AWS.
	RequireSSE bool
	// Memory keeps objects in memory instead of under Dir: for benchmarks
	// that measure the pipeline rather than this stand-in's disk work (a
	// real S3 is not on this machine). Nothing survives a restart.
	Memory bool
}

// Server is a running local S3 endpoint.
type Server struct {
	http *http.Server
	ln   net.Listener
	done chan error // receives the result of Serve

	closeOnce sync.Once
	closeErr  error
}

// Start opens the store under opts.Dir, creates opts.Buckets and serves the
// S3 API until Close. ctx bounds only the start-up.
func Start(ctx context.Context, opts Options) (*Server, error) {
	if opts.Dir == "" {
		return nil, errors.New("s3local: Options.Dir (data directory) is required")
	}
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("s3local: resolve data directory %q: %w", opts.Dir, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("s3local: create data directory: %w", err)
	}
	var backend gofakes3.Backend
	if opts.Memory {
		backend = s3mem.New()
	} else {
		// BasePathFs confines the backend to dir; s3afero refuses a bare
		// OsFs for exactly that reason.
		b, err := s3afero.MultiBucket(afero.NewBasePathFs(afero.NewOsFs(), dir))
		if err != nil {
			return nil, fmt.Errorf("s3local: open store in %s: %w", dir, err)
		}
		backend = &spoolBackend{Backend: b, tmpDir: filepath.Join(dir, "tmp")}
	}
	for _, b := range opts.Buckets {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("s3local: start: %w", err)
		}
		if err := gofakes3.ValidateBucketName(b); err != nil {
			return nil, fmt.Errorf("s3local: bucket name %q: %w", b, err)
		}
		if err := backend.CreateBucket(b); err != nil && !gofakes3.IsAlreadyExists(err) {
			return nil, fmt.Errorf("s3local: create bucket %q: %w", b, err)
		}
	}
	tmpDir := filepath.Join(dir, "tmp")
	// Leftovers are uploads interrupted by a crash; nothing refers to them.
	if err := os.RemoveAll(tmpDir); err != nil {
		return nil, fmt.Errorf("s3local: clean upload spool: %w", err)
	}
	if err := os.MkdirAll(tmpDir, 0o700); err != nil {
		return nil, fmt.Errorf("s3local: create upload spool: %w", err)
	}
	faker := gofakes3.New(backend,
		// Buckets must be created explicitly, as on AWS, so a typo in
		// S3_BUCKET fails in dev too.
		gofakes3.WithAutoBucket(false),
	)

	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("s3local: listen on %s: %w", opts.Addr, err)
	}
	s := &Server{
		http: &http.Server{
			Handler:           handler(faker.Server(), opts),
			ReadHeaderTimeout: 10 * time.Second,
		},
		ln:   ln,
		done: make(chan error, 1),
	}
	go func() { s.done <- s.http.Serve(ln) }()
	return s, nil
}

// handler wraps gofakes3 with the request checks and rewriting s3local
// adds.
func handler(h http.Handler, opts Options) http.Handler {
	h = decodeAWSChunked(h)
	if opts.RequireSSE {
		h = requireSSE(h)
	}
	return rejectUnmappableKeys(h)
}

// rejectUnmappableKeys refuses keys that the file-per-object backend
// cannot store faithfully: s3afero cleans paths, so "a/../b" would land in
// "b" (even in another bucket) and "a//b" or "dir/" would alias other
// keys. S3 accepts such keys; failing loudly beats silently aliasing.
func rejectUnmappableKeys(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, key, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
		if key != "" && path.Clean("/"+key) != "/"+key {
			writeError(w, http.StatusBadRequest, "InvalidArgument",
				"s3local: keys with empty, '.' or '..' segments or a trailing '/' are not supported")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?>`+
		`<Error><Code>`+code+`</Code><Message>`+html.EscapeString(msg)+`</Message></Error>`)
}

// requireSSE answers 403 AccessDenied, as an AWS bucket policy would, to
// object writes without an SSE header. Parts of a multipart upload carry
// no SSE header on AWS either; the upload's creation request does.
func requireSSE(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isObjectWrite(r) &&
			r.Header.Get("X-Amz-Server-Side-Encryption") == "" &&
			r.Header.Get("X-Amz-Server-Side-Encryption-Customer-Algorithm") == "" {
			writeError(w, http.StatusForbidden, "AccessDenied",
				"s3local: server-side encryption is required (set x-amz-server-side-encryption)")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// isObjectWrite reports PutObject/CopyObject (PUT /bucket/key with no
// subresource) and CreateMultipartUpload (POST /bucket/key?uploads).
func isObjectWrite(r *http.Request) bool {
	bucket, key, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	if bucket == "" || key == "" {
		return false
	}
	q := r.URL.Query()
	switch r.Method {
	case http.MethodPost:
		return q.Has("uploads")
	case http.MethodPut:
		q.Del("x-id") // aws-sdk-go-v2 tags operations with ?x-id=PutObject
		return len(q) == 0
	}
	return false
}

// URL is the endpoint to configure in S3 clients (path-style addressing).
func (s *Server) URL() string {
	return "http://" + s.ln.Addr().String()
}

// Close stops accepting requests and waits for in-flight ones until ctx is
// done, then closes remaining connections. Later calls return the first
// result.
func (s *Server) Close(ctx context.Context) error {
	s.closeOnce.Do(func() { s.closeErr = s.close(ctx) })
	return s.closeErr
}

func (s *Server) close(ctx context.Context) error {
	err := s.http.Shutdown(ctx)
	if err != nil {
		_ = s.http.Close()
	}
	if serr := <-s.done; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		return fmt.Errorf("s3local: serve: %w", serr)
	}
	if err != nil {
		return fmt.Errorf("s3local: shutdown: %w", err)
	}
	return nil
}
