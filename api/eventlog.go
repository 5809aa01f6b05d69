package api

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/aiprism/prism/streams"
	"github.com/nats-io/nats.go/jetstream"
)

// eventLog reads single events of the DOCS stream. It keeps the stream
// handle: jetstream's Stream() is an info request to the server, while
// reading a subject's last message is one direct get, and GET /documents
// reads one on every call.
type eventLog struct {
	js jetstream.JetStream
	mu sync.Mutex
	st jetstream.Stream
}

func (l *eventLog) stream(ctx context.Context) (jetstream.Stream, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.st != nil {
		return l.st, nil
	}
	st, err := l.js.Stream(ctx, streams.DocsStream)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", streams.DocsStream, err)
	}
	l.st = st
	return st, nil
}

// last returns the newest event on subject (a wildcard filter is allowed),
// or nil when there is none. A broken envelope counts as none.
func (l *eventLog) last(ctx context.Context, subject string) (*streams.Event, error) {
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
	ev, err := streams.ParseEvent(msg.Subject, msg.Data)
	if err != nil {
		return nil, nil
	}
	ev.Seq = msg.Sequence
	return ev, nil
}

// lastSeq is the stream sequence of the document's newest event (0 if none).
func (l *eventLog) lastSeq(ctx context.Context, owner, id string) (uint64, error) {
	ev, err := l.last(ctx, streams.DocumentFilter(owner, id))
	if ev == nil || err != nil {
		return 0, err
	}
	return ev.Seq, nil
}

// lastPayload decodes the payload of the document's newest event of type
// t into v; v is left untouched when the log no longer holds one.
func (l *eventLog) lastPayload(ctx context.Context, owner, id string, t streams.EventType, v any) error {
	ev, err := l.last(ctx, streams.DocSubject(owner, id, t))
	if ev == nil || err != nil {
		return err
	}
	return ev.Decode(v)
}

// replay calls fn with each event on subject (a wildcard filter is allowed)
// whose stream sequence is in (after, upTo], oldest first, until fn says
// stop. Each step is one direct get of the next matching message, so a
// document's few events cost a few round trips and no consumer.
func (l *eventLog) replay(ctx context.Context, subject string, after, upTo uint64, fn func(*streams.Event) (stop bool, err error)) error {
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
		ev, err := streams.ParseEvent(msg.Subject, msg.Data)
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
