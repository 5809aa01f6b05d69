package api

import (
	"context"
	"errors"
	"net"
	"time"

	"github.com/aiprism/prism/ingest"
	"github.com/aiprism/prism/persist/store"
	"github.com/aiprism/prism/platform/obs"
	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/gofiber/fiber/v2/middleware/recover"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Documents is the read side the API needs.
type Documents interface {
	GetDocument(ctx context.Context, owner, id string) (store.Document, error)
}

// Pinger checks a dependency for /readyz.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Deps are the API's collaborators, built by the caller (the prism command
// or a test) so the API owns no connections.
type Deps struct {
	NC        *nats.Conn
	JS        jetstream.JetStream
	Pool      *pgxpool.Pool
	Documents Documents
	Blobs     Pinger
	Ingest    *ingest.Service
	Registry  *prometheus.Registry
	Log       zerolog.Logger
}

// Server is the HTTP API.
type Server struct {
	cfg  Config
	deps Deps
	app  *fiber.App
}

// New builds the API.
func New(cfg Config, deps Deps) *Server {
	s := &Server{cfg: cfg, deps: deps}
	s.app = fiber.New(fiber.Config{
		AppName:               "ai-prism",
		DisableStartupMessage: true,
		// Uploads stream through to the store instead of being buffered.
		StreamRequestBody:            true,
		DisablePreParseMultipartForm: true,
		BodyLimit:                    int(min(cfg.MaxUploadBytes+1<<20, 1<<31-1)),
		ReadTimeout:                  cfg.ReadTimeout,
		IdleTimeout:                  2 * time.Minute,
		ErrorHandler:                 errorHandler(deps.Log),
	})
	s.routes()
	return s
}

func (s *Server) routes() {
	app := s.app
	app.Use(recover.New())
	app.Use(withRequestID)
	app.Use(newHTTPMetrics(s.deps.Registry).middleware)
	app.Get("/healthz", s.healthz)
	app.Get("/readyz", s.readyz)
	app.Get("/metrics", adaptor.HTTPHandler(obs.MetricsHandler(s.deps.Registry)))

	v1 := app.Group("/api/v1", authenticate(s.cfg, s.deps.Pool))
	v1.Post("/documents", s.upload)
	v1.Get("/documents/:id", s.getDocument)
	v1.Get("/documents/:id/events", s.documentEvents)
}

// App exposes the Fiber app for in-process tests (app.Test).
func (s *Server) App() *fiber.App { return s.app }

// Serve answers on ln until ctx ends, then shuts down gracefully: open SSE
// streams end, in-flight requests finish.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	errc := make(chan error, 1)
	go func() { errc <- s.app.Listener(ln) }()
	s.deps.Log.Info().Str("addr", ln.Addr().String()).Msg("api listening")
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	if err := s.app.ShutdownWithTimeout(10 * time.Second); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}

// Run listens on the configured address and serves until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return err
	}
	return s.Serve(ctx, ln)
}
