// Package api is the HTTP face of AI-Prism: uploads, document status and
// assessments, live progress over server-sent events, health and metrics.
package api

import (
	"net"
	"time"

	"github.com/aiprism/prism/accounts"
	"github.com/aiprism/prism/platform/config"
)

// Auth modes.
const (
	AuthDev   = "dev"   // every request acts as DevOwner: for a laptop, never for a shared deployment, so loopback only
	AuthToken = "token" // a session cookie (POST /api/v1/session) or Authorization: Bearer <API token>
)

// Config is the api role's configuration.
type Config struct {
	Addr           string
	Auth           string
	DevOwner       string
	MaxUploadBytes int64
	SSEHeartbeat   time.Duration
	ReadTimeout    time.Duration
	// ExportMaxRows caps one bulk export; a larger one is refused with a
	// request to narrow the filters. 0 = DefaultExportMaxRows.
	ExportMaxRows int
	// SessionIdle and SessionMax end a session after this long unused,
	// and this long after sign-in whatever its use. 0 = the accounts
	// defaults (12 h, 7 days).
	SessionIdle time.Duration
	SessionMax  time.Duration
}

// DefaultExportMaxRows is the export cap when none is configured.
const DefaultExportMaxRows = 100_000

// ConfigFromEnv reads API_ADDR, API_AUTH, API_DEV_OWNER,
// API_MAX_UPLOAD_BYTES, API_SSE_HEARTBEAT, API_READ_TIMEOUT,
// API_EXPORT_MAX_ROWS, API_SESSION_IDLE and API_SESSION_MAX. Dev auth on
// an address other than loopback is refused.
func ConfigFromEnv(l *config.Loader) Config {
	c := Config{
		Addr:           l.String("API_ADDR", "127.0.0.1:8080"),
		Auth:           l.OneOf("API_AUTH", AuthToken, AuthDev, AuthToken),
		DevOwner:       l.String("API_DEV_OWNER", "dev"),
		MaxUploadBytes: l.Int64("API_MAX_UPLOAD_BYTES", 50<<20, 1, 4<<30),
		SSEHeartbeat:   l.Duration("API_SSE_HEARTBEAT", 15*time.Second, 100*time.Millisecond, 5*time.Minute),
		ReadTimeout:    l.Duration("API_READ_TIMEOUT", 5*time.Minute, time.Second, time.Hour),
		ExportMaxRows:  l.Int("API_EXPORT_MAX_ROWS", DefaultExportMaxRows, 1, 10_000_000),
		SessionIdle:    l.Duration("API_SESSION_IDLE", accounts.DefaultSessionIdle, time.Minute, 30*24*time.Hour),
		SessionMax:     l.Duration("API_SESSION_MAX", accounts.DefaultSessionMax, time.Minute, 365*24*time.Hour),
	}
	l.Check(c.SessionIdle <= c.SessionMax, "API_SESSION_IDLE", "at most API_SESSION_MAX ("+c.SessionMax.String()+")")
	l.Check(c.Auth != AuthDev || loopback(c.Addr), "API_AUTH",
		"token, or API_ADDR on loopback (e.g. 127.0.0.1:8080): "+devAuthRisk(c.Addr))
	return c
}

// devAuthRisk says why dev auth is refused on addr.
func devAuthRisk(addr string) string {
	return "API_AUTH=dev lets anyone who reaches the API act as the dev user without signing in, and API_ADDR=" +
		addr + " is not a loopback address"
}

// loopback reports whether addr (host:port) listens on loopback only:
// localhost or a loopback IP, not every interface.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
