package analyzer

import (
	"context"

	"github.com/aiprism/prism/analyzer/bedrock"
	"github.com/aiprism/prism/platform/config"
	"github.com/aiprism/prism/streams"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Config is the analyzer role's configuration.
type Config struct {
	Concurrency int
	MaxChars    int
	Model       Model
	Bedrock     bedrock.Config
}

// DefaultModelID is the primary model of the original system's chain.
const DefaultModelID = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"

// ConfigFromEnv reads ANALYZER_CONCURRENCY, ANALYZER_MAX_CHARS,
// ANALYZER_MODEL_ID, ANALYZER_MAX_OUTPUT_TOKENS and the Bedrock variables.
func ConfigFromEnv(l *config.Loader) Config {
	return Config{
		Concurrency: l.Int("ANALYZER_CONCURRENCY", 16, 1, 1024),
		MaxChars:    l.Int("ANALYZER_MAX_CHARS", 2_000_000, 1000, 100_000_000),
		Model: Model{
			ID:              l.String("ANALYZER_MODEL_ID", DefaultModelID),
			ContextTokens:   200_000,
			MaxOutputTokens: l.Int("ANALYZER_MAX_OUTPUT_TOKENS", 4096, 256, 64_000),
			PricePer1kIn:    0.003,
			PricePer1kOut:   0.015,
		},
		Bedrock: bedrock.ConfigFromEnv(l),
	}
}

// Run consumes document.extracted until ctx ends.
func Run(ctx context.Context, cfg Config, js jetstream.JetStream, objects Objects, reg prometheus.Registerer, log zerolog.Logger) error {
	client, err := bedrock.NewClient(ctx, cfg.Bedrock)
	if err != nil {
		return err
	}
	pub := streams.NewPublisher(js, "/prism/analyzer")
	stage := NewStage(objects, client, cfg.Model, pub, cfg.MaxChars)
	return streams.Run(ctx, js, streams.AnalyzerConsumer, stage.Handle, streams.RunnerOptions{
		Concurrency: cfg.Concurrency,
		Log:         log,
		Publisher:   pub,
		Metrics:     streams.NewRunnerMetrics(reg),
	})
}
