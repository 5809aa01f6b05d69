package extractor

import (
	"context"

	"github.com/aiprism/prism/platform/config"
	"github.com/aiprism/prism/streams"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Config is the extractor role's configuration.
type Config struct {
	Concurrency int
	Limits      Limits
}

// ConfigFromEnv reads EXTRACTOR_CONCURRENCY, EXTRACTOR_MAX_INPUT_BYTES and
// EXTRACTOR_MAX_CHARS.
func ConfigFromEnv(l *config.Loader) Config {
	return Config{
		Concurrency: l.Int("EXTRACTOR_CONCURRENCY", 4, 1, 256),
		Limits: Limits{
			MaxInputBytes: l.Int64("EXTRACTOR_MAX_INPUT_BYTES", 100<<20, 1, 4<<30),
			MaxChars:      l.Int("EXTRACTOR_MAX_CHARS", 2_000_000, 1000, 100_000_000),
		},
	}
}

// Run consumes document.uploaded until ctx ends.
func Run(ctx context.Context, cfg Config, js jetstream.JetStream, objects Objects, reg prometheus.Registerer, log zerolog.Logger) error {
	pub := streams.NewPublisher(js, "/prism/extractor")
	stage := NewStage(objects, pub, cfg.Limits)
	return streams.Run(ctx, js, streams.ExtractorConsumer, stage.Handle, streams.RunnerOptions{
		Concurrency: cfg.Concurrency,
		Log:         log,
		Publisher:   pub,
		Metrics:     streams.NewRunnerMetrics(reg),
	})
}
