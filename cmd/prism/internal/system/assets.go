package system

import (
	"context"
	"fmt"

	"github.com/aiprism/prism/analyzer"
	"github.com/aiprism/prism/api"
	"github.com/aiprism/prism/platform/config"
	"github.com/aiprism/prism/platform/jsbind"
	"github.com/aiprism/prism/platform/quota"
	"github.com/aiprism/prism/streams"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// Assets is every JetStream asset the system uses: the streams and the
// durable consumers (streams.Setup), and the key-value buckets and
// streams of the roles, each from its package's config function. `prism setup` applies
// it with admin rights; the roles only bind to it.
type Assets struct {
	Topology streams.Topology
	Buckets  []jetstream.KeyValueConfig
	Streams  []jetstream.StreamConfig
}

// AssetsFromEnv sizes and names the assets from the variables the roles
// read: the topology (NATS_REPLICAS, NATS_DOCS_MAX_BYTES), the analyzer's
// buckets (ANALYZER_STATE_BUCKET, ANALYZER_CACHE_BUCKET,
// ANALYZER_CACHE_TTL) and the API's session lifetime (API_SESSION_MAX).
func AssetsFromEnv(l *config.Loader) Assets {
	t := NATSConfigFromEnv(l).Topology
	var buckets []jetstream.KeyValueConfig
	seen := map[string]bool{}
	// The limits bucket is both the analyzer's and the API's: one entry.
	for _, b := range append(analyzer.BucketConfigs(analyzer.ConfigFromEnv(l), t.Replicas), api.BucketConfigs(api.ConfigFromEnv(l), t.Replicas)...) {
		if !seen[b.Bucket] {
			seen[b.Bucket] = true
			buckets = append(buckets, b)
		}
	}
	// The token counts are the analyzer's (who counts) and the API's (who
	// checks), as the limits bucket is.
	return Assets{Topology: t, Buckets: buckets, Streams: []jetstream.StreamConfig{quota.UsageStreamConfig(t.Replicas)}}
}

// Apply creates or updates every asset. It is idempotent and safe to run
// from several processes at once: a deployment runs it on every release,
// before the roles.
func (a Assets) Apply(ctx context.Context, js jetstream.JetStream) error {
	if err := streams.Setup(ctx, js, a.Topology); err != nil {
		return err
	}
	if err := jsbind.CreateKeyValues(ctx, js, a.Buckets...); err != nil {
		return err
	}
	return jsbind.CreateStreams(ctx, js, a.Streams...)
}

// Names lists the assets, for the log of `prism setup`.
func (a Assets) Names() []string {
	var names []string
	for _, s := range streams.StreamConfigs(a.Topology) {
		names = append(names, "stream "+s.Name)
	}
	for _, c := range streams.Durables() {
		names = append(names, "consumer "+c.StreamName()+"/"+c.Name)
	}
	for _, b := range a.Buckets {
		names = append(names, "bucket "+b.Bucket)
	}
	for _, s := range a.Streams {
		names = append(names, "stream "+s.Name)
	}
	return names
}

// Setup is `prism setup`: it connects to NATS as configured in env (the
// admin user: NATS_USER=admin) and applies AssetsFromEnv.
func Setup(ctx context.Context, env config.Getenv, log zerolog.Logger) error {
	l := config.New(env)
	assets := AssetsFromEnv(l)
	if err := l.Err(); err != nil {
		return err
	}
	in, err := Open(ctx, env, Needs{NATS: true}, nil, log, "setup")
	if err != nil {
		return err
	}
	defer in.Close()
	if err := assets.Apply(ctx, in.JS); err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	log.Info().Strs("assets", assets.Names()).Int("replicas", assets.Topology.Replicas).Msg("JetStream assets in place")
	return nil
}
