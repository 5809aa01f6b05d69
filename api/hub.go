package api

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/aiprism/prism/platform/obs"
	"github.com/aiprism/prism/streams"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// defaultSubscriptionBuffer is how many live events a subscription holds for a
// client that is slow to take them. A document has a handful of events per
// run; a client that falls this far behind is resynchronised from the
// stream instead of holding up the others.
const defaultSubscriptionBuffer = 64

// hub fans a stream (DOCS, or CHAT for chat sessions) out to the SSE
// streams open on this replica: one ordered consumer per replica reads
// every event once and hands it to the subscriptions of its document (or
// session). One consumer per open stream instead costs
// the server a consumer create and delete per stream and a filter match per
// consumer on every event; that does not reach 10,000 streams.
//
// JetStream stays the source of truth. A subscription starts at the hub's
// position: events up to it are read from the stream (the catch-up), later
// ones arrive live. A subscription the hub had to drop (its buffer was
// full) is told so and the stream resynchronises from the stream, so no
// event is lost whatever the client's pace.
type hub struct {
	js     jetstream.JetStream
	stream string // the stream it reads
	filter string // all of it
	log    zerolog.Logger
	life   context.Context // the server's lifetime: the hub stops with it
	// buffer is each subscription's capacity (defaultSubscriptionBuffer).
	buffer int

	startMu sync.Mutex
	running bool

	setup chan struct{} // slots for setting streams up, see setupSlot

	mu   sync.Mutex
	pos  uint64 // every event up to this sequence was dispatched, or precedes the hub
	subs map[docKey]map[*subscription]struct{}

	// Kept by the SSE handler, which knows when a stream opens, closes
	// and resynchronises.
	open    prometheus.Gauge
	resyncs prometheus.Counter
}

// maxConcurrentSetups bounds the streams being set up (authorized, replayed)
// at once on a replica.
const maxConcurrentSetups = 64

// setupSlot waits for a slot to set a stream up; call release when done.
func (h *hub) setupSlot(ctx context.Context) (release func(), err error) {
	select {
	case h.setup <- struct{}{}:
		return func() { <-h.setup }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// docKey names what a subscription follows: one document of an owner, or
// every document of the owner (doc "").
type docKey struct{ owner, doc string }

// subscription receives the live events of one document, or of an owner.
type subscription struct {
	key      docKey
	events   chan *streams.Event
	lost     chan struct{} // closed when an event could not be buffered
	lostOnce sync.Once
}

func (s *subscription) drop() { s.lostOnce.Do(func() { close(s.lost) }) }

func newHub(ctx context.Context, js jetstream.JetStream, reg prometheus.Registerer, log zerolog.Logger) *hub {
	return &hub{
		js:     js,
		stream: streams.DocsStream,
		filter: streams.DocRoot + ".>",
		log:    log.With().Str("component", "sse-hub").Logger(),
		life:   ctx,
		buffer: defaultSubscriptionBuffer,
		setup:  make(chan struct{}, maxConcurrentSetups),
		subs:   map[docKey]map[*subscription]struct{}{},
		open: obs.Register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "prism_api_sse_streams", Help: "SSE streams open on this replica.",
		})),
		resyncs: obs.Register(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "prism_api_sse_resyncs_total", Help: "SSE streams resynchronised from JetStream because they fell behind the live events.",
		})),
	}
}

// sibling is a hub of another stream on the same replica: its own
// consumer and subscriptions, the same setup slots and metrics.
func (h *hub) sibling(stream, filter string) *hub {
	return &hub{
		js: h.js, stream: stream, filter: filter, log: h.log.With().Str("stream", stream).Logger(),
		life: h.life, buffer: h.buffer, setup: h.setup, subs: map[docKey]map[*subscription]struct{}{},
		open: h.open, resyncs: h.resyncs,
	}
}

// start runs the hub on first use. A failed start is tried again by the
// next caller.
func (h *hub) start(ctx context.Context) error {
	h.startMu.Lock()
	defer h.startMu.Unlock()
	if h.running {
		return nil
	}
	if err := h.life.Err(); err != nil {
		return fmt.Errorf("sse hub: server stopping: %w", err)
	}
	st, err := h.js.Stream(ctx, h.stream)
	if err != nil {
		return fmt.Errorf("sse hub: open %s: %w", h.stream, err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return fmt.Errorf("sse hub: read the end of %s: %w", h.stream, err)
	}
	f, err := streams.Follow(h.life, h.js, h.filter, info.State.LastSeq)
	if err != nil {
		return fmt.Errorf("sse hub: %w", err)
	}
	h.mu.Lock()
	h.pos = info.State.LastSeq
	h.mu.Unlock()
	h.running = true
	go h.run(f)
	return nil
}

// subscribe registers for the live events of a document, or of every
// document of the owner when doc is empty, and returns the sequence from
// which they are live: the caller reads events up to it from the stream.
func (h *hub) subscribe(ctx context.Context, owner, doc string) (*subscription, uint64, error) {
	if err := h.start(ctx); err != nil {
		return nil, 0, err
	}
	sub := &subscription{key: docKey{owner, doc}, events: make(chan *streams.Event, h.buffer), lost: make(chan struct{})}
	h.mu.Lock()
	defer h.mu.Unlock()
	set := h.subs[sub.key]
	if set == nil {
		set = map[*subscription]struct{}{}
		h.subs[sub.key] = set
	}
	set[sub] = struct{}{}
	return sub, h.pos, nil
}

// position is the sequence up to which every event has been dispatched
// (or precedes the hub): a stream that starts from now starts after it.
func (h *hub) position(ctx context.Context) (uint64, error) {
	if err := h.start(ctx); err != nil {
		return 0, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.pos, nil
}

func (h *hub) unsubscribe(sub *subscription) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if set := h.subs[sub.key]; set != nil {
		delete(set, sub)
		if len(set) == 0 {
			delete(h.subs, sub.key)
		}
	}
}

// run dispatches what f reads until the server stops.
func (h *hub) run(f *streams.Follower) {
	ctx := h.life
	for {
		ev, err := f.Next(ctx, time.Minute)
		if errors.Is(err, streams.ErrIdle) {
			continue
		}
		if err == nil {
			h.dispatch(ev)
			continue
		}
		f.Close()
		if ctx.Err() != nil {
			return
		}
		// The client library recreates an ordered consumer on gaps and
		// reconnects; an error here means the follower itself ended. Go on
		// from the last dispatched event, so nothing is skipped.
		h.log.Warn().Err(err).Msg("sse hub follower ended; restarting")
		for f = nil; f == nil; {
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
			h.mu.Lock()
			pos := h.pos
			h.mu.Unlock()
			if f, err = streams.Follow(ctx, h.js, h.filter, pos); err != nil {
				h.log.Warn().Err(err).Msg("sse hub cannot restart")
			}
		}
	}
}

func (h *hub) dispatch(ev *streams.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if ev.Seq <= h.pos {
		return // a replay after a restart
	}
	h.pos = ev.Seq
	// The document's subscribers, then its owner's (doc ""): the key is
	// the event's owner, which ParseEvent checked against its subject.
	for _, key := range [...]docKey{{ev.Owner, ev.DocumentID()}, {ev.Owner, ""}} {
		for sub := range h.subs[key] {
			select {
			case sub.events <- ev:
			default:
				// Never wait for one client: it catches up from the stream.
				delete(h.subs[key], sub)
				sub.drop()
			}
		}
	}
}
