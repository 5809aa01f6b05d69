package streams

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

// The delivery rule as a table: no server, no sleeps. The policies are the
// stages' own consumers with the default backoff.
func TestDecide(t *testing.T) {
	extractor := policyOf(ExtractorConsumer, RunnerOptions{Backoff: DefaultBackoff}) // 5 deliveries
	analyzer := policyOf(AnalyzerConsumer, RunnerOptions{Backoff: DefaultBackoff})   // no count, 24 h
	s3down := errors.New("s3 unavailable")
	busy := RetryAfter(30*time.Second, errors.New("every model is busy"))
	bad := fmt.Errorf("stage: %w", Permanentf("invalid-utf8", "not UTF-8 at byte %d", 7))
	retry := func(d time.Duration) decision { return decision{action: actRetry, delay: d, outcome: "retry"} }
	wait := func(d time.Duration) decision { return decision{action: actRetry, delay: d, outcome: "wait"} }
	// Cut short at shutdown: a NAK without delay, for another replica.
	handback := decision{action: actRetry, outcome: "handback"}
	fail := func(class, reason string) decision {
		return decision{action: actFail, outcome: "fail", class: class, reason: reason}
	}

	for _, tc := range []struct {
		name string
		p    policy
		a    attempt
		want decision
	}{
		{"success", extractor, attempt{delivered: 1}, decision{action: actAck, outcome: "ack"}},
		{"success as the context ends: the effect is durable", extractor, attempt{canceled: true, delivered: 5}, decision{action: actAck, outcome: "ack"}},
		{"transient, first delivery", extractor, attempt{err: s3down, delivered: 1}, retry(time.Second)},
		{"transient, third delivery backs off", extractor, attempt{err: s3down, delivered: 3}, retry(4 * time.Second)},
		{"transient, before the last delivery", extractor, attempt{err: s3down, delivered: 4}, retry(8 * time.Second)},
		{"transient, last delivery gives up", extractor, attempt{err: s3down, delivered: 5},
			fail("gave-up", "Gave up after 5 attempts: it kept failing for a reason on our side, not in the document.")},
		{"permanent fails at once with its class", extractor, attempt{err: bad, delivered: 1},
			fail("invalid-utf8", "not UTF-8 at byte 7")},
		{"a permanent error's own text is not told", extractor, attempt{err: Permanent(ClassTextMissing, s3down), delivered: 1},
			fail("text-missing", "The extracted text of this document is gone.")},
		{"nor is an error formatted into a permanent one", extractor, attempt{err: Permanentf(ClassModelRejected, "model x: %w", s3down), delivered: 1},
			fail("model-rejected", "The model refused to assess this document.")},
		{"a wait asks for its own delay", extractor, attempt{err: busy, delivered: 2}, wait(30 * time.Second)},
		{"a retry without a delay backs off", extractor, attempt{err: RetryAfter(0, s3down), delivered: 2}, retry(2 * time.Second)},
		{"the analyzer waits for capacity whatever the count", analyzer, attempt{err: busy, delivered: 10_000, age: 23 * time.Hour}, wait(30 * time.Second)},
		{"the analyzer retries whatever the count", analyzer, attempt{err: s3down, delivered: 10_000, age: time.Hour}, retry(time.Minute)},
		{"the analyzer gives up waiting by age", analyzer, attempt{err: busy, delivered: 2880, age: 24*time.Hour + 400*time.Millisecond},
			fail("gave-up", "Gave up after 24h0m0s and 2880 attempts: it kept waiting for capacity that did not come free in time.")},
		{"the analyzer gives up retrying by age", analyzer, attempt{err: s3down, delivered: 9, age: 25 * time.Hour},
			fail("gave-up", "Gave up after 25h0m0s and 9 attempts: it kept failing for a reason on our side, not in the document.")},
		{"the analyzer still fails a permanent error at once", analyzer, attempt{err: bad, delivered: 1}, fail("invalid-utf8", "not UTF-8 at byte 7")},
		{"canceled: a permanent error is not the document's", extractor, attempt{err: bad, canceled: true, delivered: 1}, handback},
		{"canceled: the last delivery is not given up", extractor, attempt{err: s3down, canceled: true, delivered: 5}, handback},
		{"canceled: an old event is not given up", analyzer, attempt{err: busy, canceled: true, delivered: 3, age: 48 * time.Hour}, handback},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := decide(tc.p, tc.a); got != tc.want {
				t.Fatalf("decide = %+v\n         want %+v", got, tc.want)
			}
		})
	}

	if got, want := unpublished(extractor), retry(time.Second); got != want {
		t.Fatalf("unpublished failure = %+v, want %+v", got, want)
	}
}

// The server lets one delivery more through than the runner allows, so a
// last delivery cut short by a shutdown is retried rather than lost.
func TestServerAllowsOneDeliveryMoreThanTheRunner(t *testing.T) {
	for _, tc := range []struct {
		c    Consumer
		want int
	}{{ExtractorConsumer, 6}, {PersistConsumer, 21}, {AnalyzerConsumer, -1}, {Consumer{Name: "x"}, 0}} {
		if got := tc.c.Config().MaxDeliver; got != tc.want {
			t.Errorf("%s: server MaxDeliver %d, want %d", tc.c.Name, got, tc.want)
		}
	}
}
