package analyzer

import (
	"context"
	"fmt"
	"time"

	"github.com/aiprism/prism/analyzer/bedrock"
	"github.com/aiprism/prism/analyzer/chat"
	"github.com/aiprism/prism/analyzer/router"
	"github.com/aiprism/prism/platform/config"
	"github.com/aiprism/prism/platform/obs"
	"github.com/aiprism/prism/platform/quota"
	"github.com/aiprism/prism/streams"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"
)

// Config is the analyzer role's configuration.
type Config struct {
	Concurrency int
	Stage       StageConfig
	Chain       router.Chain
	Router      router.Options
	Bedrock     bedrock.Config
	CacheTTL    time.Duration
	StateBucket string
	CacheBucket string
	// DailyTokensPerUser is each owner's model-token budget per UTC day
	// (input and output tokens of every call); 0 = unlimited.
	DailyTokensPerUser int64
	// ChatConcurrency is how many chat answers this process writes at
	// once, beside Concurrency documents.
	ChatConcurrency int
	Chat            chat.Config
}

// ConfigFromEnv reads ANALYZER_* and the Bedrock variables. The model chain
// is ANALYZER_MODELS_FILE (a JSON array, best model first) or the default
// seven-model chain; a bad chain stops the analyzer with a message naming
// the model and the field. ANALYZER_CACHE_SCOPE is whose documents a cached
// answer serves: owner (the default: only the owner it was given for) or
// shared (every owner; for single-tenant deployments only).
// ANALYZER_DAILY_TOKENS_PER_USER is each owner's budget of model tokens
// (input plus output) per UTC day, 0 for none: once it is spent, the
// owner's new documents fail as budget-spent without calling a model, and
// the API refuses their uploads until midnight UTC. It is counted in the
// shared limits bucket, so it holds across analyzer replicas, and
// published there for the API; chat answers count against it too.
//
// The chat answerer (analyzer/chat) writes up to ANALYZER_CHAT_CONCURRENCY
// answers at once (default 32: an answer holds its slot for the seconds
// the model writes) on the same router as the documents, so both share
// the quotas and cooldowns and chats go first when both wait. Each answer
// is grounded in up to ANALYZER_CHAT_PASSAGES passages of its document
// (default 5), carries at most ANALYZER_CHAT_HISTORY_TOKENS tokens of
// earlier turns (default 8000; less when the smallest context window of
// the chain leaves less, see the chat package's history rule) and may
// write up to ANALYZER_CHAT_MAX_OUTPUT_TOKENS tokens (default 1024).
func ConfigFromEnv(l *config.Loader) Config {
	c := Config{
		// Calls take seconds: using 7 models x 200 requests/min at ~10 s a
		// call needs ~230 in flight across replicas (Little's law).
		Concurrency: l.Int("ANALYZER_CONCURRENCY", 64, 1, 1024),
		Stage: StageConfig{
			MaxOutputTokens: l.Int("ANALYZER_MAX_OUTPUT_TOKENS", 2048, 256, 64_000),
			ChunkBytes:      l.Int("ANALYZER_CHUNK_BYTES", 400_000, 1000, 3_000_000),
			MaxChars:        l.Int("ANALYZER_MAX_CHARS", 2_000_000, 1000, 100_000_000),
			CacheScope:      l.OneOf("ANALYZER_CACHE_SCOPE", CacheScopeOwner, CacheScopeOwner, CacheScopeShared),
		},
		Router: router.Options{
			MaxWait:  l.Duration("ANALYZER_MAX_WAIT", 2*time.Second, 0, 5*time.Minute),
			Deadline: l.Duration("ANALYZER_DEADLINE", 5*time.Minute, time.Second, time.Hour),
		},
		Bedrock:            bedrock.ConfigFromEnv(l),
		CacheTTL:           l.Duration("ANALYZER_CACHE_TTL", 30*24*time.Hour, 0, 365*24*time.Hour),
		StateBucket:        l.String("ANALYZER_STATE_BUCKET", "prism_router"),
		CacheBucket:        l.String("ANALYZER_CACHE_BUCKET", "prism_results"),
		DailyTokensPerUser: l.Int64("ANALYZER_DAILY_TOKENS_PER_USER", 2_000_000, 0, 1_000_000_000_000),
		ChatConcurrency:    l.Int("ANALYZER_CHAT_CONCURRENCY", 32, 1, 1024),
		Chat: chat.Config{
			Passages:        l.Int("ANALYZER_CHAT_PASSAGES", 5, 0, 50),
			HistoryTokens:   l.Int("ANALYZER_CHAT_HISTORY_TOKENS", 8000, 0, 1_000_000),
			MaxOutputTokens: l.Int("ANALYZER_CHAT_MAX_OUTPUT_TOKENS", 1024, 64, 64_000),
		},
	}
	c.Chat.MaxChars = c.Stage.MaxChars
	c.Chain = router.DefaultChain()
	if path := l.String("ANALYZER_MODELS_FILE", ""); path != "" {
		chain, err := router.LoadChain(path)
		l.Check(err == nil, "ANALYZER_MODELS_FILE", fmt.Sprintf("a valid model chain (%v)", err))
		c.Chain = chain
	}
	return c
}

// Deps are what the analyzer role works with, opened by its caller.
type Deps struct {
	JS       jetstream.JetStream
	Objects  Objects
	Registry prometheus.Registerer
	Log      zerolog.Logger
}

// Role is the analyzer role: configured, wired, and started by Run.
type Role struct {
	cfg Config
	d   Deps
}

// BucketConfigs are the key-value buckets the analyzer binds, sized by
// replicas: `prism setup` creates them.
func BucketConfigs(cfg Config, replicas int) []jetstream.KeyValueConfig {
	return []jetstream.KeyValueConfig{
		router.BucketConfig(cfg.StateBucket, replicas),
		CacheBucketConfig(cfg.CacheBucket, replicas, cfg.CacheTTL),
		quota.BucketConfig("", replicas),
	}
}

// NewRole returns the analyzer role. It starts nothing: Run opens the
// Bedrock client, the shared router state and the cache.
func NewRole(cfg Config, d Deps) *Role { return &Role{cfg: cfg, d: d} }

// Run consumes document.extracted and chat.asked until ctx ends: both
// consumers on one router, each with its own concurrency. Either one
// failing stops the other, and Run returns the failure.
func (r *Role) Run(ctx context.Context) error {
	cfg, js, reg := r.cfg, r.d.JS, r.d.Registry
	client, err := bedrock.NewClient(ctx, cfg.Bedrock)
	if err != nil {
		return err
	}
	shared, err := router.OpenShared(ctx, js, cfg.StateBucket, nil)
	if err != nil {
		return err
	}
	rt, err := router.New(cfg.Chain, shared, client, cfg.Router, router.NewMetrics(reg))
	if err != nil {
		return fmt.Errorf("model chain: %w", err)
	}
	obs.Register(reg, prometheus.Collector(router.NewStateCollector(shared, cfg.Chain)))
	cache, err := OpenCache(ctx, js, cfg.CacheBucket)
	if err != nil {
		return err
	}
	limits, err := quota.Open(ctx, js, quota.Config{})
	if err != nil {
		return err
	}
	// Published even when unlimited, so the API stops refusing by an
	// older budget.
	budget := limits.Budget(cfg.DailyTokensPerUser)
	if err := budget.Publish(ctx); err != nil {
		return err
	}
	var opts []StageOption
	chatOpts := []chat.Option{chat.WithMetrics(chat.NewMetrics(reg))}
	if budget.Limit() > 0 {
		opts = append(opts, WithBudget(budget))
		chatOpts = append(chatOpts, chat.WithBudget(budget))
	}
	pub := streams.NewPublisher(js, "/prism/analyzer")
	stage := NewStage(r.d.Objects, rt, cache, pub, cfg.Stage, js, opts...)
	answerer := chat.New(js, r.d.Objects, rt, pub, cfg.Chat, chatOpts...)
	metrics := streams.NewRunnerMetrics(reg)
	eg, gctx := errgroup.WithContext(ctx)
	consume := func(c streams.Consumer, h streams.Handler, concurrency int) {
		eg.Go(func() error {
			err := streams.Run(gctx, js, c, h, streams.RunnerOptions{Concurrency: concurrency, Log: r.d.Log, Publisher: pub, Metrics: metrics})
			if err == nil && ctx.Err() == nil {
				// A consumer that stops by itself (deleted on the server)
				// would leave half an analyzer running.
				err = fmt.Errorf("consumer %s stopped", c.Name)
			}
			return err
		})
	}
	consume(streams.AnalyzerConsumer, stage.Handle, cfg.Concurrency)
	consume(streams.ChatConsumer, answerer.Handle, cfg.ChatConcurrency)
	return eg.Wait()
}
