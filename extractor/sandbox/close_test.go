package sandbox

import (
	"testing"
	"time"
)

// TestCloseWhileWorkersStart: a sandbox closed while it is still starting
// its ready workers (a process stopped right after it started) returns
// promptly. Before the fix the keeper kept starting workers that Close
// retired at once, forever, and the process never stopped.
func TestCloseWhileWorkersStart(t *testing.T) {
	for i := range 5 {
		s := newSandbox(t, func(c *Config) { c.Ready = 2 })
		closed := make(chan struct{})
		go func() { s.Close(); close(closed) }()
		select {
		case <-closed:
		case <-time.After(20 * time.Second):
			t.Fatalf("round %d: Close did not return while workers were starting", i)
		}
	}
}
