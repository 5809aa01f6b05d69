package streams

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Publisher publishes events and checks every PubAck.
type Publisher struct {
	js     jetstream.JetStream
	source string
}

// NewPublisher returns a Publisher whose events name source (the CloudEvents
// source attribute, e.g. "/prism/extractor").
func NewPublisher(js jetstream.JetStream, source string) *Publisher {
	return &Publisher{js: js, source: source}
}

// Source is the CloudEvents source of this publisher's events.
func (p *Publisher) Source() string { return p.source }

// Emit builds an event and publishes it.
func (p *Publisher) Emit(ctx context.Context, m Meta, t EventType, key string, data any) (*Event, error) {
	ev, err := NewEvent(p.source, m, t, key, data)
	if err != nil {
		return nil, err
	}
	if err := p.Publish(ctx, ev); err != nil {
		return nil, err
	}
	return ev, nil
}

// Publish stores ev in its stream (DOCS or CHAT) with its id as Nats-Msg-Id and returns once the
// stream has acknowledged it (a duplicate within the window is acknowledged
// too, without being stored again). ev.Seq is set to the stored sequence.
func (p *Publisher) Publish(ctx context.Context, ev *Event) error {
	return p.publish(ctx, ev)
}

// ErrMoved: PublishAfter found a newer event on its filter than the one
// the caller decided on.
var ErrMoved = errors.New("the log moved on since it was read")

// PublishAfter stores ev only if the newest event on filter (a wildcard is
// allowed) is still the one at stream sequence last (0: none), and
// returns ErrMoved otherwise: a compare-and-set over a subject tree, so
// that a decision made from what the log held (a chat session has no
// answer being written) is not acted on after the log changed.
func (p *Publisher) PublishAfter(ctx context.Context, ev *Event, filter string, last uint64) error {
	err := p.publish(ctx, ev, jetstream.WithExpectLastSequenceForSubject(last, filter))
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant) {
		return fmt.Errorf("publish %s after %d on %s: %w", ev.ID, last, filter, ErrMoved)
	}
	return err
}

func (p *Publisher) publish(ctx context.Context, ev *Event, opts ...jetstream.PublishOpt) error {
	raw, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("encode event %s: %w", ev.ID, err)
	}
	msg := &nats.Msg{Subject: ev.NATSSubject(), Data: raw, Header: nats.Header{}}
	msg.Header.Set("Content-Type", "application/cloudevents+json")
	opts = append(opts, jetstream.WithMsgID(ev.ID), jetstream.WithExpectStream(ev.StreamName()))
	ack, err := p.js.PublishMsg(ctx, msg, opts...)
	if err != nil {
		return fmt.Errorf("publish %s to %s: %w", ev.ID, msg.Subject, err)
	}
	ev.Seq = ack.Sequence
	ev.Duplicate = ack.Duplicate
	return nil
}
