package streams

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// ErrIdle is returned by Follower.Next when no event arrived within the wait.
var ErrIdle = errors.New("no event within the wait")

// Follower reads the events of one subject filter in stream order: the
// replay of what is stored, then live events as they arrive. The API's SSE
// hub reads the whole stream with one; the event's stream sequence is its
// SSE id, so a client resuming with Last-Event-ID loses nothing, whichever
// API replica it reconnects to.
type Follower struct {
	js     jetstream.JetStream
	stream string
	cons   jetstream.Consumer
	it     jetstream.MessagesContext
}

// Follow starts reading filter (of DOCS or CHAT, see StreamOf) after stream sequence afterSeq (0 = from the
// beginning). It uses an ordered consumer: ephemeral, flow-controlled,
// recreated by the client library on gaps, and gone when closed.
func Follow(ctx context.Context, js jetstream.JetStream, filter string, afterSeq uint64) (*Follower, error) {
	// The server removes a follower's consumer soon after its client is
	// gone, even if Close never runs (a crashed API replica).
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}, DeliverPolicy: jetstream.DeliverAllPolicy, InactiveThreshold: 15 * time.Second}
	if afterSeq > 0 {
		cfg.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		cfg.OptStartSeq = afterSeq + 1
	}
	stream := StreamOf(filter)
	cons, err := js.OrderedConsumer(ctx, stream, cfg)
	if err != nil {
		return nil, fmt.Errorf("follow %s: %w", filter, err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(64))
	if err != nil {
		return nil, fmt.Errorf("follow %s: %w", filter, err)
	}
	return &Follower{js: js, stream: stream, cons: cons, it: it}, nil
}

// Next returns the next event, ErrIdle after maxWait without one, or the
// iterator's error once it is closed.
func (f *Follower) Next(ctx context.Context, maxWait time.Duration) (*Event, error) {
	for {
		wctx, cancel := context.WithTimeout(ctx, maxWait)
		msg, err := f.it.Next(jetstream.NextContext(wctx))
		cancel()
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
				return nil, ErrIdle
			}
			return nil, err
		}
		ev, err := ParseEvent(msg.Subject(), msg.Data())
		if err != nil {
			continue // a forged or broken envelope is never shown to a client
		}
		if md, err := msg.Metadata(); err == nil {
			ev.Seq = md.Sequence.Stream
		}
		return ev, nil
	}
}

// Close stops the follower and deletes its consumer at once, so that
// thousands of short SSE streams do not pile up consumers on the stream.
func (f *Follower) Close() {
	f.it.Stop()
	info := f.cons.CachedInfo()
	if info == nil {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = f.js.DeleteConsumer(ctx, f.stream, info.Name)
	}()
}
