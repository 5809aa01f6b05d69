// Package shutdown holds what a process's roles share about stopping: the
// grace period an orchestrator allows between SIGTERM and SIGKILL
// (SHUTDOWN_GRACE), and how much of it work in hand may use. A role stops
// taking new work when its context ends, then finishes what it holds
// within Drain(ctx) or hands it back so another replica takes it at once.
package shutdown

import (
	"context"
	"time"

	"github.com/aiprism/prism/platform/config"
)

// DefaultGrace fits inside Kubernetes' default 30 s
// terminationGracePeriodSeconds, with time left for the SIGKILL race.
const DefaultGrace = 25 * time.Second

// GraceFromEnv reads SHUTDOWN_GRACE: how long a process may take to stop
// once told to.
func GraceFromEnv(l *config.Loader) time.Duration {
	return l.Duration("SHUTDOWN_GRACE", DefaultGrace, 100*time.Millisecond, 10*time.Minute)
}

// DrainOf is the part of grace that work in hand may use before it is
// cut short: the rest is kept for handing back what did not finish (a
// NAK, a last SSE frame) and closing connections.
func DrainOf(grace time.Duration) time.Duration {
	return grace - min(grace/5, 5*time.Second)
}

type drainKey struct{}

// WithDrain records in ctx how long work may go on after ctx ends.
func WithDrain(ctx context.Context, d time.Duration) context.Context {
	return context.WithValue(ctx, drainKey{}, d)
}

// Drain is the time WithDrain recorded in ctx, or def.
func Drain(ctx context.Context, def time.Duration) time.Duration {
	if d, ok := ctx.Value(drainKey{}).(time.Duration); ok && d > 0 {
		return d
	}
	return def
}
