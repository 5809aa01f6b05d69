package bedrocksim

import (
	"sync"
	"time"
)

// bucket is a token bucket refilled continuously at rate per second up to
// capacity. It is lazy: it catches up with the clock whenever it is used, so
// an injected clock controls refill exactly.
type bucket struct {
	capacity, level, rate float64
	last                  time.Time
}

func newBucket(perMinute int, now time.Time) bucket {
	c := float64(perMinute)
	return bucket{capacity: c, level: c, rate: c / 60, last: now}
}

func (b *bucket) refill(now time.Time) {
	if dt := now.Sub(b.last).Seconds(); dt > 0 {
		b.level = min(b.capacity, b.level+dt*b.rate)
	}
	b.last = now
}

// limiter enforces one model's quotas. Tokens are reserved when a request
// starts (input + burndown × max output) and settled when it ends, giving
// back what the answer did not use, which is how Bedrock accounts them.
type limiter struct {
	mu       sync.Mutex
	requests bucket
	tokens   bucket
	perDay   int
	day      string
	dayUsed  int
}

func newLimiter(m Model, now time.Time) *limiter {
	return &limiter{requests: newBucket(m.RequestsPerMinute, now), tokens: newBucket(m.TokensPerMinute, now), perDay: m.TokensPerDay}
}

// reserve takes one request and n quota tokens, or explains why not.
func (l *limiter) reserve(now time.Time, n int) *apiError {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.requests.refill(now)
	l.tokens.refill(now)
	if day := now.UTC().Format(time.DateOnly); day != l.day {
		l.day, l.dayUsed = day, 0
	}
	switch {
	case l.requests.level < 1:
		return errThrottle("requests", msgTooManyRequests)
	case l.tokens.level < float64(n):
		return errThrottle("tokens", msgTooManyTokens)
	case l.perDay > 0 && l.dayUsed+n > l.perDay:
		return errQuota()
	}
	l.requests.level--
	l.tokens.level -= float64(n)
	l.dayUsed += n
	return nil
}

// settle corrects a reservation of reserved tokens to the used amount.
func (l *limiter) settle(now time.Time, reserved, used int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.tokens.refill(now)
	diff := float64(reserved - used)
	l.tokens.level = min(l.tokens.capacity, l.tokens.level+diff)
	l.dayUsed = max(0, l.dayUsed-(reserved-used))
}

// reset refills both buckets (POST /_sim/reset).
func (l *limiter) reset(now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.requests.level, l.requests.last = l.requests.capacity, now
	l.tokens.level, l.tokens.last = l.tokens.capacity, now
	l.dayUsed = 0
}
