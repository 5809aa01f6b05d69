package api

import (
	"crypto/subtle"
	"errors"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aiprism/prism/ingest"
	"github.com/aiprism/prism/platform/obs"
	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/gofiber/fiber/v2/middleware/cors"
	"github.com/valyala/fasthttp"
)

// contentSecurityPolicy allows nothing: the API serves data, never a page,
// and a stored document opened from /original must not run script or be
// framed.
const contentSecurityPolicy = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'; sandbox"

// securityHeaders sets the security headers on every answer, errors and
// streams included. HSTS only when the API is reached over https: its
// public URL says so, or a trusted proxy does (X-Forwarded-Proto, read by
// c.Protocol only from Config.TrustedProxies).
func securityHeaders(cfg Config) fiber.Handler {
	https := strings.HasPrefix(strings.ToLower(cfg.PublicURL), "https://")
	return func(c *fiber.Ctx) error {
		h := &c.Response().Header
		h.Set(fiber.HeaderContentSecurityPolicy, contentSecurityPolicy)
		h.Set(fiber.HeaderXContentTypeOptions, "nosniff")
		h.Set(fiber.HeaderXFrameOptions, "DENY")
		h.Set(fiber.HeaderReferrerPolicy, "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		if https || c.Protocol() == "https" {
			h.Set(fiber.HeaderStrictTransportSecurity, "max-age=31536000")
		}
		return c.Next()
	}
}

// corsPolicy lets browsers on the configured origins (exact matches,
// normalised by ConfigFromEnv) call the API with credentials, and answers
// their preflights. Other origins get no Access-Control-Allow-Origin.
func corsPolicy(origins []string) fiber.Handler {
	allowed := make(map[string]bool, len(origins))
	for _, o := range origins {
		allowed[o] = true
	}
	return cors.New(cors.Config{
		AllowOriginsFunc: func(o string) bool { return allowed[o] },
		AllowMethods:     "GET,HEAD,POST,PUT,PATCH,DELETE",
		AllowHeaders:     "Authorization,Content-Type,Last-Event-ID,Range,X-CSRF-Token,X-Request-ID",
		ExposeHeaders:    "Content-Disposition,Content-Range,ETag,Location,Retry-After,X-Request-ID",
		AllowCredentials: true,
		MaxAge:           600,
	})
}

// headerTimeouts makes fasthttp's ReadTimeout (armed before each request's
// first byte is read) a header timeout: once the headers are in, the read
// deadline moves to body, which bounds reading the body.
func headerTimeouts(body time.Duration) func(*fasthttp.RequestHeader) fasthttp.RequestConfig {
	return func(*fasthttp.RequestHeader) fasthttp.RequestConfig {
		return fasthttp.RequestConfig{ReadTimeout: body}
	}
}

// limitWrites gives an answer whose body is in memory d to be written, and
// a streamed one (SSE, exports, downloads) no deadline, since its length
// is the stream's. fasthttp's own WriteTimeout would cut streams, so it
// stays 0 and fasthttp leaves the connection's deadline to this.
func limitWrites(d time.Duration) fiber.Handler {
	return func(c *fiber.Ctx) error {
		err := c.Next()
		deadline := time.Now().Add(d)
		if err == nil && c.Response().IsBodyStream() {
			deadline = time.Time{}
		}
		_ = c.Context().Conn().SetWriteDeadline(deadline)
		return err
	}
}

// Request bodies. fasthttp streams every body (StreamRequestBody, for
// uploads) and applies no limit to a streamed one, and c.Body() would read
// all of it into memory: limitBodies reads the body of every request but
// an upload here, up to maxBodyBytes; an upload's body goes to its handler
// capped at the upload limit plus formOverhead.
const (
	maxBodyBytes = 1 << 20
	uploadPath   = "/api/v1/documents"
	// lingerTime is how long a connection whose body was refused keeps
	// being read after the answer (see lingerClose).
	lingerTime = time.Second
)

const localsUploadBody = "upload_body"

func (s *Server) limitBodies(c *fiber.Ctx) error {
	stream := c.Context().RequestBodyStream()
	size := c.Request().Header.ContentLength()
	if stream == nil || size == 0 || size == -2 { // -2: no body (neither a length nor chunks)
		return c.Next()
	}
	// Routing matches paths regardless of case and a trailing slash.
	upload := c.Method() == fiber.MethodPost && strings.EqualFold(strings.TrimSuffix(c.Path(), "/"), uploadPath)
	limit := int64(maxBodyBytes)
	if upload {
		limit = s.uploadLimit() + formOverhead
	}
	if int64(size) > limit {
		lingerClose(c)
		return s.tooLarge(upload)
	}
	body := newCappedBody(stream, limit)
	if upload {
		c.Locals(localsUploadBody, body)
		err := c.Next()
		if !body.eof {
			lingerClose(c)
		}
		return err
	}
	buf, err := io.ReadAll(body)
	if err != nil {
		lingerClose(c)
		if p := bodyProblem(err, s.tooLarge(false)); p != nil {
			return p
		}
		return err
	}
	c.Request().SetBody(buf)
	return c.Next()
}

// bodyProblem is the answer to a request whose body could not be read to
// its end (too large, too slow for the read timeout, cut off by the
// client), nil when err is not about the body: an object store failing
// while an upload streams to it is the server's error, not the client's.
func bodyProblem(err error, tooLarge *Problem) *Problem {
	var ce clientError
	var ne net.Error
	switch {
	case errors.Is(err, ingest.ErrTooLarge):
		return tooLarge
	case !errors.As(err, &ce):
		return nil
	case errors.As(ce.error, &ne) && ne.Timeout():
		return problem(fiber.StatusRequestTimeout, "body-timeout", "the request body did not arrive within the read timeout")
	}
	return problem(fiber.StatusBadRequest, "bad-body", "the request body could not be read to its end")
}

// clientError is an error reading the request body from the client.
type clientError struct{ error }

func (e clientError) Unwrap() error { return e.error }

func (s *Server) tooLarge(upload bool) *Problem {
	if upload {
		return problem(fiber.StatusRequestEntityTooLarge, classTooLarge, "the document exceeds the upload limit of "+humanBytes(s.uploadLimit()))
	}
	return problem(fiber.StatusRequestEntityTooLarge, classTooLarge, "the request body exceeds "+humanBytes(maxBodyBytes))
}

// cappedBody is a request body cut off past its limit (with
// ingest.ErrTooLarge). It notes whether it was read to its end, and marks
// errors reading it as the client's.
type cappedBody struct {
	*ingest.LimitedReader
	eof bool
}

func newCappedBody(r io.Reader, limit int64) *cappedBody {
	return &cappedBody{LimitedReader: ingest.LimitReader(r, limit)}
}

func (b *cappedBody) Read(p []byte) (int, error) {
	n, err := b.LimitedReader.Read(p)
	switch {
	case errors.Is(err, io.EOF):
		b.eof = true
	case err != nil && !errors.Is(err, ingest.ErrTooLarge):
		err = clientError{err}
	}
	return n, err
}

// lingerClose closes the connection after the answer, which says so
// (Connection: close), in a way that lets the client read the answer: it
// may still be sending a body that will not be read, and closing a
// socket with unread data resets the connection, which can reach the
// client before it has read the answer (Go's client then reports the
// failed write instead of the 413). lingerConn.Close closes the sending
// side and reads and drops what the client still sends for lingerTime, as
// net/http's server and nginx's lingering close do.
func lingerClose(c *fiber.Ctx) {
	c.Set(fiber.HeaderConnection, "close")
	if lc, ok := c.Context().Conn().(*lingerConn); ok {
		lc.linger.Store(true)
	}
}

// lingerListener hands fasthttp connections that can close lingering.
// (The API serves plain HTTP; TLS ends at a proxy.)
type lingerListener struct{ net.Listener }

func (l lingerListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &lingerConn{Conn: c}, nil
}

type lingerConn struct {
	net.Conn
	linger atomic.Bool // set by lingerClose
}

func (c *lingerConn) Close() error {
	if c.linger.Load() {
		if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		}
		_ = c.Conn.SetReadDeadline(time.Now().Add(lingerTime))
		_, _ = io.Copy(io.Discard, c.Conn)
	}
	return c.Conn.Close()
}

// metrics serves the Prometheus registry: to holders of MetricsToken when
// one is set, to anyone with dev auth (loopback only), and otherwise not
// here at all: METRICS_ADDR serves it on a listener of its own.
func (s *Server) metrics() fiber.Handler {
	serve := adaptor.HTTPHandler(obs.MetricsHandler(s.deps.Registry))
	want := []byte(s.cfg.MetricsToken)
	return func(c *fiber.Ctx) error {
		switch {
		case len(want) > 0:
			got, ok := strings.CutPrefix(c.Get(fiber.HeaderAuthorization), "Bearer ")
			if !ok || subtle.ConstantTimeCompare([]byte(got), want) != 1 {
				c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="ai-prism metrics"`)
				return problem(fiber.StatusUnauthorized, "unauthenticated", "send the metrics token (API_METRICS_TOKEN) as Authorization: Bearer <token>")
			}
		case s.cfg.Auth != AuthDev:
			return problem(fiber.StatusNotFound, classNotFound, "metrics are served on METRICS_ADDR, or here with API_METRICS_TOKEN")
		}
		return serve(c)
	}
}
