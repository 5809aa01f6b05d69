package chat

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/aiprism/prism/streams"
	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
)

// live writes one answer as it is written: a started message, a delta per
// piece of text with its byte offset, and a heartbeat every beat until
// it ends, on the session's live subject (core NATS: an API replica
// relays them to the client's stream); and it answers sync requests for
// the answer with the text so far.
type live struct {
	nc      *nats.Conn
	subject string
	answer  string
	log     zerolog.Logger
	started time.Time // the question's publication, for the first token's time

	mu         sync.Mutex
	text       strings.Builder
	firstToken time.Duration // 0 until the first delta
	failing    bool          // a publication failed; logged once

	sub  *nats.Subscription
	stop chan struct{}
	done chan struct{}
}

// startLive announces the answer (model: the one it is expected to come
// from), starts its heartbeat and answers its sync requests until close.
func startLive(nc *nats.Conn, owner, session, answer, model string, asked time.Time, beat time.Duration, log zerolog.Logger) (*live, error) {
	l := &live{nc: nc, subject: streams.ChatLiveSubject(owner, session), answer: answer, log: log, started: asked,
		stop: make(chan struct{}), done: make(chan struct{})}
	sub, err := nc.Subscribe(streams.ChatSyncSubject(owner, session, answer), func(m *nats.Msg) {
		l.mu.Lock()
		raw, _ := json.Marshal(streams.ChatLive{Kind: streams.LiveDelta, AnswerID: answer, Text: l.text.String()})
		l.mu.Unlock()
		if err := m.Respond(raw); err != nil {
			log.Warn().Err(err).Msg("chat sync request not answered")
		}
	})
	if err != nil {
		return nil, fmt.Errorf("answer sync requests of %s: %w", answer, err)
	}
	l.sub = sub
	l.publish(streams.ChatLive{Kind: streams.LiveStarted, AnswerID: answer, Model: model})
	go l.beat(beat)
	return l, nil
}

func (l *live) beat(every time.Duration) {
	defer close(l.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			l.publish(streams.ChatLive{Kind: streams.LiveHeartbeat, AnswerID: l.answer})
		}
	}
}

// delta adds a piece of the answer and publishes it. It is the
// router's onText: it never fails the answer, since a relay that misses
// a delta catches up by sync or from the stored end.
func (l *live) delta(s string) error {
	if s == "" {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.text.Len() == 0 {
		l.firstToken = max(time.Since(l.started), time.Nanosecond)
	}
	offset := l.text.Len()
	l.text.WriteString(s)
	l.publishLocked(streams.ChatLive{Kind: streams.LiveDelta, AnswerID: l.answer, Offset: offset, Text: s})
	return nil
}

// written is the answer so far, and how long after the question its
// first piece came (0: none yet).
func (l *live) written() (string, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.text.String(), l.firstToken
}

func (l *live) publish(m streams.ChatLive) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.publishLocked(m)
}

func (l *live) publishLocked(m streams.ChatLive) {
	raw, _ := json.Marshal(m)
	if err := l.nc.Publish(l.subject, raw); err != nil && !l.failing {
		l.failing = true
		l.log.Warn().Err(err).Str("kind", m.Kind).Msg("live chat message not published")
	}
}

// close stops the heartbeat and the sync answers: the answer's stored end
// has been published (or it will be written again).
func (l *live) close() {
	close(l.stop)
	<-l.done
	if err := l.sub.Unsubscribe(); err != nil {
		l.log.Debug().Err(err).Msg("chat sync subscription")
	}
}
