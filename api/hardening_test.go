package api_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aiprism/prism/api"
	"github.com/aiprism/prism/ingest"
	"github.com/aiprism/prism/persist/store"
	"github.com/aiprism/prism/platform/config"
	"github.com/aiprism/prism/platform/obs"
	"github.com/aiprism/prism/streams"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	"github.com/gofiber/fiber/v2"
	"github.com/rs/zerolog"
)

// bucketContents lists what the env's bucket holds: the keys of its
// objects and of the multipart uploads still open in it.
func (e *env) bucketContents() (keys []string) {
	e.t.Helper()
	ctx := context.Background()
	client := s3.New(s3.Options{
		Region: e.s3.Region, BaseEndpoint: aws.String(e.s3.Endpoint), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(e.s3.AccessKeyID, e.s3.SecretAccessKey, ""),
	})
	objects, err := client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(e.s3.Bucket)})
	if err != nil {
		e.t.Fatalf("list the bucket: %v", err)
	}
	for _, o := range objects.Contents {
		keys = append(keys, aws.ToString(o.Key))
	}
	uploads, err := client.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(e.s3.Bucket)})
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorCode() == "NoSuchUpload" {
		return keys // how the local store says there are none
	}
	if err != nil {
		e.t.Fatalf("list the bucket's multipart uploads: %v", err)
	}
	for _, u := range uploads.Uploads {
		keys = append(keys, "open upload: "+aws.ToString(u.Key))
	}
	return keys
}

// docsEvents counts the events the DOCS stream holds.
func (e *env) docsEvents() uint64 {
	e.t.Helper()
	stream, err := e.js.Stream(context.Background(), streams.DocsStream)
	if err != nil {
		e.t.Fatal(err)
	}
	info, err := stream.Info(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return info.State.Msgs
}

// TestUploadOverTheLimitIsRefusedWhileStreaming: the API's limit (10 MiB)
// binds below ingest's (1 GiB), for a 64 MiB upload sent chunked and one
// that declares its length: 413 problem+json naming the limit, no object
// (nor open multipart upload) in the bucket, no event, and a heap that
// grew by about one S3 part, not by the upload. The object store runs in
// its own process so the heap is the API's.
func TestUploadOverTheLimitIsRefusedWhileStreaming(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 64 MiB through HTTP")
	}
	const size = 64 << 20
	e := newEnv(t, withAPI(func(c *api.Config) { c.MaxUploadBytes = 10 << 20 }), withUploadLimit(1<<30), withS3InOwnProcess())
	for _, chunked := range []bool{true, false} {
		t.Run(fmt.Sprintf("chunked=%v", chunked), func(t *testing.T) {
			body, contentType, _ := generatedUpload(t, "huge.bin", size)
			length := body.Size()
			if chunked {
				length = -1
			}
			r, growth := e.streamUpload(t, body, length, contentType)
			p := r.problem(t, http.StatusRequestEntityTooLarge, "too-large")
			if !strings.Contains(p.Detail, "10 MiB") {
				t.Fatalf("detail %q does not name the limit", p.Detail)
			}
			t.Logf("refused %d MiB upload: peak heap growth %.1f MiB", size>>20, float64(growth)/(1<<20))
			if growth > 16<<20 {
				t.Errorf("heap grew by %.1f MiB while refusing a %d MiB upload", float64(growth)/(1<<20), size>>20)
			}
			if keys := e.bucketContents(); len(keys) > 0 {
				t.Errorf("the refused upload left %v in the bucket", keys)
			}
			if n := e.docsEvents(); n != 0 {
				t.Errorf("the refused upload left %d events on DOCS", n)
			}
		})
	}
}

// TestARefusedUploadGetsItsAnswer: the server stops reading an upload
// over the limit while the client is still sending it. Closing the socket
// then (with unread data: a reset) loses the 413 for Go's client about
// one time in three ("connection reset by peer" instead); lingering
// after the answer makes every client read it.
func TestARefusedUploadGetsItsAnswer(t *testing.T) {
	e := newEnv(t, withAPI(func(c *api.Config) { c.MaxUploadBytes = 1 << 20 }), withUploadLimit(1<<30))
	for range 30 {
		body, ct, _ := generatedUpload(t, "big.bin", 4<<20)
		r, _ := e.streamUpload(t, body, -1, ct) // fails the test on "connection reset by peer"
		r.problem(t, http.StatusRequestEntityTooLarge, "too-large")
	}
}

// form builds a multipart body: the fields given (name, value, ...), then
// a file.
func form(file []byte, fields ...string) (*bytes.Buffer, string) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for i := 0; i+1 < len(fields); i += 2 {
		_ = mw.WriteField(fields[i], fields[i+1])
	}
	fw, _ := mw.CreateFormFile("file", "contract.txt")
	_, _ = fw.Write(file)
	_ = mw.Close()
	return &buf, mw.FormDataContentType()
}

// TestFormFieldsBesidesTheFileAreBounded: a few small fields around the
// file are accepted (and ignored); 1 MiB in one field, or 17 fields, is
// 413 and stores nothing.
func TestFormFieldsBesidesTheFileAreBounded(t *testing.T) {
	e := newEnv(t)
	doc := []byte("The supplier accepts unlimited liability.")
	post := func(body *bytes.Buffer, ct string) response {
		return e.do(http.MethodPost, "/api/v1/documents", alice, body, "Content-Type", ct)
	}
	body, ct := form(doc, "title", "Supply agreement", "department", "legal", "note", strings.Repeat("n", 40<<10))
	expect(t, post(body, ct), http.StatusAccepted)
	objects, events := len(e.bucketContents()), e.docsEvents()

	body, ct = form(doc, "note", strings.Repeat("n", 1<<20))
	post(body, ct).problem(t, http.StatusRequestEntityTooLarge, "too-large")
	var many []string
	for i := range 17 {
		many = append(many, "field"+strconv.Itoa(i), "x")
	}
	body, ct = form(doc, many...)
	post(body, ct).problem(t, http.StatusRequestEntityTooLarge, "too-large")
	if o, ev := len(e.bucketContents()), e.docsEvents(); o != objects || ev != events {
		t.Fatalf("refused forms stored something: %d objects (was %d), %d events (was %d)", o, objects, ev, events)
	}
}

// TestRequestBodiesAreCapped: a handler reading its body with c.Body()
// gets at most 1 MiB, whether the body declares its length or is sent
// chunked; beyond that the request is refused before the handler runs.
// (fasthttp streams bodies for uploads, and c.Body() would read a streamed
// body of any size into memory.)
func TestRequestBodiesAreCapped(t *testing.T) {
	e := newEnv(t)
	srv := api.New(api.Config{Auth: api.AuthToken, MaxUploadBytes: 10 << 20}, api.Deps{
		NC: nil, JS: e.js, Pool: e.pool, Documents: store.New(e.pool), Blobs: e.blobs,
		Ingest:   ingest.NewService(e.blobs, streams.NewPublisher(e.js, api.Source), 10<<20),
		Registry: obs.NewRegistry(), Log: zerolog.Nop(),
	})
	srv.App().Post("/echo-length", func(c *fiber.Ctx) error { return c.SendString(strconv.Itoa(len(c.Body()))) })
	for _, c := range []struct {
		size    int
		chunked bool
		status  int
	}{{1 << 20, false, http.StatusOK}, {1 << 20, true, http.StatusOK}, {4 << 20, false, http.StatusRequestEntityTooLarge}, {4 << 20, true, http.StatusRequestEntityTooLarge}} {
		req := httptest.NewRequest(http.MethodPost, "/echo-length", bytes.NewReader(bytes.Repeat([]byte("x"), c.size)))
		if c.chunked {
			req.ContentLength, req.TransferEncoding = -1, []string{"chunked"}
		}
		resp, err := srv.App().Test(req, 10_000)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.status || (c.status == http.StatusOK && string(raw) != strconv.Itoa(c.size)) {
			t.Errorf("%d bytes, chunked %v: %d %s, want %d", c.size, c.chunked, resp.StatusCode, raw, c.status)
		}
	}
}

// readUntilClosed reads conn until the server closes it and returns how
// long that took (or fails after limit).
func readUntilClosed(t *testing.T, conn net.Conn, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	_ = conn.SetReadDeadline(start.Add(limit))
	_, err := io.Copy(io.Discard, conn)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("the server kept the connection open for %v", limit)
	}
	return time.Since(start)
}

// TestSlowClientsAreDropped: the header timeout (1 s here, the body's 4
// s) drops a client that sends its request line and headers slowly, or
// never finishes them, and a kept-alive connection that sends nothing is
// closed after the idle timeout; a slow body is not cut by the header
// timeout but a stalled one is by the read timeout (408), and an SSE
// stream is not cut by the write timeout.
func TestSlowClientsAreDropped(t *testing.T) {
	e := newEnv(t, withAPI(func(c *api.Config) {
		c.HeaderTimeout, c.ReadTimeout = time.Second, 4*time.Second
		c.IdleTimeout, c.WriteTimeout = 1500*time.Millisecond, time.Second
		c.SSEHeartbeat = 200 * time.Millisecond
	}))
	addr := strings.TrimPrefix(e.url, "http://")
	dial := func(t *testing.T) net.Conn {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return conn
	}

	t.Run("slow headers", func(t *testing.T) {
		conn := dial(t)
		if _, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\n"); err != nil {
			t.Fatal(err)
		}
		// One more header byte every 100 ms: never idle, never done.
		go func() {
			for range 100 {
				time.Sleep(100 * time.Millisecond)
				if _, err := io.WriteString(conn, "X"); err != nil {
					return
				}
			}
		}()
		if took := readUntilClosed(t, conn, 10*time.Second); took > 3*time.Second {
			t.Fatalf("dropped after %v, want about the header timeout (1s)", took)
		}
	})
	t.Run("a request line never finished", func(t *testing.T) {
		conn := dial(t)
		if _, err := io.WriteString(conn, "GET /heal"); err != nil {
			t.Fatal(err)
		}
		if took := readUntilClosed(t, conn, 10*time.Second); took > 3*time.Second {
			t.Fatalf("dropped after %v, want about the header timeout (1s)", took)
		}
	})
	t.Run("idle keep-alive", func(t *testing.T) {
		conn := dial(t)
		if _, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil || resp.StatusCode != http.StatusOK || resp.Close {
			t.Fatalf("first request: %v %v", resp, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		if took := readUntilClosed(t, conn, 10*time.Second); took > 4*time.Second {
			t.Fatalf("an idle connection was closed after %v, want about the idle timeout (1.5s)", took)
		}
	})
	// upload sends a form in five pieces, pause apart, stopping after
	// the first when stall is set.
	upload := func(t *testing.T, pause time.Duration, stall bool) response {
		full, ct := form([]byte("The supplier accepts unlimited liability."))
		pr, pw := io.Pipe()
		go func() {
			raw := full.Bytes()
			piece := len(raw)/5 + 1
			for i := 0; i < len(raw); i += piece {
				if _, err := pw.Write(raw[i:min(i+piece, len(raw))]); err != nil || stall {
					return
				}
				time.Sleep(pause)
			}
			_ = pw.Close()
		}()
		t.Cleanup(func() { pw.Close() })
		req, _ := http.NewRequest(http.MethodPost, e.url+"/api/v1/documents", pr)
		req.Header.Set("Content-Type", ct)
		req.Header.Set("Authorization", "Bearer "+tokenOf(alice))
		resp, err := e.unchecked.Do(req) // the checking client would read the body before sending it
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return response{resp, raw}
	}
	t.Run("a slow body is read", func(t *testing.T) {
		expect(t, upload(t, 400*time.Millisecond, false), http.StatusAccepted) // 2 s: over the header timeout
	})
	t.Run("a stalled body is refused", func(t *testing.T) {
		start := time.Now()
		upload(t, 0, true).problem(t, http.StatusRequestTimeout, "body-timeout")
		if took := time.Since(start); took > 7*time.Second {
			t.Fatalf("refused after %v, want about the read timeout (4s)", took)
		}
	})
	t.Run("SSE outlives the write timeout", func(t *testing.T) {
		d := e.newDoc(alice, "waiting.txt", []byte("a document that stays uploaded"))
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.url+"/api/v1/documents/"+d.id+"/events", nil)
		req.Header.Set("Authorization", "Bearer "+tokenOf(alice))
		resp, err := e.unchecked.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		start := time.Now()
		var late int // heartbeats after twice the write timeout
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), ": heartbeat") && time.Since(start) > 2*time.Second {
				late++
			}
		}
		if late == 0 {
			t.Fatalf("the stream ended after %v (%v): cut by the write timeout", time.Since(start), sc.Err())
		}
	})
}

// securityHeaders are on every answer.
var securityHeaders = map[string]string{
	"Content-Security-Policy":    "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'; sandbox",
	"X-Content-Type-Options":     "nosniff",
	"X-Frame-Options":            "DENY",
	"Referrer-Policy":            "no-referrer",
	"Cross-Origin-Opener-Policy": "same-origin",
}

func checkSecurityHeaders(t *testing.T, what string, h http.Header, hsts bool) {
	t.Helper()
	for name, want := range securityHeaders {
		if got := h.Get(name); got != want {
			t.Errorf("%s: %s = %q, want %q", what, name, got, want)
		}
	}
	if got := h.Get("Strict-Transport-Security"); (got != "") != hsts {
		t.Errorf("%s: Strict-Transport-Security = %q, want it %s", what, got, map[bool]string{true: "set", false: "absent"}[hsts])
	}
}

// TestSecurityHeadersOnEveryAnswer: every family of route, its successes,
// its refusals, the router's own 404 and 405, streams and downloads, carry
// the security headers; HSTS only over https.
func TestSecurityHeadersOnEveryAnswer(t *testing.T) {
	e := newEnv(t, withUploadLimit(1<<10))
	d := e.analyzed(alice, "headers.txt", "unlimited liability", 70, "high")
	doc := "/api/v1/documents/" + d.id
	big, ct := form(bytes.Repeat([]byte("x"), 4<<10))
	for _, r := range []response{
		e.get("/healthz", ""),
		e.get("/readyz", ""),
		e.get("/metrics", "", "Authorization", "Bearer "+metricsToken),
		e.get("/metrics", ""),
		e.get("/api/v1/openapi.json", ""),
		e.get("/api/v1/documents", ""),
		e.get("/api/v1/documents", alice),
		e.get("/api/v1/documents?limit=nope", alice),
		e.get(doc, alice),
		e.get(doc, bob),
		e.get(doc+"/text", alice),
		e.get(doc+"/original", alice),
		e.get(doc+"/events", alice), // SSE: the stream ends after the outcome
		e.get("/api/v1/assessments/export?format=ndjson", alice),
		e.get("/api/v1/stats", alice),
		e.get("/api/nowhere", ""),
		e.do(http.MethodPut, "/api/v1/documents", alice, nil),
		e.do(http.MethodPost, "/api/v1/documents", alice, big, "Content-Type", ct),
	} {
		checkSecurityHeaders(t, fmt.Sprintf("%s %s (%d)", r.Request.Method, r.Request.URL.Path, r.StatusCode), r.Header, false)
	}
	if r := e.get(doc+"/events", alice); r.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("not an event stream: %s", r.Header.Get("Content-Type"))
	}

	t.Run("HSTS with an https public URL", func(t *testing.T) {
		e := newEnv(t, withAPI(func(c *api.Config) { c.PublicURL = "https://prism.example.com" }))
		checkSecurityHeaders(t, "/healthz", e.get("/healthz", "").Header, true)
		checkSecurityHeaders(t, "404", e.get("/api/nowhere", "").Header, true)
	})
	t.Run("HSTS when a trusted proxy says https", func(t *testing.T) {
		e := newEnv(t, withAPI(func(c *api.Config) { c.TrustedProxies = []string{"127.0.0.0/8"} }))
		checkSecurityHeaders(t, "X-Forwarded-Proto https", e.get("/healthz", "", "X-Forwarded-Proto", "https").Header, true)
		checkSecurityHeaders(t, "X-Forwarded-Proto http", e.get("/healthz", "", "X-Forwarded-Proto", "http").Header, false)
	})
	t.Run("no HSTS when an untrusted client says https", func(t *testing.T) {
		checkSecurityHeaders(t, "X-Forwarded-Proto https", e.get("/healthz", "", "X-Forwarded-Proto", "https").Header, false)
	})
}

// preflight sends a CORS preflight (outside the API description: it is the
// browser's protocol, not an operation).
func (e *env) preflight(t *testing.T, origin string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodOptions, e.url+"/api/v1/documents", nil)
	req.Header.Set("Origin", origin)
	req.Header.Set("Access-Control-Request-Method", http.MethodPost)
	req.Header.Set("Access-Control-Request-Headers", "authorization,content-type")
	resp, err := e.unchecked.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// TestCORS: off by default, no origin is allowed, preflights included;
// configured, exactly the listed origins are, with credentials, and their
// preflights are answered.
func TestCORS(t *testing.T) {
	const app, evil = "https://app.example.com", "https://evil.example.com"
	t.Run("off by default", func(t *testing.T) {
		e := newEnv(t)
		for _, o := range []string{app, evil} {
			r := e.get("/api/v1/documents", alice, "Origin", o)
			expect(t, r, http.StatusOK)
			if got := r.Header.Get("Access-Control-Allow-Origin"); got != "" {
				t.Errorf("origin %s allowed: %q", o, got)
			}
			if p := e.preflight(t, o); p.Header.Get("Access-Control-Allow-Origin") != "" || p.StatusCode < 400 {
				t.Errorf("preflight from %s answered %d %v", o, p.StatusCode, p.Header)
			}
		}
	})
	t.Run("an allow-list", func(t *testing.T) {
		e := newEnv(t, withAPI(func(c *api.Config) { c.CORSOrigins = []string{app, "http://localhost:5173"} }))
		r := e.get("/api/v1/documents", alice, "Origin", app)
		if r.Header.Get("Access-Control-Allow-Origin") != app || r.Header.Get("Access-Control-Allow-Credentials") != "true" ||
			!strings.Contains(r.Header.Get("Vary"), "Origin") || !strings.Contains(r.Header.Get("Access-Control-Expose-Headers"), "Location") {
			t.Errorf("listed origin: %v", r.Header)
		}
		r = e.get("/api/v1/documents", alice, "Origin", evil)
		if r.Header.Get("Access-Control-Allow-Origin") != "" || r.Header.Get("Access-Control-Allow-Credentials") != "" {
			t.Errorf("unlisted origin allowed: %v", r.Header)
		}
		p := e.preflight(t, app)
		if p.StatusCode != http.StatusNoContent || p.Header.Get("Access-Control-Allow-Origin") != app ||
			!strings.Contains(p.Header.Get("Access-Control-Allow-Methods"), "POST") ||
			!strings.Contains(strings.ToLower(p.Header.Get("Access-Control-Allow-Headers")), "authorization") {
			t.Errorf("preflight from a listed origin: %d %v", p.StatusCode, p.Header)
		}
		checkSecurityHeaders(t, "preflight", p.Header, false)
		if p := e.preflight(t, evil); p.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("preflight from an unlisted origin allowed: %v", p.Header)
		}
	})
}

// TestMetricsAreNotPublic: with token auth /metrics is not served on the
// API's listener unless API_METRICS_TOKEN is set, and then only to its
// holders; with dev auth (loopback only) it is open.
func TestMetricsAreNotPublic(t *testing.T) {
	e := newEnv(t)
	e.get("/metrics", "").problem(t, http.StatusUnauthorized, "unauthenticated")
	e.get("/metrics", alice).problem(t, http.StatusUnauthorized, "unauthenticated")
	e.get("/metrics", "", "Authorization", "Bearer "+metricsToken+"x").problem(t, http.StatusUnauthorized, "unauthenticated")
	expect(t, e.get("/metrics", "", "Authorization", "Bearer "+metricsToken), http.StatusOK)

	noToken := newEnv(t, withAPI(func(c *api.Config) { c.MetricsToken = "" }))
	noToken.get("/metrics", "").problem(t, http.StatusNotFound, "not-found")
	dev := newEnv(t, withAPI(func(c *api.Config) { c.MetricsToken, c.Auth, c.DevOwner = "", api.AuthDev, alice }))
	expect(t, dev.get("/healthz", ""), http.StatusOK) // a request to count
	if r := dev.get("/metrics", ""); r.StatusCode != http.StatusOK || !strings.Contains(string(r.body), "prism_http_requests_total") {
		t.Fatalf("dev /metrics: %d %.200s", r.StatusCode, r.body)
	}
}

// TestHardeningConfiguration: origins are exact and normalised, proxies
// are addresses, the metrics token is long, and every bad value is named.
func TestHardeningConfiguration(t *testing.T) {
	c := api.ConfigFromEnv(config.New(config.MapEnv(map[string]string{
		"API_CORS_ORIGINS": " https://App.Example.com , http://localhost:5173/ ", "API_TRUSTED_PROXIES": "10.0.0.0/8,192.168.1.10",
		"API_PUBLIC_URL": "https://prism.example.com", "API_HEADER_TIMEOUT": "5s",
	})))
	if strings.Join(c.CORSOrigins, " ") != "https://app.example.com http://localhost:5173" || len(c.TrustedProxies) != 2 ||
		c.HeaderTimeout != 5*time.Second || c.WriteTimeout != api.DefaultWriteTimeout || c.IdleTimeout != api.DefaultIdleTimeout {
		t.Fatalf("config %+v", c)
	}
	l := config.New(config.MapEnv(map[string]string{
		"API_CORS_ORIGINS": "*,https://a.example/path", "API_TRUSTED_PROXIES": "proxy.internal",
		"API_METRICS_TOKEN": "short", "API_HEADER_TIMEOUT": "10m",
	}))
	api.ConfigFromEnv(l)
	err := l.Err()
	if err == nil {
		t.Fatal("bad values accepted")
	}
	for _, want := range []string{`"*" is not`, `"https://a.example/path" has more`, `"proxy.internal"`, "API_METRICS_TOKEN: expected at least 32", "API_HEADER_TIMEOUT"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the errors do not say %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "short") {
		t.Errorf("the errors repeat the metrics token:\n%v", err)
	}
}
