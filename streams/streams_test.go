package streams_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aiprism/prism/platform/blob"
	"github.com/aiprism/prism/platform/shutdown"
	"github.com/aiprism/prism/platform/testenv"
	"github.com/aiprism/prism/streams"
	"github.com/aiprism/prism/streams/streamstest"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

func startJS(t *testing.T) jetstream.JetStream {
	t.Helper()
	ctx := context.Background()
	_, _, js := testenv.NATS(t)
	if err := streams.Setup(ctx, js, streams.DefaultTopology()); err != nil {
		t.Fatal(err)
	}
	// Applying the definitions twice must be harmless: setup runs again
	// on every deployment.
	if err := streams.Setup(ctx, js, streams.DefaultTopology()); err != nil {
		t.Fatal(err)
	}
	return js
}

func meta(doc string) streams.Meta {
	return streams.Meta{Owner: "alice", DocumentID: doc, Run: 1, CorrelationID: "corr-" + doc}
}

func publishUploaded(t *testing.T, pub *streams.Publisher, doc string) *streams.Event {
	t.Helper()
	ev, err := pub.Emit(context.Background(), meta(doc), streams.Uploaded, "", streams.UploadedData{Filename: "a.txt"})
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

// createConsumer makes c with admin rights, as `prism setup` does; the
// runner only binds.
func createConsumer(t *testing.T, js jetstream.JetStream, c streams.Consumer) {
	t.Helper()
	if _, err := c.Create(context.Background(), js); err != nil {
		t.Fatal(err)
	}
}

// testConsumer is the extractor's consumer with short timings for tests.
func testConsumer() streams.Consumer {
	c := streams.ExtractorConsumer
	c.Name = "test-stage"
	c.AckWait = time.Second
	c.MaxDeliver = 3
	return c
}

func runInBackground(t *testing.T, js jetstream.JetStream, c streams.Consumer, h streams.Handler, conc int) context.CancelFunc {
	t.Helper()
	createConsumer(t, js, c)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- streams.Run(ctx, js, c, h, streams.RunnerOptions{
			Concurrency: conc,
			Log:         zerolog.New(zerolog.NewTestWriter(t)),
			Publisher:   streams.NewPublisher(js, "/test"),
			Backoff:     func(uint64) time.Duration { return 50 * time.Millisecond },
		})
	}()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("run: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Error("runner did not drain")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func TestDuplicatePublishIsStoredOnce(t *testing.T) {
	js := startJS(t)
	pub := streams.NewPublisher(js, "/test")
	first := publishUploaded(t, pub, "doc1")
	second := publishUploaded(t, pub, "doc1")
	if first.ID != second.ID || first.Seq != second.Seq {
		t.Fatalf("duplicate stored twice: %s@%d vs %s@%d", first.ID, first.Seq, second.ID, second.Seq)
	}
	info, err := js.Stream(context.Background(), streams.DocsStream)
	if err != nil {
		t.Fatal(err)
	}
	if n := info.CachedInfo().State.Msgs; n != 1 {
		t.Fatalf("stream holds %d messages, want 1", n)
	}
}

func TestRunnerAcksAfterSuccessAndBoundsConcurrency(t *testing.T) {
	js := startJS(t)
	pub := streams.NewPublisher(js, "/test")
	var inflight, peak, handled atomic.Int32
	h := func(ctx context.Context, ev *streams.Event) error {
		n := inflight.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(50 * time.Millisecond)
		inflight.Add(-1)
		handled.Add(1)
		return nil
	}
	runInBackground(t, js, testConsumer(), h, 3)
	for i := range 12 {
		publishUploaded(t, pub, "doc"+string(rune('a'+i)))
	}
	testenv.Eventually(t, 10*time.Second, "12 events handled", func() bool { return handled.Load() == 12 })
	if p := peak.Load(); p > 3 {
		t.Fatalf("peak concurrency %d, want <= 3", p)
	}
	cons, _ := js.Consumer(context.Background(), streams.DocsStream, "test-stage")
	testenv.Eventually(t, 5*time.Second, "all acked", func() bool {
		info, err := cons.Info(context.Background())
		return err == nil && info.NumAckPending == 0 && info.NumPending == 0
	})
}

func TestRunnerRetriesTransientErrors(t *testing.T) {
	js := startJS(t)
	pub := streams.NewPublisher(js, "/test")
	var calls atomic.Int32
	h := func(ctx context.Context, ev *streams.Event) error {
		if calls.Add(1) == 1 {
			return errors.New("s3 unavailable")
		}
		return nil
	}
	runInBackground(t, js, testConsumer(), h, 1)
	publishUploaded(t, pub, "doc1")
	testenv.Eventually(t, 5*time.Second, "second delivery", func() bool { return calls.Load() == 2 })
	time.Sleep(300 * time.Millisecond)
	if c := calls.Load(); c != 2 {
		t.Fatalf("handled %d times, want 2", c)
	}
	if f := streamstest.Failures(t, js, "doc1"); len(f) != 0 {
		t.Fatalf("unexpected failed events: %+v", f)
	}
}

func TestRunnerPermanentErrorPublishesFailedAndDeadLetters(t *testing.T) {
	js := startJS(t)
	pub := streams.NewPublisher(js, "/test")
	var calls atomic.Int32
	h := func(ctx context.Context, ev *streams.Event) error {
		calls.Add(1)
		return streams.Permanentf("invalid-utf8", "file is not valid UTF-8 at byte %d", 7)
	}
	runInBackground(t, js, testConsumer(), h, 1)
	publishUploaded(t, pub, "doc1")
	var failed []streams.FailedData
	testenv.Eventually(t, 5*time.Second, "failed event", func() bool { failed = streamstest.Failures(t, js, "doc1"); return len(failed) == 1 })
	if f := failed[0]; f.Stage != streams.StageExtract || f.ReasonClass != "invalid-utf8" || f.Reason != "file is not valid UTF-8 at byte 7" {
		t.Fatalf("failed event = %+v", f)
	}
	testenv.Eventually(t, 5*time.Second, "terminated advisory in DLQ", func() bool { return streamstest.DeadLetters(t, js) == 1 })
	time.Sleep(200 * time.Millisecond)
	if c := calls.Load(); c != 1 {
		t.Fatalf("permanent error handled %d times, want 1", c)
	}
}

func TestRunnerGivesUpAfterMaxDeliver(t *testing.T) {
	js := startJS(t)
	pub := streams.NewPublisher(js, "/test")
	var calls atomic.Int32
	h := func(ctx context.Context, ev *streams.Event) error {
		calls.Add(1)
		return errors.New("still broken")
	}
	runInBackground(t, js, testConsumer(), h, 1)
	publishUploaded(t, pub, "doc1")
	var failed []streams.FailedData
	testenv.Eventually(t, 5*time.Second, "failed event", func() bool { failed = streamstest.Failures(t, js, "doc1"); return len(failed) == 1 })
	if f := failed[0]; f.ReasonClass != "gave-up" || f.Attempts != 3 {
		t.Fatalf("failed event = %+v", f)
	}
	if c := calls.Load(); c != 3 {
		t.Fatalf("handled %d times, want MaxDeliver=3", c)
	}
	testenv.Eventually(t, 5*time.Second, "the given-up event dead-lettered", func() bool { return streamstest.DeadLetters(t, js) == 1 })
}

// Waiting (a RetryError with a delay, as the analyzer's "every model is
// busy") is not failing: with MaxDeliver unlimited, an event is delivered
// as often as it must wait, and given up only when older than MaxAge.
func TestRunnerGivesUpWaitingByAgeNotByCount(t *testing.T) {
	js := startJS(t)
	pub := streams.NewPublisher(js, "/test")
	var calls atomic.Int32
	h := func(ctx context.Context, ev *streams.Event) error {
		calls.Add(1)
		return streams.RetryAfter(20*time.Millisecond, errors.New("every model is busy"))
	}
	c := testConsumer()
	c.MaxDeliver, c.MaxAge = -1, 2*time.Second
	runInBackground(t, js, c, h, 1)
	publishUploaded(t, pub, "doc1")
	var failed []streams.FailedData
	testenv.Eventually(t, 10*time.Second, "failed event", func() bool { failed = streamstest.Failures(t, js, "doc1"); return len(failed) == 1 })
	if f := failed[0]; f.ReasonClass != "gave-up" || !strings.Contains(f.Reason, "capacity") || strings.Contains(f.Reason, "every model is busy") || f.Attempts < 10 {
		t.Fatalf("failed event = %+v, want gave-up after many waits", f)
	}
	if n := calls.Load(); n < 10 {
		t.Fatalf("delivered %d times in 2 s of 20 ms waits", n)
	}
}

func TestRunnerHeartbeatsKeepLongWorkFromRedelivery(t *testing.T) {
	js := startJS(t)
	pub := streams.NewPublisher(js, "/test")
	var calls atomic.Int32
	h := func(ctx context.Context, ev *streams.Event) error {
		calls.Add(1)
		time.Sleep(2500 * time.Millisecond) // 2.5 x AckWait
		return nil
	}
	runInBackground(t, js, testConsumer(), h, 2)
	publishUploaded(t, pub, "doc1")
	time.Sleep(3 * time.Second)
	if c := calls.Load(); c != 1 {
		t.Fatalf("long work delivered %d times, want 1", c)
	}
}

func TestRunnerDrainsInFlightWorkOnShutdown(t *testing.T) {
	js := startJS(t)
	pub := streams.NewPublisher(js, "/test")
	started := make(chan struct{})
	var finished atomic.Bool
	h := func(ctx context.Context, ev *streams.Event) error {
		close(started)
		time.Sleep(300 * time.Millisecond)
		finished.Store(true)
		return ctx.Err()
	}
	stop := runInBackground(t, js, testConsumer(), h, 1)
	publishUploaded(t, pub, "doc1")
	<-started
	stop()
	if !finished.Load() {
		t.Fatal("runner returned before in-flight work finished")
	}
	cons, _ := js.Consumer(context.Background(), streams.DocsStream, "test-stage")
	info, err := cons.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.NumAckPending != 0 || info.AckFloor.Stream != 1 {
		t.Fatalf("in-flight event not acked on drain: %+v", info)
	}
}

// Work cut short by a shutdown is never the document's failure, even when
// the handler reports its cancellation as permanent: the event is kept and
// handled by the next runner. Both kinds of consumer: a stage's (which
// publishes document.failed) and a projector's (which does not).
func TestRunnerNeverFailsWorkCutShortByShutdown(t *testing.T) {
	for _, publishes := range []bool{true, false} {
		t.Run(fmt.Sprintf("publishes failures %v", publishes), func(t *testing.T) {
			js := startJS(t)
			pub := streams.NewPublisher(js, "/test")
			c := testConsumer()
			c.PublishFailures = publishes
			createConsumer(t, js, c)
			started := make(chan struct{})
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() {
				done <- streams.Run(ctx, js, c, func(ctx context.Context, ev *streams.Event) error {
					close(started)
					<-ctx.Done()
					return streams.Permanent("canceled", ctx.Err()) // a stage that misreads its cancellation
				}, streams.RunnerOptions{
					Log: zerolog.New(zerolog.NewTestWriter(t)), Publisher: pub, DrainTimeout: 50 * time.Millisecond,
					Backoff: func(uint64) time.Duration { return 50 * time.Millisecond },
				})
			}()
			publishUploaded(t, pub, "doc1")
			<-started
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if f := streamstest.Failures(t, js, "doc1"); len(f) != 0 || streamstest.DeadLetters(t, js) != 0 {
				t.Fatalf("shutdown failed the document: failed events %+v, %d dead letters", f, streamstest.DeadLetters(t, js))
			}
			var handled atomic.Int32
			runInBackground(t, js, c, func(context.Context, *streams.Event) error { handled.Add(1); return nil }, 1)
			testenv.Eventually(t, 5*time.Second, "the event handled by the next runner", func() bool { return handled.Load() == 1 })
		})
	}
}

func TestRunnerTerminatesEnvelopeThatDisagreesWithSubject(t *testing.T) {
	js := startJS(t)
	ev, err := streams.NewEvent("/test", meta("doc1"), streams.Uploaded, "", streams.UploadedData{})
	if err != nil {
		t.Fatal(err)
	}
	ev.Owner = "mallory"
	raw, _ := json.Marshal(ev)
	if _, err := js.Publish(context.Background(), streams.DocSubject("alice", "doc1", streams.Uploaded), raw); err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int32
	runInBackground(t, js, testConsumer(), func(context.Context, *streams.Event) error { calls.Add(1); return nil }, 1)
	testenv.Eventually(t, 5*time.Second, "dead letter", func() bool { return streamstest.DeadLetters(t, js) == 1 })
	if calls.Load() != 0 {
		t.Fatal("handler saw a forged envelope")
	}
}

// An owner or document id that is a subject token but not a valid id
// (it may hold '@', '/', non-ASCII letters...) never reaches a handler: it
// would end up in object keys and database rows.
func TestParseEventRefusesInvalidIDs(t *testing.T) {
	good, err := streams.NewEvent("/test", meta("doc1"), streams.Uploaded, "", streams.UploadedData{})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []streams.Meta{{Owner: "al@ice", DocumentID: "doc1"}, {Owner: "alice", DocumentID: "doc/1"}, {Owner: "ålice", DocumentID: "doc1"}} {
		ev := *good
		ev.Owner, ev.Subject = m.Owner, m.DocumentID
		raw, _ := json.Marshal(ev)
		if _, err := streams.ParseEvent(streams.DocSubject(m.Owner, m.DocumentID, streams.Uploaded), raw); err == nil {
			t.Errorf("event of owner %q, document %q accepted", m.Owner, m.DocumentID)
		}
	}
	raw, _ := json.Marshal(good)
	if _, err := streams.ParseEvent(good.NATSSubject(), raw); err != nil {
		t.Fatalf("a valid event refused: %v", err)
	}
}

// Object keys follow the owner rule of subjects: blob.OwnedBy restates
// ValidToken, and the two must agree on every id.
func TestObjectOwnershipFollowsTheIDRule(t *testing.T) {
	for _, owner := range []string{"alice", "a_b", "_x", "A-9", strings.Repeat("a", streams.MaxTokenLen),
		"", "a.b", "a*", "a>", "a b", "a\tb", "al@ice", "ålice", "a/b", strings.Repeat("a", streams.MaxTokenLen+1)} {
		valid := streams.ValidToken(owner) == nil
		if owned := blob.OwnedBy(blob.TextKey(owner, "doc1", "1"), owner); owned != valid {
			t.Errorf("owner %q: valid id %v, but owns its own keys %v", owner, valid, owned)
		}
	}
}

func TestSubjectsAndIDs(t *testing.T) {
	if err := streams.ValidToken("a.b"); err == nil {
		t.Fatal("dot accepted in id")
	}
	if err := streams.ValidToken("*"); err == nil {
		t.Fatal("wildcard accepted in id")
	}
	owner, doc, typ, err := streams.ParseDocSubject(streams.DocSubject("u1", "d1", streams.Analyzed))
	if err != nil || owner != "u1" || doc != "d1" || typ != streams.Analyzed {
		t.Fatalf("round trip: %s %s %s %v", owner, doc, typ, err)
	}
	if id := streams.EventID(streams.Meta{DocumentID: "d1", Run: 2}, streams.Progress, "chunk-3"); id != "d1:2:progress:chunk-3" {
		t.Fatalf("event id = %s", id)
	}
}

func TestFollowReplaysThenGoesLiveAndResumes(t *testing.T) {
	js := startJS(t)
	pub := streams.NewPublisher(js, "/test")
	ctx := context.Background()
	first := publishUploaded(t, pub, "doc1")
	publishUploaded(t, pub, "doc2") // another document: never seen by doc1's follower

	f, err := streams.Follow(ctx, js, streams.DocumentFilter("alice", "doc1"), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ev, err := f.Next(ctx, 2*time.Second)
	if err != nil || ev.ID != first.ID || ev.Seq != first.Seq {
		t.Fatalf("replay: %+v %v", ev, err)
	}
	if _, err := f.Next(ctx, 100*time.Millisecond); err != streams.ErrIdle {
		t.Fatalf("want idle, got %v", err)
	}
	live, err := pub.Emit(ctx, meta("doc1"), streams.Extracted, "", streams.ExtractedData{Words: 3})
	if err != nil {
		t.Fatal(err)
	}
	ev, err = f.Next(ctx, 2*time.Second)
	if err != nil || ev.ID != live.ID {
		t.Fatalf("live: %+v %v", ev, err)
	}

	// Resuming after the first event yields exactly the rest.
	r, err := streams.Follow(ctx, js, streams.DocumentFilter("alice", "doc1"), first.Seq)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ev, err = r.Next(ctx, 2*time.Second)
	if err != nil || ev.ID != live.ID {
		t.Fatalf("resume: %+v %v", ev, err)
	}

	ok, err := streams.NewLog(js).DocumentExists(ctx, "alice", "doc1")
	if err != nil || !ok {
		t.Fatalf("exists: %v %v", ok, err)
	}
	ok, err = streams.NewLog(js).DocumentExists(ctx, "bob", "doc1")
	if err != nil || ok {
		t.Fatalf("another owner's document must not exist for bob: %v %v", ok, err)
	}
}

func TestLastSeqAndEmitted(t *testing.T) {
	js := startJS(t)
	log := streams.NewLog(js)
	pub := streams.NewPublisher(js, "/test")
	ctx := context.Background()
	publishUploaded(t, pub, "doc1")
	publishUploaded(t, pub, "doc2")
	last, err := pub.Emit(ctx, meta("doc1"), streams.Extracted, "", streams.ExtractedData{})
	if err != nil {
		t.Fatal(err)
	}
	if seq, err := log.LastSeq(ctx, "alice", "doc1"); err != nil || seq != last.Seq {
		t.Fatalf("LastSeq = %d, %v; want %d", seq, err, last.Seq)
	}
	if seq, _ := log.LastSeq(ctx, "alice", "nope"); seq != 0 {
		t.Fatalf("LastSeq of an unknown document = %d", seq)
	}
	if ok, _ := log.Emitted(ctx, meta("doc1"), streams.Extracted); !ok {
		t.Fatal("Emitted misses an emitted event")
	}
	if ok, _ := log.Emitted(ctx, meta("doc2"), streams.Extracted); ok {
		t.Fatal("Emitted reports an event that was never emitted")
	}
	run2 := meta("doc1")
	run2.Run = 2
	if ok, _ := log.Emitted(ctx, run2, streams.Extracted); ok {
		t.Fatal("a run-1 event must not count for run 2")
	}
}

func TestRunBatchCommitsTogetherAndIsolatesABadEvent(t *testing.T) {
	js := startJS(t)
	pub := streams.NewPublisher(js, "/test")
	for i := range 30 {
		publishUploaded(t, pub, fmt.Sprintf("doc%c%d", 'a'+i%26, i/26))
	}
	var mu sync.Mutex
	var batches []int
	var singles []string
	batch := func(ctx context.Context, evs []*streams.Event) error {
		mu.Lock()
		defer mu.Unlock()
		for _, ev := range evs {
			if ev.Subject == "docc0" {
				return errors.New("one bad event spoils the batch")
			}
		}
		batches = append(batches, len(evs))
		return nil
	}
	single := func(ctx context.Context, ev *streams.Event) error {
		mu.Lock()
		defer mu.Unlock()
		if ev.Subject == "docc0" {
			return streams.Permanentf("bad", "cannot project")
		}
		singles = append(singles, ev.Subject)
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := testConsumer()
	c.PublishFailures = false
	createConsumer(t, js, c)
	done := make(chan error, 1)
	go func() {
		done <- streams.RunBatch(ctx, js, c, batch, single, streams.BatchOptions{
			RunnerOptions: streams.RunnerOptions{Log: zerolog.New(zerolog.NewTestWriter(t))},
			Size:          10, Wait: 20 * time.Millisecond,
		})
	}()
	testenv.Eventually(t, 5*time.Second, "every event handled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		n := len(singles)
		for _, b := range batches {
			n += b
		}
		return n == 29
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(batches) == 0 || len(singles) == 0 || len(singles) > 10 {
		t.Fatalf("batches %v, singles %v: want batches, and only the spoiled batch retried one by one", batches, singles)
	}
	testenv.Eventually(t, 5*time.Second, "the bad event dead-lettered", func() bool { return streamstest.DeadLetters(t, js) == 1 })
}

func TestEnsureStreamsLeavesAMatchingStreamAlone(t *testing.T) {
	ctx := context.Background()
	_, nc, js := testenv.NATS(t)
	if err := streams.EnsureStreams(ctx, js, streams.DefaultTopology()); err != nil {
		t.Fatal(err)
	}
	updates, err := nc.SubscribeSync("$JS.EVENT.ADVISORY.STREAM.UPDATED.>")
	if err != nil {
		t.Fatal(err)
	}
	// Roles starting again with the same definitions change nothing.
	for range 3 {
		if err := streams.EnsureStreams(ctx, js, streams.DefaultTopology()); err != nil {
			t.Fatal(err)
		}
	}
	if msg, err := updates.NextMsg(300 * time.Millisecond); err == nil {
		t.Fatalf("an unchanged stream was updated: %s", msg.Data)
	}
	// A changed setting is applied.
	top := streams.DefaultTopology()
	top.MaxAge = time.Hour
	if err := streams.EnsureStreams(ctx, js, top); err != nil {
		t.Fatal(err)
	}
	if _, err := updates.NextMsg(2 * time.Second); err != nil {
		t.Fatal("a changed setting was not applied")
	}
	s, _ := js.Stream(ctx, streams.DocsStream)
	if s.CachedInfo().Config.MaxAge != time.Hour {
		t.Fatalf("MaxAge not updated: %v", s.CachedInfo().Config.MaxAge)
	}
}

// A runner told to stop while it holds events hands them back at once:
// another replica on the same consumer gets them well before AckWait (30 s
// here) and before the stopping runner's backoff (20 s), and the stopping
// runner starts nothing it had fetched but not begun. The drain time comes
// from the context, as SHUTDOWN_GRACE sets it for a role process.
func TestRunnerHandsBackHeldEventsAtOnceOnShutdown(t *testing.T) {
	js := startJS(t)
	pub := streams.NewPublisher(js, "/test")
	c := testConsumer()
	c.AckWait = 30 * time.Second
	createConsumer(t, js, c)
	var startedA atomic.Int32
	held := make(chan struct{}, 16)
	ctx, cancel := context.WithCancel(shutdown.WithDrain(context.Background(), 200*time.Millisecond))
	done := make(chan error, 1)
	go func() {
		done <- streams.Run(ctx, js, c, func(ctx context.Context, ev *streams.Event) error {
			startedA.Add(1)
			held <- struct{}{}
			<-ctx.Done() // a model call longer than the grace
			return ctx.Err()
		}, streams.RunnerOptions{
			Concurrency: 4, Log: zerolog.New(zerolog.NewTestWriter(t)), Publisher: pub,
			Backoff: func(uint64) time.Duration { return 20 * time.Second },
		})
	}()
	for i := range 8 {
		publishUploaded(t, pub, fmt.Sprintf("doc%d", i))
	}
	for range 4 {
		select {
		case <-held:
		case err := <-done:
			t.Fatalf("the runner stopped before holding four events: %v", err)
		case <-time.After(30 * time.Second):
			t.Fatalf("the runner holds %d events after 30s, want 4", startedA.Load())
		}
	}
	time.Sleep(200 * time.Millisecond) // the runner's client buffer fills behind the held event
	var handledB sync.Map
	var countB atomic.Int32
	runInBackground(t, js, c, func(_ context.Context, ev *streams.Event) error {
		if _, dup := handledB.LoadOrStore(ev.Subject, true); !dup {
			countB.Add(1)
		}
		return nil
	}, 4)
	stoppedAt := time.Now()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if took := time.Since(stoppedAt); took > 2*time.Second {
		t.Fatalf("the stopping runner took %s to return, with a 200ms drain", took)
	}
	testenv.Eventually(t, 3*time.Second, "every event handled by the other runner", func() bool { return countB.Load() == 8 })
	if took := time.Since(stoppedAt); took > 3*time.Second {
		t.Fatalf("handed-back events reached the other runner after %s: not at once", took)
	}
	if n := startedA.Load(); n != 4 {
		t.Fatalf("the stopping runner started %d events, want only the four it held", n)
	}
}
