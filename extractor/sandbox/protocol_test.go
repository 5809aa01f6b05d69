package sandbox

import (
	"testing"
	"time"

	"github.com/aiprism/prism/extractor/reason"
)

// TestGarbageFromALiveWorkerEndsAtOnce: a worker that answers outside the
// protocol and keeps running (one that would serve more documents) is
// ended when its answer is read, not when the wall clock runs out.
func TestGarbageFromALiveWorkerEndsAtOnce(t *testing.T) {
	const wall = 30 * time.Second
	start := time.Now()
	testWorkerFailure(t, "garbage-stays", reason.WorkerCrashed, 3, func(c *Config) { c.Timeout = wall })
	if took := time.Since(start); took > wall/3 {
		t.Fatalf("a garbage answer took %s to end the document, as long as the wall clock (%s)", took.Round(time.Millisecond), wall)
	}
}
