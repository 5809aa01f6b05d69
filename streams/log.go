package streams

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
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
// stop. On a stream that allows direct gets it asks for the events in
// batches (one request for up to replayBatch of them), so folding a long
// chat session costs one round trip instead of one per event; otherwise
// each step is one get of the next matching message. Either way it needs
// no consumer.
func (l *Log) Replay(ctx context.Context, subject string, after, upTo uint64, fn func(*Event) (stop bool, err error)) error {
	st, err := l.stream(ctx)
	if err != nil {
		return err
	}
	if info := st.CachedInfo(); info != nil && info.Config.AllowDirect {
		return l.replayBatched(ctx, st, subject, after, upTo, fn)
	}
	return replayOneByOne(ctx, st, subject, after, upTo, fn)
}

// replayOneByOne is Replay by one get per event.
func replayOneByOne(ctx context.Context, st jetstream.Stream, subject string, after, upTo uint64, fn func(*Event) (stop bool, err error)) error {
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
		if stop, err := apply(msg.Subject, msg.Data, msg.Sequence, fn); stop || err != nil {
			return err
		}
	}
	return nil
}

// apply hands one stored message to Replay's fn as an event; a broken
// envelope is skipped, never shown to a client.
func apply(subject string, data []byte, seq uint64, fn func(*Event) (stop bool, err error)) (bool, error) {
	ev, err := ParseEvent(subject, data)
	if err != nil {
		return false, nil
	}
	ev.Seq = seq
	return fn(ev)
}

// Batched direct gets (NATS 2.11 and later).
const (
	replayBatch      = 256     // events one request asks for
	replayMaxBytes   = 4 << 20 // and at most this much of them
	numPendingHeader = "Nats-Num-Pending"
)

// replayBatched is Replay by batched direct gets.
func (l *Log) replayBatched(ctx context.Context, st jetstream.Stream, subject string, after, upTo uint64, fn func(*Event) (stop bool, err error)) error {
	for seq := after + 1; seq <= upTo; {
		next, more, err := l.getBatch(ctx, subject, seq, upTo, fn)
		if errors.Is(err, errNoBatch) {
			return replayOneByOne(ctx, st, subject, seq-1, upTo, fn)
		}
		if err != nil {
			return fmt.Errorf("replay %s from %d: %w", subject, seq, err)
		}
		if !more {
			return nil
		}
		seq = next
	}
	return nil
}

// errNoBatch: the server answered a batched get as a single one (it
// predates batches); nothing of that answer was handed on.
var errNoBatch = errors.New("the server does not answer batched direct gets")

// getBatch asks for the messages on subject from sequence from on, up to
// replayBatch of them, and hands those up to upTo to fn as they arrive.
// more says whether to ask again from next: messages on subject remain,
// none was past upTo, and fn did not stop.
func (l *Log) getBatch(ctx context.Context, subject string, from, upTo uint64, fn func(*Event) (stop bool, err error)) (next uint64, more bool, err error) {
	nc := l.js.Conn()
	sub, err := nc.SubscribeSync(nc.NewInbox())
	if err != nil {
		return 0, false, err
	}
	defer func() { _ = sub.Unsubscribe() }()
	req, _ := json.Marshal(map[string]any{"seq": from, "next_by_subj": subject, "batch": replayBatch, "max_bytes": replayMaxBytes})
	if err := nc.PublishRequest(l.apiPrefix()+"DIRECT.GET."+l.name, sub.Subject, req); err != nil {
		return 0, false, err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, l.js.Options().DefaultTimeout)
		defer cancel()
	}
	next = from
	for {
		msg, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			return 0, false, err
		}
		switch status := msg.Header.Get("Status"); status {
		case "":
		case "404": // nothing on subject from there on
			return next, false, nil
		case "204": // the end of the batch
			pending, _ := strconv.ParseUint(msg.Header.Get(numPendingHeader), 10, 64)
			return next, pending > 0, nil
		default:
			return 0, false, fmt.Errorf("direct get: status %s %s", status, msg.Header.Get("Description"))
		}
		if msg.Header.Get(numPendingHeader) == "" {
			return 0, false, errNoBatch
		}
		seq, err := strconv.ParseUint(msg.Header.Get(jetstream.SequenceHeader), 10, 64)
		if err != nil {
			return 0, false, fmt.Errorf("direct get: sequence %q: %w", msg.Header.Get(jetstream.SequenceHeader), err)
		}
		if seq > upTo {
			return next, false, nil
		}
		next = seq + 1
		if stop, err := apply(msg.Header.Get(jetstream.SubjectHeader), msg.Data, seq, fn); stop || err != nil {
			return next, false, err
		}
	}
}

// apiPrefix is the JetStream API's subject prefix of l's connection.
func (l *Log) apiPrefix() string {
	o := l.js.Options()
	switch {
	case o.Domain != "":
		return "$JS." + o.Domain + ".API."
	case o.APIPrefix == "":
		return jetstream.DefaultAPIPrefix
	case strings.HasSuffix(o.APIPrefix, "."):
		return o.APIPrefix
	}
	return o.APIPrefix + "."
}
