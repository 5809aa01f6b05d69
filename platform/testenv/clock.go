package testenv

import (
	"sync"
	"time"
)

// Clock is a time a test moves by hand, for code that takes a clock
// (func() time.Time) to measure lifetimes and delays: a test crosses
// hours in a moment and lands exactly on a boundary.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a Clock set to the wall clock's now.
func NewClock() *Clock { return &Clock{now: time.Now()} }

// Now is the clock's time; pass the method value as the clock.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Add moves the clock by d (backwards when d < 0).
func (c *Clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}
