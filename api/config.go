// Package api is the HTTP face of AI-Prism: uploads, document status and
// assessments, live progress over server-sent events, health and metrics.
package api

import (
	"time"

	"github.com/aiprism/prism/platform/config"
	"github.com/aiprism/prism/streams"
)

// Auth modes.
const (
	AuthDev   = "dev"   // every request acts as DevOwner: for a laptop, never for a shared deployment
	AuthToken = "token" // Authorization: Bearer <API token>
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
}

// DefaultExportMaxRows is the export cap when none is configured.
const DefaultExportMaxRows = 100_000

// ConfigFromEnv reads API_ADDR, API_AUTH, API_DEV_OWNER,
// API_MAX_UPLOAD_BYTES, API_SSE_HEARTBEAT, API_READ_TIMEOUT and
// API_EXPORT_MAX_ROWS.
func ConfigFromEnv(l *config.Loader) Config {
	devOwner := l.String("API_DEV_OWNER", "dev")
	// The owner id reaches subjects and object keys: the same rule as
	// every owner id (no '.', '*', '>' or whitespace).
	l.Check(streams.ValidToken(devOwner) == nil, "API_DEV_OWNER", "an owner id: 1 to 64 letters, digits, '-' or '_'")
	return Config{
		Addr:           l.String("API_ADDR", "127.0.0.1:8080"),
		Auth:           l.OneOf("API_AUTH", AuthToken, AuthDev, AuthToken),
		DevOwner:       devOwner,
		MaxUploadBytes: l.Int64("API_MAX_UPLOAD_BYTES", 50<<20, 1, 4<<30),
		SSEHeartbeat:   l.Duration("API_SSE_HEARTBEAT", 15*time.Second, 100*time.Millisecond, 5*time.Minute),
		ReadTimeout:    l.Duration("API_READ_TIMEOUT", 5*time.Minute, time.Second, time.Hour),
		ExportMaxRows:  l.Int("API_EXPORT_MAX_ROWS", DefaultExportMaxRows, 1, 10_000_000),
	}
}
