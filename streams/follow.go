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
	js   jetstream.JetStream
	cons jetstream.Consumer
	it   jetstream.MessagesContext
}

// Follow starts reading filter after stream sequence afterSeq (0 = from the
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
	cons, err := js.OrderedConsumer(ctx, DocsStream, cfg)
	if err != nil {
		return nil, fmt.Errorf("follow %s: %w", filter, err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(64))
	if err != nil {
		return nil, fmt.Errorf("follow %s: %w", filter, err)
	}
	return &Follower{js: js, cons: cons, it: it}, nil
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
// thousands of short SSE streams do not pile up consumers on DOCS.
func (f *Follower) Close() {
	f.it.Stop()
	info := f.cons.CachedInfo()
	if info == nil {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = f.js.DeleteConsumer(ctx, DocsStream, info.Name)
	}()
}

// DocumentExists reports whether the document was ever uploaded, by looking
// for its uploaded event in the stream: it answers even before the read
// model has caught up.
func DocumentExists(ctx context.Context, js jetstream.JetStream, owner, document string) (bool, error) {
	s, err := js.Stream(ctx, DocsStream)
	if err != nil {
		return false, fmt.Errorf("open %s: %w", DocsStream, err)
	}
	_, err = s.GetLastMsgForSubject(ctx, DocSubject(owner, document, Uploaded))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("look up %s: %w", document, err)
	}
	return true, nil
}

// Emitted reports whether the event of type t for m's document and run (or
// a later run) is already in the stream. A stage redelivered after it
// finished its work checks this and skips the work instead of redoing it.
func Emitted(ctx context.Context, js jetstream.JetStream, m Meta, t EventType) (bool, error) {
	s, err := js.Stream(ctx, DocsStream)
	if err != nil {
		return false, fmt.Errorf("open %s: %w", DocsStream, err)
	}
	msg, err := s.GetLastMsgForSubject(ctx, DocSubject(m.Owner, m.DocumentID, t))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("look up %s of %s: %w", t, m.DocumentID, err)
	}
	ev, err := ParseEvent(msg.Subject, msg.Data)
	if err != nil {
		return false, nil
	}
	return ev.Run >= m.Run, nil
}

// LastSeq returns the stream sequence of the newest event of a document (0
// when there is none). A reader compares it with what its read model has
// applied to serve read-your-writes.
func LastSeq(ctx context.Context, js jetstream.JetStream, owner, document string) (uint64, error) {
	s, err := js.Stream(ctx, DocsStream)
	if err != nil {
		return 0, fmt.Errorf("open %s: %w", DocsStream, err)
	}
	msg, err := s.GetLastMsgForSubject(ctx, DocumentFilter(owner, document))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("look up the last event of %s: %w", document, err)
	}
	return msg.Sequence, nil
}
