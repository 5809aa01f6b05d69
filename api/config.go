// Package api is the HTTP face of AI-Prism: uploads, document status and
// assessments, live progress over server-sent events, health and metrics.
package api

import (
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/aiprism/prism/accounts"
	"github.com/aiprism/prism/platform/config"
	"github.com/aiprism/prism/streams"
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
	// HeaderTimeout bounds reading a request's line and headers, from its
	// first byte (a new connection) or from the end of the previous
	// request's idle wait; ReadTimeout then bounds reading its body.
	HeaderTimeout time.Duration
	ReadTimeout   time.Duration
	// WriteTimeout bounds writing an answer whose body is not streamed;
	// streamed ones (SSE, exports, downloads) are not cut by it.
	WriteTimeout time.Duration
	// IdleTimeout closes a kept-alive connection that sends nothing.
	IdleTimeout time.Duration
	// PublicURL is where clients reach the API; an https one turns on
	// Strict-Transport-Security.
	PublicURL string
	// TrustedProxies (IPs or CIDRs) may say the client's scheme with
	// X-Forwarded-Proto; nobody else is believed.
	TrustedProxies []string
	// CORSOrigins are the exact origins (scheme://host[:port]) browsers
	// may call the API from, with credentials. None: CORS is off.
	CORSOrigins []string
	// MetricsToken, when set, serves /metrics on the API's listener to
	// callers presenting it as a bearer token. Unset, /metrics is public
	// only with dev auth; otherwise it is on METRICS_ADDR alone.
	MetricsToken string
	// ExportMaxRows caps one bulk export; a larger one is refused with a
	// request to narrow the filters. 0 = DefaultExportMaxRows.
	ExportMaxRows int
	// SessionIdle and SessionMax end a session after this long unused,
	// and this long after sign-in whatever its use. 0 = the accounts
	// defaults (12 h, 7 days).
	SessionIdle time.Duration
	SessionMax  time.Duration
	// OpenSignUp lets anyone create a user account (POST /api/v1/users);
	// off, accounts are made by an admin (`prism user add`).
	OpenSignUp bool
	// Limits are the per-user abuse limits; zero fields take
	// DefaultLimits.
	Limits Limits
	// ChatWatchdog is how long a chat answer being written may go unheard
	// (no started, heartbeat or delta; the answerer sends a heartbeat every
	// second) before the relay asks whether any replica is writing it, and
	// ends it as interrupted when none is. 0 = DefaultChatWatchdog.
	ChatWatchdog time.Duration
	// StaticBaseURL, when set, is where a CDN serves this server's web
	// assets (its /assets/ path): pages load them from there, and their
	// Content-Security-Policy allows its origin. Unset, they load from
	// /assets/ on this server.
	StaticBaseURL string
	// ShutdownDelay is how long /readyz answers 503 at shutdown before the
	// listener closes, so a load balancer stops sending here first
	// (longer than its readiness probe interval). 0: none.
	ShutdownDelay time.Duration
}

// DefaultShutdownDelay is API_SHUTDOWN_DELAY when unset: a few readiness
// probes of a load balancer, well within the 25 s SHUTDOWN_GRACE.
const DefaultShutdownDelay = 2 * time.Second

// DefaultChatWatchdog is the chat watchdog when none is configured.
const DefaultChatWatchdog = 5 * time.Second

// DefaultExportMaxRows is the export cap when none is configured.
const DefaultExportMaxRows = 100_000

// Timeouts when none is configured.
const (
	DefaultHeaderTimeout = 10 * time.Second
	DefaultReadTimeout   = 5 * time.Minute
	DefaultWriteTimeout  = time.Minute
	DefaultIdleTimeout   = time.Minute
)

// ConfigFromEnv reads API_ADDR, API_AUTH, API_DEV_OWNER,
// API_MAX_UPLOAD_BYTES, API_SSE_HEARTBEAT, API_HEADER_TIMEOUT,
// API_READ_TIMEOUT (a request body), API_WRITE_TIMEOUT (an answer that is
// not streamed), API_IDLE_TIMEOUT, API_PUBLIC_URL, API_TRUSTED_PROXIES and
// API_CORS_ORIGINS (comma-separated), API_METRICS_TOKEN,
// API_EXPORT_MAX_ROWS, API_SESSION_IDLE, API_SESSION_MAX, API_SIGNUP (closed
// or open), API_CHAT_WATCHDOG, STATIC_BASE_URL, API_SHUTDOWN_DELAY, and the per-user limits API_LIMIT_UPLOADS_PER_MINUTE,
// API_LIMIT_DOCS_IN_FLIGHT, API_LIMIT_SSE_STREAMS and API_LIMIT_EXPORTS.
// Dev auth on an address other than loopback is refused.
func ConfigFromEnv(l *config.Loader) Config {
	devOwner := l.String("API_DEV_OWNER", "dev")
	// The owner id reaches subjects and object keys: the same rule as
	// every owner id (no '.', '*', '>' or whitespace).
	l.Check(streams.ValidToken(devOwner) == nil, "API_DEV_OWNER", "an owner id: 1 to 64 letters, digits, '-' or '_'")
	c := Config{
		Addr:           l.String("API_ADDR", "127.0.0.1:8080"),
		Auth:           l.OneOf("API_AUTH", AuthToken, AuthDev, AuthToken),
		DevOwner:       devOwner,
		MaxUploadBytes: l.Int64("API_MAX_UPLOAD_BYTES", 50<<20, 1, 4<<30),
		SSEHeartbeat:   l.Duration("API_SSE_HEARTBEAT", 15*time.Second, 100*time.Millisecond, 5*time.Minute),
		HeaderTimeout:  l.Duration("API_HEADER_TIMEOUT", DefaultHeaderTimeout, 100*time.Millisecond, time.Minute),
		ReadTimeout:    l.Duration("API_READ_TIMEOUT", DefaultReadTimeout, time.Second, time.Hour),
		WriteTimeout:   l.Duration("API_WRITE_TIMEOUT", DefaultWriteTimeout, time.Second, time.Hour),
		IdleTimeout:    l.Duration("API_IDLE_TIMEOUT", DefaultIdleTimeout, time.Second, time.Hour),
		PublicURL:      l.URL("API_PUBLIC_URL", "", "http", "https"),
		TrustedProxies: list(l.String("API_TRUSTED_PROXIES", "")),
		CORSOrigins:    list(l.String("API_CORS_ORIGINS", "")),
		MetricsToken:   l.String("API_METRICS_TOKEN", ""),
		ExportMaxRows:  l.Int("API_EXPORT_MAX_ROWS", DefaultExportMaxRows, 1, 10_000_000),
		SessionIdle:    l.Duration("API_SESSION_IDLE", accounts.DefaultSessionIdle, time.Minute, 30*24*time.Hour),
		SessionMax:     l.Duration("API_SESSION_MAX", accounts.DefaultSessionMax, time.Minute, 365*24*time.Hour),
		OpenSignUp:     l.OneOf("API_SIGNUP", "closed", "closed", "open") == "open",
		Limits:         limitsFromEnv(l),
		ChatWatchdog:   l.Duration("API_CHAT_WATCHDOG", DefaultChatWatchdog, 100*time.Millisecond, 5*time.Minute),
		StaticBaseURL:  l.URL("STATIC_BASE_URL", "", "http", "https"),
		ShutdownDelay:  l.Duration("API_SHUTDOWN_DELAY", DefaultShutdownDelay, 0, time.Minute),
	}
	for _, p := range c.TrustedProxies {
		_, _, err := net.ParseCIDR(p)
		l.Check(err == nil || net.ParseIP(p) != nil, "API_TRUSTED_PROXIES", fmt.Sprintf("IP addresses or CIDR ranges, comma-separated (not %q)", p))
	}
	for i, o := range c.CORSOrigins {
		norm, err := origin(o)
		l.Check(err == nil, "API_CORS_ORIGINS", fmt.Sprintf("exact origins such as https://app.example.com, comma-separated (%v)", err))
		c.CORSOrigins[i] = norm
	}
	if u, err := url.Parse(c.StaticBaseURL); c.StaticBaseURL != "" && err == nil {
		l.Check(u.User == nil && u.RawQuery == "" && u.Fragment == "", "STATIC_BASE_URL",
			"a URL without user, query or fragment, such as https://cdn.example.com")
	}
	// A guessable token would make /metrics public in all but name.
	l.Check(c.MetricsToken == "" || len(c.MetricsToken) >= 32, "API_METRICS_TOKEN", "at least 32 characters")
	l.Check(c.SessionIdle <= c.SessionMax, "API_SESSION_IDLE", "at most API_SESSION_MAX ("+c.SessionMax.String()+")")
	l.Check(c.Auth != AuthDev || loopback(c.Addr), "API_AUTH",
		"token, or API_ADDR on loopback (e.g. 127.0.0.1:8080): "+devAuthRisk(c.Addr))
	return c
}

// withDefaults fills what a Config built in code (tests) leaves zero.
func (c Config) withDefaults() Config {
	if c.ExportMaxRows <= 0 {
		c.ExportMaxRows = DefaultExportMaxRows
	}
	c.Limits = c.Limits.withDefaults()
	for _, d := range []struct {
		v   *time.Duration
		def time.Duration
	}{{&c.HeaderTimeout, DefaultHeaderTimeout}, {&c.ReadTimeout, DefaultReadTimeout}, {&c.WriteTimeout, DefaultWriteTimeout}, {&c.IdleTimeout, DefaultIdleTimeout},
		{&c.ChatWatchdog, DefaultChatWatchdog}} {
		if *d.v <= 0 {
			*d.v = d.def
		}
	}
	return c
}

// list splits a comma-separated value, dropping empty items.
func list(v string) []string {
	var out []string
	for item := range strings.SplitSeq(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// origin checks that o is an origin as browsers send it, scheme://host
// with an optional port and nothing else, and returns it lower-cased.
func origin(o string) (string, error) {
	u, err := url.Parse(o)
	switch {
	case err != nil:
		return "", fmt.Errorf("%q: %w", o, err)
	case o == "*" || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https"):
		return "", fmt.Errorf("%q is not an http or https origin", o)
	case u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "":
		return "", fmt.Errorf("%q has more than a scheme, host and port", o)
	}
	return strings.ToLower(u.Scheme + "://" + u.Host), nil
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
