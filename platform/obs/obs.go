// Package obs sets up the two things every role reports through: structured
// zerolog logs and a Prometheus registry served on /metrics.
package obs

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/aiprism/prism/platform/config"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"
)

// Log field names shared by every role, so one query finds a document's
// whole journey across processes.
const (
	FieldDocumentID    = "document_id"
	FieldCorrelationID = "correlation_id"
	FieldOwner         = "owner"
	FieldRole          = "role"    // the role a line is about (extractor, api, ...)
	FieldProcess       = "process" // the command the process runs (dev, api, migrate, ...)
	FieldStage         = "stage"
)

// LogConfig says how to log.
type LogConfig struct {
	Level  zerolog.Level
	Format string // json or console
}

// LogConfigFromEnv reads LOG_LEVEL (debug, info, warn, error) and LOG_FORMAT
// (json, console).
func LogConfigFromEnv(l *config.Loader) LogConfig {
	lvl := l.OneOf("LOG_LEVEL", "info", "trace", "debug", "info", "warn", "error")
	parsed, _ := zerolog.ParseLevel(lvl)
	return LogConfig{Level: parsed, Format: l.OneOf("LOG_FORMAT", "json", "json", "console")}
}

// NewLogger returns a logger writing to w (os.Stderr when nil). Every line
// passes through config.Redact: a connection string quoted in an error,
// ours or a library's, reaches the log without its credentials.
func NewLogger(w io.Writer, c LogConfig) zerolog.Logger {
	if w == nil {
		w = os.Stderr
	}
	w = RedactingWriter(w)
	if c.Format == "console" {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly}
	}
	return zerolog.New(w).Level(c.Level).With().Timestamp().Logger()
}

// RedactingWriter returns a writer that passes each write (zerolog writes
// one line at a time) through config.Redact on its way to w.
func RedactingWriter(w io.Writer) io.Writer { return redactor{w} }

type redactor struct{ w io.Writer }

func (r redactor) Write(p []byte) (int, error) {
	line := string(p)
	if red := config.Redact(line); red != line {
		if _, err := io.WriteString(r.w, red); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	return r.w.Write(p)
}

// NewRegistry returns a registry with the Go runtime and process collectors,
// so every role reports memory, goroutines and CPU without code of its own.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// MetricsHandler serves reg in the Prometheus exposition format.
func MetricsHandler(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
}

// ServeMetrics serves /metrics and /healthz on addr until ctx ends. Roles
// without an HTTP API of their own use it; the api role mounts the handler.
func ServeMetrics(ctx context.Context, addr string, reg *prometheus.Registry, log zerolog.Logger) error {
	mux := http.NewServeMux()
	mux.Handle("/metrics", MetricsHandler(reg))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	log.Info().Str("addr", ln.Addr().String()).Msg("metrics listening")
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Register registers c, or returns the collector already registered under
// the same description. Several roles share one registry in `prism dev`, so
// each may ask for the same metric without a global to coordinate them.
func Register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic(err) // a programming error: two metrics with one name and different shapes
	}
	return c
}
