package router_test

import (
	"context"

	"github.com/aiprism/prism/analyzer/router"
	"github.com/aiprism/prism/platform/jsbind"
	"github.com/nats-io/nats.go/jetstream"
)

// createShared makes the limiter bucket with admin rights, as `prism
// setup` does, and binds it as an analyzer does.
func createShared(ctx context.Context, js jetstream.JetStream, bucket string, replicas int, clock router.Clock) (*router.Shared, error) {
	if err := jsbind.CreateKeyValues(ctx, js, router.BucketConfig(bucket, replicas)); err != nil {
		return nil, err
	}
	return router.OpenShared(ctx, js, bucket, clock)
}
