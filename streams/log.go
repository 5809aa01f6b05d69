package streams

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
)

// Log reads single events of a stream (DOCS or CHAT): a subject's newest event, or
// a document's events one by one. Each read is one direct get. It keeps the
// stream handle, because jetstream's Stream() is an info request to the
// server: opening it per read would double the round trips of every stage
// that checks for work already done and of every API read.
type Log struct {
	js   jetstream.JetStream
	name string
	mu   sync.Mutex
	st   jetstream.Stream
}

// NewLog returns a Log of the DOCS stream.
func NewLog(js jetstream.JetStream) *Log { return &Log{js: js, name: DocsStream} }

// NewChatLog returns a Log of the CHAT stream.
func NewChatLog(js jetstream.JetStream) *Log { return &Log{js: js, name: ChatStream} }

func (l *Log) stream(ctx context.Context) (jetstream.Stream, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.st != nil {
		return l.st, nil
	}
	st, err := l.js.Stream(ctx, l.name)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", l.name, err)
	}
	l.st = st
	return st, nil
}

// Last returns the newest event on subject (a wildcard filter is allowed),
// or nil when there is none. A broken envelope counts as none.
func (l *Log) Last(ctx context.Context, subject string) (*Event, error) {
	st, err := l.stream(ctx)
	if err != nil {
		return nil, err
	}
	msg, err := st.GetLastMsgForSubject(ctx, subject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the last event on %s: %w", subject, err)
	}
	ev, err := ParseEvent(msg.Subject, msg.Data)
	if err != nil {
		return nil, nil
	}
	ev.Seq = msg.Sequence
	return ev, nil
}

// DocumentExists reports whether the document was ever uploaded, by looking
// for its uploaded event: it answers even before the read model has caught
// up.
func (l *Log) DocumentExists(ctx context.Context, owner, document string) (bool, error) {
	ev, err := l.Last(ctx, DocSubject(owner, document, Uploaded))
	return ev != nil, err
}

// Emitted reports whether the event of type t for m's document and run (or
// a later run) is already in the stream. A stage redelivered after it
// finished its work checks this and skips the work instead of redoing it.
func (l *Log) Emitted(ctx context.Context, m Meta, t EventType) (bool, error) {
	ev, err := l.Last(ctx, DocSubject(m.Owner, m.DocumentID, t))
	return ev != nil && ev.Run >= m.Run, err
}

// LastSeq returns the stream sequence of the newest event of a document (0
// when there is none). A reader compares it with what its read model has
// applied to serve read-your-writes.
func (l *Log) LastSeq(ctx context.Context, owner, document string) (uint64, error) {
	ev, err := l.Last(ctx, DocumentFilter(owner, document))
	if ev == nil {
		return 0, err
	}
	return ev.Seq, nil
}

// Replay calls fn with each event on subject (a wildcard filter is allowed)
// whose stream sequence is in (after, upTo], oldest first, until fn says
// stop. Each step is one direct get of the next matching message, so a
// document's few events cost a few round trips and no consumer.
func (l *Log) Replay(ctx context.Context, subject string, after, upTo uint64, fn func(*Event) (stop bool, err error)) error {
	st, err := l.stream(ctx)
	if err != nil {
		return err
	}
	for seq := after + 1; seq <= upTo; {
		msg, err := st.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subject))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("replay %s from %d: %w", subject, seq, err)
		}
		if msg.Sequence > upTo {
			return nil
		}
		seq = msg.Sequence + 1
		ev, err := ParseEvent(msg.Subject, msg.Data)
		if err != nil {
			continue // a broken envelope is never shown to a client
		}
		ev.Seq = msg.Sequence
		if stop, err := fn(ev); stop || err != nil {
			return err
		}
	}
	return nil
}
