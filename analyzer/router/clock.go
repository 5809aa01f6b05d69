package router

import (
	"context"
	"time"
)

// Clock is the router's time source. Quota windows slide and cooldowns end
// by it, so tests and benchmarks can run minutes of quota time in seconds;
// in production it is the wall clock.
type Clock interface {
	Now() time.Time
	Sleep(ctx context.Context, d time.Duration) error
}

// WallClock is real time.
type WallClock struct{}

// Now is time.Now.
func (WallClock) Now() time.Time { return time.Now() }

// Sleep waits d or until ctx ends.
func (WallClock) Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// ScaledClock runs Factor times faster than real time from its start. Every
// process sharing limiter state must use the same start and factor.
type ScaledClock struct {
	Start  time.Time
	Factor float64
}

// Now is Start plus the real time since Start, times Factor.
func (c ScaledClock) Now() time.Time {
	return c.Start.Add(time.Duration(float64(time.Since(c.Start)) * c.Factor))
}

// Sleep waits d of scaled time.
func (c ScaledClock) Sleep(ctx context.Context, d time.Duration) error {
	return WallClock{}.Sleep(ctx, time.Duration(float64(d)/c.Factor))
}
