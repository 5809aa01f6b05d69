package api

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aiprism/prism/api/web"
	"github.com/aiprism/prism/ingest"
	"github.com/aiprism/prism/persist/store"
	"github.com/aiprism/prism/platform/blob"
	"github.com/aiprism/prism/platform/quota"
	"github.com/aiprism/prism/platform/shutdown"
	"github.com/aiprism/prism/streams"
	gojson "github.com/goccy/go-json"
	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/recover"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Documents is the read model the API reads (documents and chat
// sessions) and the few rows it writes itself (soft deletes, audit
// entries, export records): *store.Store.
type Documents interface {
	GetDocument(ctx context.Context, owner, id string) (store.Document, error)
	DocumentState(ctx context.Context, owner, id string) (store.State, error)
	GetAssessment(ctx context.Context, owner, id string) (store.Assessment, error)
	ListDocuments(ctx context.Context, owner string, q store.ListQuery) ([]store.Document, string, error)
	History(ctx context.Context, owner, id string, limit int, cursor string) ([]store.HistoryEntry, string, error)
	Stats(ctx context.Context, owner string, w store.StatsWindow) (store.Stats, error)
	RecordAccess(ctx context.Context, owner, id, typ string, a store.Actor, at time.Time, extra map[string]any) error
	Delete(ctx context.Context, owner, id string, a store.Actor, at time.Time) (store.Deletion, error)
	GetExport(ctx context.Context, owner, id string) (store.Export, error)
	ChatSessions(ctx context.Context, owner string, page store.ChatPage) ([]store.ChatSession, string, error)
	ChatSession(ctx context.Context, owner, id string) (store.ChatSession, []streams.ChatMessage, uint64, error)
}

// Objects is the part of the claim-check store the API uses: *blob.Store.
type Objects interface {
	Ping(ctx context.Context) error
	Get(ctx context.Context, key string) (io.ReadCloser, blob.Info, error)
	GetRange(ctx context.Context, key string, offset, length int64) (io.ReadCloser, blob.Info, error)
	Head(ctx context.Context, key string) (blob.Info, error)
	Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) (blob.PutResult, error)
	Delete(ctx context.Context, key string) error
}

// Deps are the API's collaborators, built by the caller (the prism command
// or a test) so the API owns no connections.
type Deps struct {
	NC        *nats.Conn
	JS        jetstream.JetStream
	Pool      *pgxpool.Pool // exports run in their own transaction on it
	Documents Documents
	Blobs     Objects
	Ingest    *ingest.Service
	Registry  *prometheus.Registry
	Log       zerolog.Logger
	// Accounts authenticate requests in token mode (OpenAccounts). With
	// none, users and API tokens are read from Pool and nobody signs in.
	Accounts Accounts
	// Quota holds the per-user limits every replica shares (quota.Open
	// with the topology's replicas). Run refuses to serve without it.
	Quota *quota.Store
	// Listener is where Run serves. The caller listens, so the address
	// is known (and a busy port reported) before anything runs.
	Listener net.Listener
}

// Source is the CloudEvents source of the events the API publishes and of
// its audit entries.
const Source = "/prism/api"

// Server is the HTTP API.
type Server struct {
	cfg         Config
	deps        Deps
	pub         *streams.Publisher
	events      *streams.Log // single events and replays of DOCS
	chats       *streams.Log // and of CHAT
	audited     auditMemo    // audit entries already written this minute
	hub         *hub
	chatHub     *hub // CHAT's, sharing the hub's setup slots and metrics
	chatMetrics chatMetrics
	stop        context.CancelFunc // ends the hub and open SSE streams
	stopping    atomic.Bool        // set at shutdown: /readyz answers 503
	exports     chan struct{}      // export slots, see exportSlot
	site        *web.Site          // the web application
	app         *fiber.App
}

// New builds the API. It panics if the embedded web application cannot be
// prepared (a file of an unknown type, an import of a missing module) or
// cfg.StaticBaseURL is not a URL (ConfigFromEnv refuses both): the tests
// of the web package load the same files.
func New(cfg Config, deps Deps) *Server {
	cfg = cfg.withDefaults()
	site, err := web.New(web.Files(), cfg.StaticBaseURL)
	if err != nil {
		panic("api: " + err.Error())
	}
	life, stop := context.WithCancel(context.Background())
	s := &Server{
		stop:        stop,
		hub:         newHub(life, deps.JS, deps.Registry, deps.Log),
		cfg:         cfg,
		deps:        deps,
		pub:         streams.NewPublisher(deps.JS, Source),
		events:      streams.NewLog(deps.JS),
		chats:       streams.NewChatLog(deps.JS),
		exports:     make(chan struct{}, maxConcurrentExports),
		chatMetrics: newChatMetrics(deps.Registry),
		site:        site,
	}
	s.chatHub = s.hub.sibling(streams.ChatStream, streams.ChatRoot+".>")
	s.app = fiber.New(fiber.Config{
		AppName:               "ai-prism",
		DisableStartupMessage: true,
		// Values from the request (query, params, headers) are copied, so
		// they stay valid in work that outlives the handler: streamed
		// exports and SSE run after fasthttp has reused its buffers.
		Immutable: true,
		// Uploads stream through to the store instead of being buffered.
		// fasthttp applies no body limit to a streamed body: limitBodies
		// does, for every route.
		StreamRequestBody:            true,
		DisablePreParseMultipartForm: true,
		BodyLimit:                    int(min(cfg.MaxUploadBytes+formOverhead, 1<<31-1)),
		// The header timeout; headerTimeouts moves the read deadline to
		// ReadTimeout once the headers are in. No WriteTimeout: it would
		// cut streams (limitWrites sets the deadline per answer).
		ReadTimeout:  cfg.HeaderTimeout,
		IdleTimeout:  cfg.IdleTimeout,
		ErrorHandler: errorHandler(deps.Log),
		JSONEncoder:  gojson.Marshal,
		// X-Forwarded-Proto (HSTS, c.Protocol) is believed only from these.
		EnableTrustedProxyCheck: true,
		TrustedProxies:          cfg.TrustedProxies,
	})
	s.app.Server().HeaderReceived = headerTimeouts(cfg.ReadTimeout)
	s.routes()
	return s
}

// routes registers every route. openapi.json documents each of them; a
// test keeps the two in step.
func (s *Server) routes() {
	app := s.app
	s.deps.Accounts = s.deps.Accounts.withDefaults(s.deps.Pool)
	app.Use(securityHeaders(s.cfg))
	app.Use(limitWrites(s.cfg.WriteTimeout))
	if len(s.cfg.CORSOrigins) > 0 {
		app.Use(corsPolicy(s.cfg.CORSOrigins))
	}
	app.Use(recover.New())
	app.Use(withRequestID)
	app.Use(newHTTPMetrics(s.deps.Registry).middleware)
	app.Use(s.limitBodies)
	app.Get("/healthz", s.healthz)
	app.Get("/readyz", s.readyz)
	app.Get("/metrics", s.metrics())
	// The API description is public: registered before the authenticated group.
	app.Get("/api/v1/openapi.json", s.openAPI)
	// Signing in is what an unauthenticated caller does.
	app.Post("/api/v1/session", s.signIn)
	app.Post("/api/v1/users", s.signUp)

	v1 := app.Group("/api/v1", s.authenticate)
	v1.Delete("/session", s.signOut)
	v1.Get("/me", s.me)
	v1.Post("/tokens", s.createToken)
	v1.Get("/tokens", s.listTokens)
	v1.Delete("/tokens/:id", s.revokeToken)
	v1.Post("/documents", s.upload)
	v1.Get("/documents", s.listDocuments)
	v1.Get("/documents/:id", s.getDocument)
	v1.Delete("/documents/:id", s.deleteDocument)
	v1.Get("/documents/:id/assessment", s.getAssessment)
	v1.Get("/documents/:id/history", s.history)
	v1.Get("/documents/:id/text", s.text)
	v1.Get("/documents/:id/original", s.original)
	v1.Get("/documents/:id/events", s.documentEvents)
	v1.Post("/documents/:id/reanalyze", s.reanalyze)
	v1.Get("/assessments/export", s.exportDownload)
	v1.Post("/assessments/export", s.exportToStore)
	v1.Get("/exports/:id", s.getExport)
	v1.Get("/stats", s.stats)
	v1.Post("/chat/sessions", s.createChatSession)
	v1.Get("/chat/sessions", s.listChatSessions)
	v1.Get("/chat/sessions/:id", s.getChatSession)
	v1.Delete("/chat/sessions/:id", s.deleteChatSession)
	v1.Post("/chat/sessions/:id/messages", s.postChatMessage)
	v1.Post("/chat/sessions/:id/messages/:answer_id/regenerate", s.regenerateChatAnswer)
	v1.Get("/chat/sessions/:id/events", s.chatEvents)
	v1.Get("/events", s.ownerEvents)
	v1.Get("/me/preferences", s.getPreferences)
	v1.Put("/me/preferences", s.putPreferences)

	// The web application: its files, then its pages for whatever no
	// route above answers.
	app.Get(web.AssetsPath+"*", s.site.Asset)
	app.Use(s.pages)
}

// pages answers GET and HEAD of a client route with the web application's
// shell. Anything else goes on to the router's own 404 or 405: a Use
// handler is not a route, so an unknown /api/ path is still no-route, and
// a known one asked with another method still method-not-allowed.
func (s *Server) pages(c *fiber.Ctx) error {
	if (c.Method() != fiber.MethodGet && c.Method() != fiber.MethodHead) || !web.IsPage(c.Path()) {
		return c.Next()
	}
	return s.site.Page(c)
}

// App exposes the Fiber app for in-process tests (app.Test).
func (s *Server) App() *fiber.App { return s.app }

// Addr is the address the API listens on.
func (s *Server) Addr() string { return s.deps.Listener.Addr().String() }

// Run answers on the listener of Deps until ctx ends, then shuts down
// gracefully, in the order a load balancer needs: /readyz turns 503 and
// stays so for ShutdownDelay while requests are still served, then the
// listener closes, open SSE streams end with a retry hint (clients resume
// on another replica with Last-Event-ID), and in-flight requests finish
// within shutdown.Drain(ctx) (the process's share of SHUTDOWN_GRACE).
func (s *Server) Run(ctx context.Context) error {
	ln := s.deps.Listener
	if ln == nil {
		return errors.New("api: no listener in Deps")
	}
	if err := s.checkListener(ln); err != nil {
		return err
	}
	if s.deps.Quota == nil {
		return errors.New("api: no limits store in Deps (quota.Open)")
	}
	once := &closeOnce{Listener: ln}
	errc := make(chan error, 1)
	go func() { errc <- s.app.Listener(lingerListener{once}) }()
	s.deps.Log.Info().Str("addr", ln.Addr().String()).Msg("api listening")
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	start := time.Now()
	s.stopping.Store(true)
	s.deps.Log.Info().Dur("delay", s.cfg.ShutdownDelay).Msg("api stopping: not ready; still serving until the delay ends")
	time.Sleep(s.cfg.ShutdownDelay)
	_ = once.Close() // no new connections: clients go to another replica
	s.stop()         // open SSE streams end now, with a retry hint
	err := s.app.ShutdownWithTimeout(shutdown.Drain(ctx, 10*time.Second))
	s.deps.Log.Info().Dur("took", time.Since(start)).Err(err).Msg("api stopped")
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}

// closeOnce is a listener that Run closes before fasthttp's shutdown
// does, to end SSE streams between the two: fasthttp stops at the error
// of a second Close.
type closeOnce struct {
	net.Listener
	once sync.Once
	err  error
}

func (l *closeOnce) Close() error {
	l.once.Do(func() { l.err = l.Listener.Close() })
	return l.err
}
