// Package streamstest checks, once for every stage, the promises each
// stage makes to the pipeline (as Watermill runs one Pub/Sub test suite
// against every implementation):
//
//  1. idempotent on redelivery: the same input delivered again after its
//     effect gives no second effect;
//  2. nothing is acknowledged before its effect is durable: while the
//     effect fails, the input stays unacknowledged and comes back, and when
//     the handler returns nil the effect is there to see;
//  3. a bad payload is a permanent failure with a class: the message is
//     terminated with the class, and a stage that publishes failures says
//     so in document.failed;
//  4. a cancelled context is never a permanent failure: work cut short is
//     done again on redelivery.
//
// A stage's test builds a Stage on real infrastructure (platform/testenv)
// and calls Run. The suite drives the stage's handler through the real
// runner (streams.Run or streams.RunMessages) on the stage's own consumer.
package streamstest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aiprism/prism/platform/testenv"
	"github.com/aiprism/prism/streams"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// Owner owns every document the suite and the adapters publish.
const Owner = "alice"

// Stage is one stage as the suite drives it.
type Stage struct {
	// JS reaches the server the stage works on, with the streams in place.
	JS jetstream.JetStream
	// Consumer is the stage's durable: the suite runs the handler on it
	// and reads its state and its advisories.
	Consumer streams.Consumer
	// Handler is the handler of a DOCS stage; MsgHandler that of a stage
	// on another stream (intake). Exactly one is set.
	Handler    streams.Handler
	MsgHandler streams.MsgHandler
	// Publisher publishes document.failed when Consumer.PublishFailures.
	Publisher *streams.Publisher

	// Input publishes one valid input about document doc.
	Input func(t *testing.T, doc string)
	// Effects counts what the stage did for doc's input: output events
	// stored, rows written, deliveries under distinct ids. One once the
	// input is handled, however often it was delivered.
	Effects func(t *testing.T, doc string) int
	// Bad publishes an input about doc that no retry can handle; BadClass
	// is the failure class it must fail with.
	Bad      func(t *testing.T, doc string)
	BadClass string
	// Break makes the stage's effect fail (the store, the stream, the
	// database or the receiver refuses it) until repair is called.
	Break func(t *testing.T) (repair func())
}

// New builds a Stage on fresh infrastructure; the suite calls it once per
// case.
type New func(t *testing.T) *Stage

// backoff is the redelivery delay in the suite: long enough that a broken
// effect is seen redelivered before the stage's delivery limit, short
// enough for a quick test.
const backoff = 100 * time.Millisecond

// wait bounds every wait for an effect.
const wait = 20 * time.Second

// Run checks the four promises of the stage newStage builds.
func Run(t *testing.T, newStage New) {
	t.Run("IdempotentOnRedelivery", func(t *testing.T) { idempotentOnRedelivery(t, newStage(t)) })
	t.Run("NoAckBeforeDurableEffect", func(t *testing.T) { noAckBeforeDurableEffect(t, newStage(t)) })
	t.Run("BadPayloadFailsWithClass", func(t *testing.T) { badPayloadFailsWithClass(t, newStage(t)) })
	t.Run("CancelIsNeverPermanent", func(t *testing.T) { cancelIsNeverPermanent(t, newStage(t)) })
}

// errAckLost stands for an acknowledgement lost after the effect: the
// runner retries and the input is delivered again.
var errAckLost = errors.New("acknowledgement lost after the effect (simulated by the contract suite)")

// The first delivery is handled, then reported as failed as a lost ack
// would leave it; the redelivery must change nothing. When the handler
// first returns nil, its effect must already be there.
func idempotentOnRedelivery(t *testing.T, s *Stage) {
	adv := advisories(t, s)
	first := make(chan error)
	proceed := make(chan struct{})
	var calls atomic.Int32
	start(t, s, func(ctx context.Context, next func(context.Context) error) error {
		if calls.Add(1) > 1 {
			return next(ctx)
		}
		err := next(ctx)
		first <- err
		<-proceed
		if err == nil {
			err = errAckLost
		}
		return err
	})
	s.Input(t, "doc-redelivered")
	select {
	case err := <-first:
		close(proceed)
		if err != nil {
			t.Fatalf("first delivery: %v", err)
		}
	case <-time.After(wait):
		t.Fatal("the input was never delivered")
	}
	if n := s.Effects(t, "doc-redelivered"); n != 1 {
		t.Fatalf("when the handler returned nil, %d effects were there; want 1 (durable before the return)", n)
	}
	waitFor(t, adv, "the redelivery handled and acknowledged", func() bool { return calls.Load() >= 2 && settled(t, s) })
	if n := s.Effects(t, "doc-redelivered"); n != 1 {
		t.Fatalf("after a redelivery: %d effects, want 1", n)
	}
	nothingGivenUp(t, s, adv)
}

// While the effect fails, the input is delivered again and again and never
// acknowledged; once it works, the input has its one effect and is acked.
func noAckBeforeDurableEffect(t *testing.T, s *Stage) {
	adv := advisories(t, s)
	s.Input(t, "doc-broken")
	repair := s.Break(t)
	var calls atomic.Int32
	start(t, s, func(ctx context.Context, next func(context.Context) error) error {
		calls.Add(1)
		return next(ctx)
	})
	waitFor(t, adv, "the input delivered again while its effect fails", func() bool { return calls.Load() >= 2 })
	if i := info(t, s); i.AckFloor.Consumer != 0 {
		t.Fatalf("acknowledged while its effect fails: ack floor %+v", i.AckFloor)
	}
	if n := s.Effects(t, "doc-broken"); n != 0 {
		t.Fatalf("%d effects while the effect fails", n)
	}
	repair()
	waitFor(t, adv, "the effect once repaired", func() bool { return s.Effects(t, "doc-broken") == 1 })
	testenv.Eventually(t, wait, "the input acknowledged", func() bool { return settled(t, s) })
	if n := s.Effects(t, "doc-broken"); n != 1 {
		t.Fatalf("%d effects after repair, want 1", n)
	}
	if f := failures(t, s, "doc-broken"); len(f) != 0 {
		t.Fatalf("a transient failure published document.failed: %+v", f)
	}
	nothingGivenUp(t, s, adv)
}

// A bad input is terminated with its class, once; a stage that publishes
// failures says why in document.failed.
func badPayloadFailsWithClass(t *testing.T, s *Stage) {
	adv := advisories(t, s)
	var calls atomic.Int32
	start(t, s, func(ctx context.Context, next func(context.Context) error) error {
		calls.Add(1)
		return next(ctx)
	})
	s.Bad(t, "doc-bad")
	var got advisory
	select {
	case got = <-adv:
	case <-time.After(wait):
		t.Fatal("the bad input was never terminated")
	}
	if got.Type != terminatedType || !strings.HasPrefix(got.Reason, s.BadClass+": ") {
		t.Fatalf("advisory %+v; want terminated with reason %q...", got, s.BadClass+": ")
	}
	if n := calls.Load(); n > 1 {
		t.Fatalf("a permanent failure was handled %d times", n)
	}
	if s.Consumer.PublishFailures {
		f := failures(t, s, "doc-bad")
		if len(f) != 1 || f[0].ReasonClass != s.BadClass || f[0].Stage != s.Consumer.Stage || f[0].Reason == "" {
			t.Fatalf("document.failed events %+v; want one of class %s from stage %s", f, s.BadClass, s.Consumer.Stage)
		}
	}
	if s.Consumer.Stream == "" || s.Consumer.Stream == streams.DocsStream {
		testenv.Eventually(t, wait, "the dead letter kept", func() bool { return DeadLetters(t, s.JS) == 1 })
	}
	if n := s.Effects(t, "doc-bad"); n != 0 {
		t.Fatalf("a bad input had %d effects", n)
	}
}

// The first delivery of each input runs on a context cancelled before the
// handler starts or while it works: the handler must not call that
// permanent, and the redelivery does the work once.
func cancelIsNeverPermanent(t *testing.T, s *Stage) {
	adv := advisories(t, s)
	type cut struct {
		after time.Duration
		err   error
	}
	var (
		mu    sync.Mutex
		after time.Duration
		cuts  []cut
	)
	start(t, s, func(ctx context.Context, next func(context.Context) error) error {
		if streams.Delivery(ctx) > 1 {
			return next(ctx)
		}
		mu.Lock()
		d := after
		mu.Unlock()
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		if d == 0 {
			cancel()
		} else {
			time.AfterFunc(d, cancel)
		}
		err := next(cctx)
		mu.Lock()
		cuts = append(cuts, cut{d, err})
		mu.Unlock()
		return err
	})
	for i, d := range []time.Duration{0, 2 * time.Millisecond, 20 * time.Millisecond, 200 * time.Millisecond} {
		mu.Lock()
		after = d
		mu.Unlock()
		doc := fmt.Sprintf("doc-cancel-%d", i)
		s.Input(t, doc)
		waitFor(t, adv, fmt.Sprintf("%s handled (cancelled after %s)", doc, d), func() bool { return s.Effects(t, doc) >= 1 })
		testenv.Eventually(t, wait, doc+" acknowledged", func() bool { return settled(t, s) })
		if n := s.Effects(t, doc); n != 1 {
			t.Fatalf("cancelled after %s: %d effects, want 1", d, n)
		}
		if f := failures(t, s, doc); len(f) != 0 {
			t.Fatalf("cancelled after %s: document.failed %+v", d, f)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	var pe *streams.PermanentError
	for _, c := range cuts {
		if errors.As(c.err, &pe) {
			t.Errorf("context cancelled after %s: the handler called it permanent: %v", c.after, c.err)
		}
	}
	nothingGivenUp(t, s, adv)
}

// start runs the stage's handler, wrapped by wrap, on the stage's consumer
// until the test ends.
func start(t *testing.T, s *Stage, wrap func(ctx context.Context, next func(context.Context) error) error) {
	t.Helper()
	create(t, s.JS, s.Consumer)
	opts := runnerOptions(t, s.Publisher, io.Discard)
	runUntilCleanup(t, func(ctx context.Context) error {
		if s.Handler != nil {
			return streams.Run(ctx, s.JS, s.Consumer, func(ctx context.Context, ev *streams.Event) error {
				return wrap(ctx, func(ctx context.Context) error { return s.Handler(ctx, ev) })
			}, opts)
		}
		return streams.RunMessages(ctx, s.JS, s.Consumer, func(ctx context.Context, msg jetstream.Msg) error {
			return wrap(ctx, func(ctx context.Context) error { return s.MsgHandler(ctx, msg) })
		}, opts)
	})
}

// Running runs h on consumer c through the real runner, as a role does,
// until the test ends; failures are published with pub, and log lines go
// to log as well as to the test's output. Redeliveries come after the
// suite's short backoff.
func Running(t *testing.T, js jetstream.JetStream, c streams.Consumer, h streams.Handler, pub *streams.Publisher, log io.Writer) {
	t.Helper()
	create(t, js, c)
	opts := runnerOptions(t, pub, log)
	runUntilCleanup(t, func(ctx context.Context) error { return streams.Run(ctx, js, c, h, opts) })
}

// create makes c with admin rights, as `prism setup` does for the
// system's consumers: the runner only binds.
func create(t *testing.T, js jetstream.JetStream, c streams.Consumer) {
	t.Helper()
	if _, err := c.Create(context.Background(), js); err != nil {
		t.Fatal(err)
	}
}

func runnerOptions(t *testing.T, pub *streams.Publisher, log io.Writer) streams.RunnerOptions {
	return streams.RunnerOptions{
		Concurrency: 2,
		Log:         zerolog.New(io.MultiWriter(log, zerolog.NewTestWriter(t))),
		Publisher:   pub,
		Backoff:     func(uint64) time.Duration { return backoff },
	}
}

// runUntilCleanup runs run until the test ends, then cancels its context
// and waits for it to return.
func runUntilCleanup(t *testing.T, run func(ctx context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("runner: %v", err)
			}
		case <-time.After(wait):
			t.Error("the runner did not stop")
		}
	})
}

// JetStream starts an embedded NATS server (platform/testenv) with the
// streams and durable consumers in place (streams.Setup, as `prism setup`
// makes them) and returns its JetStream.
func JetStream(t *testing.T) jetstream.JetStream {
	t.Helper()
	_, _, js := testenv.NATS(t)
	if err := streams.Setup(context.Background(), js, streams.DefaultTopology()); err != nil {
		t.Fatal(err)
	}
	return js
}

func info(t *testing.T, s *Stage) *jetstream.ConsumerInfo {
	t.Helper()
	ctx := context.Background()
	c, err := s.JS.Consumer(ctx, s.Consumer.StreamName(), s.Consumer.Name)
	if err != nil {
		t.Fatalf("consumer %s: %v", s.Consumer.Name, err)
	}
	i, err := c.Info(ctx)
	if err != nil {
		t.Fatalf("consumer %s: %v", s.Consumer.Name, err)
	}
	return i
}

// settled reports that the consumer has nothing pending or unacknowledged.
func settled(t *testing.T, s *Stage) bool {
	i := info(t, s)
	return i.NumPending == 0 && i.NumAckPending == 0 && i.NumRedelivered == 0
}

func failures(t *testing.T, s *Stage, doc string) []streams.FailedData {
	t.Helper()
	return Failures(t, s.JS, doc)
}

// Failures returns the document.failed payloads of Owner's document doc.
func Failures(t *testing.T, js jetstream.JetStream, doc string) []streams.FailedData {
	t.Helper()
	var out []streams.FailedData
	for _, ev := range Events(t, js, doc, streams.Failed) {
		var f streams.FailedData
		if err := ev.Decode(&f); err != nil {
			t.Fatal(err)
		}
		out = append(out, f)
	}
	return out
}

// WaitFailed waits for the document.failed event of owner's document doc
// and returns its payload.
func WaitFailed(t *testing.T, js jetstream.JetStream, owner, doc string) streams.FailedData {
	t.Helper()
	var f streams.FailedData
	log := streams.NewLog(js)
	testenv.Eventually(t, wait, "document.failed of "+owner+"/"+doc, func() bool {
		ev, err := log.Last(context.Background(), streams.DocSubject(owner, doc, streams.Failed))
		if err != nil {
			t.Fatal(err)
		}
		return ev != nil && ev.Decode(&f) == nil
	})
	return f
}

// Events returns the stored events of type typ about Owner's document doc
// (* for every document).
func Events(t *testing.T, js jetstream.JetStream, doc string, typ streams.EventType) []*streams.Event {
	t.Helper()
	ctx := context.Background()
	cons, err := js.OrderedConsumer(ctx, streams.DocsStream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{streams.DocSubject(Owner, doc, typ)},
	})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.FetchNoWait(1000)
	if err != nil {
		t.Fatal(err)
	}
	var out []*streams.Event
	for m := range batch.Messages() {
		ev, err := streams.ParseEvent(m.Subject(), m.Data())
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, ev)
	}
	if err := batch.Error(); err != nil {
		t.Fatal(err)
	}
	return out
}

// CountEvents counts the stored events of type typ about Owner's document
// doc: a stage that publishes the same output twice under one Nats-Msg-Id
// has one.
func CountEvents(t *testing.T, js jetstream.JetStream, doc string, typ streams.EventType) int {
	t.Helper()
	return len(Events(t, js, doc, typ))
}

// Publish publishes an event of type typ about Owner's document doc, as
// the stage before would.
func Publish(t *testing.T, js jetstream.JetStream, doc string, typ streams.EventType, data any) *streams.Event {
	t.Helper()
	ev, err := streams.NewPublisher(js, "/streamstest").Emit(context.Background(),
		streams.Meta{Owner: Owner, DocumentID: doc, Run: 1, CorrelationID: "corr-" + doc}, typ, "", data)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

// PublishBadPayload publishes an event of type typ about doc whose payload
// is not the type's: a well-formed envelope no stage can use.
func PublishBadPayload(t *testing.T, js jetstream.JetStream, doc string, typ streams.EventType) {
	t.Helper()
	Publish(t, js, doc, typ, "not a payload of "+string(typ))
}

// PublishUndecodable publishes bytes on doc's subject of type typ that are
// no event at all.
func PublishUndecodable(t *testing.T, js jetstream.JetStream, doc string, typ streams.EventType) {
	t.Helper()
	if _, err := js.Publish(context.Background(), streams.DocSubject(Owner, doc, typ), []byte("{not an event")); err != nil {
		t.Fatal(err)
	}
}

// RefuseDocs makes the DOCS stream refuse every new event until repair is
// called, as a full stream or a lost quorum would: a stage whose effect is
// an event cannot make it durable.
func RefuseDocs(t *testing.T, js jetstream.JetStream) (repair func()) {
	t.Helper()
	ctx := context.Background()
	s, err := js.Stream(ctx, streams.DocsStream)
	if err != nil {
		t.Fatal(err)
	}
	i, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if i.State.Msgs == 0 {
		t.Fatal("RefuseDocs: an empty stream cannot be capped at its size (0 means no limit)")
	}
	was := i.Config
	full := was
	full.MaxMsgs, full.Discard = int64(i.State.Msgs), jetstream.DiscardNew
	if _, err := js.UpdateStream(ctx, full); err != nil {
		t.Fatalf("RefuseDocs: %v", err)
	}
	return func() {
		if _, err := js.UpdateStream(ctx, was); err != nil {
			t.Errorf("RefuseDocs repair: %v", err)
		}
	}
}

const terminatedType = "io.nats.jetstream.advisory.v1.terminated"

// advisory is what JetStream says when a consumer gives up on a message.
type advisory struct {
	Type      string `json:"type"`
	StreamSeq uint64 `json:"stream_seq"`
	Reason    string `json:"reason"`
}

// advisories delivers the terminated and max-deliveries advisories of the
// stage's consumer from now on.
func advisories(t *testing.T, s *Stage) <-chan advisory {
	t.Helper()
	out := make(chan advisory, 16)
	nc := s.JS.Conn()
	for _, kind := range []string{"MSG_TERMINATED", "MAX_DELIVERIES"} {
		sub, err := nc.Subscribe("$JS.EVENT.ADVISORY.CONSUMER."+kind+"."+s.Consumer.StreamName()+"."+s.Consumer.Name, func(m *nats.Msg) {
			var a advisory
			if err := json.Unmarshal(m.Data, &a); err != nil {
				a.Reason = "undecodable advisory: " + string(m.Data)
			}
			select {
			case out <- a:
			default:
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = sub.Unsubscribe() })
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return out
}

// waitFor waits for cond as testenv.Eventually does, and fails at once if
// the consumer gives up on a message meanwhile.
func waitFor(t *testing.T, adv <-chan advisory, what string, cond func() bool) {
	t.Helper()
	testenv.Eventually(t, wait, what, func() bool {
		select {
		case a := <-adv:
			t.Fatalf("waiting for %s, a message was given up: %+v", what, a)
		default:
		}
		return cond()
	})
}

// nothingGivenUp fails the test if the consumer terminated a message or
// ran out of deliveries: nothing in the case was meant to be given up.
func nothingGivenUp(t *testing.T, s *Stage, adv <-chan advisory) {
	t.Helper()
	select {
	case a := <-adv:
		t.Fatalf("a message was given up: %+v", a)
	default:
	}
	if n := DeadLetters(t, s.JS); n != 0 {
		t.Fatalf("%d dead letters", n)
	}
}

// DeadLetters counts the advisories the DLQ stream keeps.
func DeadLetters(t *testing.T, js jetstream.JetStream) int {
	t.Helper()
	s, err := js.Stream(context.Background(), streams.DLQStream)
	if err != nil {
		t.Fatal(err)
	}
	i, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return int(i.State.Msgs)
}
