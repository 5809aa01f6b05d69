package api

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"time"

	"github.com/aiprism/prism/platform/obs"
	"github.com/aiprism/prism/streams"
	"github.com/gofiber/fiber/v2"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// chatMetrics count what the chat API does that an operator watches.
type chatMetrics struct {
	questions   prometheus.Counter
	interrupted prometheus.Counter
}

func newChatMetrics(reg prometheus.Registerer) chatMetrics {
	return chatMetrics{
		questions: obs.Register(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "prism_api_chat_questions_total", Help: "Chat questions asked (and regenerated answers), on this replica.",
		})),
		interrupted: obs.Register(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "prism_api_chat_interrupted_total", Help: "Chat answers this replica ended as interrupted because no replica was writing them.",
		})),
	}
}

// chatLog is the log of a request about a chat session.
func (s *Server) chatLog(c *fiber.Ctx, m streams.ChatMeta) *zerolog.Logger {
	l := s.deps.Log.With().Str("owner", m.Owner).Str("session_id", m.Session).
		Str("correlation_id", m.CorrelationID).Str("request_id", requestID(c)).Logger()
	return &l
}

// syncTimeout bounds the wait for the replica writing an answer to send
// its text so far; it answers from memory.
const syncTimeout = time.Second

// writer says whether a replica is writing an answer.
type writer int

const (
	writerUnknown writer = iota // no reply in time: a replica may be, but is slow to say
	writerFound                 // a replica replied with the text so far
	writerNone                  // no replica listens for the answer: nobody is writing it
)

// syncAnswer asks the replica writing answer for its text so far.
func (s *Server) syncAnswer(ctx context.Context, owner, session, answer string) (writer, streams.ChatLive) {
	ctx, cancel := context.WithTimeout(ctx, syncTimeout)
	defer cancel()
	var live streams.ChatLive
	msg, err := s.deps.NC.RequestWithContext(ctx, streams.ChatSyncSubject(owner, session, answer), nil)
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return writerNone, live
	case err != nil:
		return writerUnknown, live
	}
	if json.Unmarshal(msg.Data, &live) != nil || live.AnswerID != answer || live.Offset != 0 {
		return writerUnknown, live
	}
	return writerFound, live
}

// interrupt ends an answer no replica is writing: chat.failed as
// answer-interrupted, with the text known to have been written. The end
// shares its event id with any other end of the answer (ChatEndID), so if
// the answer is ended meanwhile, or finishes later after all, the first
// end stored is the one that counts.
func (s *Server) interrupt(ctx context.Context, m streams.ChatMeta, answer, question, partial string, asked time.Time) error {
	d := streams.ChatAnswerData{
		AnswerID: answer, MessageID: question, Content: partial, Incomplete: partial != "",
		LatencyMS: time.Since(asked).Milliseconds(), Citations: []streams.Citation{},
		Reason: streams.ChatClassReason(streams.ClassAnswerInterrupted), ReasonClass: streams.ClassAnswerInterrupted,
	}
	ev, err := streams.NewChatEvent(Source, m, streams.ChatFailed, answer, d)
	if err != nil {
		return err
	}
	if err := s.pub.Publish(ctx, ev); err != nil {
		return fmt.Errorf("end answer %s as interrupted: %w", answer, err)
	}
	if !ev.Duplicate {
		s.chatMetrics.interrupted.Inc()
		s.deps.Log.Warn().Str("owner", m.Owner).Str("session_id", m.Session).Str("correlation_id", m.CorrelationID).
			Str("answer_id", answer).Int("partial_bytes", len(partial)).
			Msg("chat: no replica is writing the answer; ended it as interrupted")
	}
	return nil
}

// endAbandoned ends the answer being written when it has gone on longer
// than the watchdog and no replica is writing it, so a session whose
// answerer died with no event stream open to notice is not refused
// questions for ever. It reports whether it ended it.
func (s *Server) endAbandoned(ctx context.Context, m streams.ChatMeta, a *streams.ChatMessage) (bool, error) {
	if time.Since(a.CreatedAt) < s.cfg.ChatWatchdog {
		return false, nil
	}
	if w, _ := s.syncAnswer(ctx, m.Owner, m.Session, a.ID); w != writerNone {
		return false, nil
	}
	return true, s.interrupt(ctx, m, a.ID, a.QuestionID, a.Content, a.CreatedAt)
}

// chatEventID is a Last-Event-ID of a chat stream: a stored event's
// stream sequence, or <sequence>.<offset> for a delta.
var chatEventID = regexp.MustCompile(`^([0-9]+)(?:\.([0-9]+))?$`)

// chatEvents streams a session as server-sent events: the stored events
// as they happen (question, answer, error, deleted; replayed after the
// client's Last-Event-ID) and the answer being written, delta by delta,
// relayed from core NATS. A stored event's id is its CHAT sequence; a
// delta's is <the last stored sequence>.<the end offset of the text sent
// so far>, so a client that reconnects, to any replica, gets what it
// missed and nothing twice. The stream stays open until the client
// leaves, the session is deleted or the server stops.
func (s *Server) chatEvents(c *fiber.Ctx) error {
	owner := ownerOf(c)
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	var after uint64
	offset := 0
	if last := c.Get("Last-Event-ID", c.Query("lastEventId")); last != "" {
		parts := chatEventID.FindStringSubmatch(last)
		var err1, err2 error
		if parts != nil {
			after, err1 = strconv.ParseUint(parts[1], 10, 64)
			if parts[2] != "" {
				offset, err2 = strconv.Atoi(parts[2])
			}
		}
		if parts == nil || err1 != nil || err2 != nil {
			return problem(fiber.StatusBadRequest, "bad-last-event-id", "Last-Event-ID must be an event id from this stream")
		}
	}
	release, err := s.hub.setupSlot(c.UserContext())
	if err != nil {
		return err
	}
	defer release()
	// Authorize before subscribing: the subscriptions and the replay are
	// keyed by owner and session, so they only ever see this session.
	tr, _, err := s.liveSession(c.UserContext(), owner, id)
	var p *Problem
	switch {
	case errors.As(err, &p):
		return err
	case err != nil:
		return s.uncheckable(c, "chat session "+id, err)
	}
	lease, err := s.lease(c, leaseSSE, s.cfg.Limits.SSEStreams)
	if err != nil {
		return err
	}
	r := &chatRelay{
		s: s, owner: owner, session: id, tr: tr, sent: after, setupSeq: tr.Seq, resumeOffset: offset,
		asked: map[string]bool{}, live: make(chan *nats.Msg, liveBuffer),
		log: s.deps.Log.With().Str("owner", owner).Str("session_id", id).Str("request_id", requestID(c)).Logger(),
	}
	setSSEHeaders(c)
	c.Context().SetBodyStreamWriter(func(w *bufio.Writer) {
		ctx, cancel := context.WithCancel(s.hub.life)
		defer cancel()
		defer s.release(lease)
		lease.Keep(cancel)
		r.w = w
		if writeSSE(w, "retry: 2000\n\n") != nil {
			return
		}
		if err := r.run(ctx); err != nil {
			r.log.Debug().Err(err).Msg("chat sse: stream ended")
		}
		s.endStream(w)
	})
	return nil
}

// liveBuffer is how many live messages a chat stream holds for a client
// slow to take them; past it they are dropped and the gap is filled from
// the writing replica (ChatSyncSubject).
const liveBuffer = 256

// chatRelay writes one client's stream of a session.
type chatRelay struct {
	s              *Server
	w              *bufio.Writer
	log            zerolog.Logger
	owner, session string
	tr             *streams.Transcript // the session up to the last event handled
	setupSeq       uint64              // tr.Seq when the stream was authorized
	sent           uint64              // stream sequence of the last stored event handled (the client's, at first)
	resumeOffset   int                 // the client's offset in the answer being written at sent
	settled        bool                // the stream caught up with setupSeq and took up the answer being written
	asked          map[string]bool     // answers whose question this stream sent
	cur            *liveAnswer         // the answer being written, nil when none
	pending        []streams.ChatLive  // deltas of an answer whose question is not sent yet
	live           chan *nats.Msg
}

// liveAnswer is the answer being written, as far as the client has it.
type liveAnswer struct {
	id, question, correlation string
	asked                     time.Time
	sent                      int    // bytes of the text the client has
	text                      string // text[:sent], when known (known)
	known                     bool
	heard                     time.Time // the last sign of its writer
	gaveUp                    bool      // ended as interrupted by this relay; its end is awaited
}

// maxPending bounds the deltas held for answers not yet asked.
const maxPending = 512

// run subscribes to the session's live messages, then to its stored
// events, replays what the client has not seen and relays both until the
// stream ends. A subscription the hub dropped (the client fell behind)
// resumes from the last stored event written.
func (r *chatRelay) run(ctx context.Context) error {
	r.s.hub.open.Inc()
	defer r.s.hub.open.Dec()
	// Live first: a delta written while the stored events replay is
	// waiting here, not lost.
	sub, err := r.s.deps.NC.ChanSubscribe(streams.ChatLiveSubject(r.owner, r.session), r.live)
	if err != nil {
		return fmt.Errorf("subscribe to the live answers: %w", err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := r.s.deps.NC.FlushTimeout(5 * time.Second); err != nil {
		return fmt.Errorf("subscribe to the live answers: %w", err)
	}
	for {
		hs, liveFrom, err := r.s.chatHub.subscribe(ctx, r.owner, r.session)
		if err != nil {
			return err
		}
		done := false
		if r.sent < liveFrom {
			done, err = r.replay(ctx, liveFrom)
		}
		if err == nil && !done {
			err = r.settle(ctx)
		}
		if err == nil && !done {
			done, err = r.relay(ctx, hs)
		}
		r.s.chatHub.unsubscribe(hs)
		if done || err != nil {
			return err
		}
		r.s.hub.resyncs.Inc()
	}
}

// replay handles the stored events after the last one handled up to upTo.
func (r *chatRelay) replay(ctx context.Context, upTo uint64) (done bool, err error) {
	release, err := r.s.hub.setupSlot(ctx)
	if err != nil {
		return false, err
	}
	defer release()
	err = r.s.chats.Replay(ctx, streams.ChatFilter(r.owner, r.session), r.sent, upTo, func(ev *streams.Event) (bool, error) {
		var werr error
		done, werr = r.stored(ctx, ev)
		return done, werr
	})
	return done, err
}

// relay writes stored and live messages as they come, a heartbeat
// comment every interval, and watches the answer being written.
func (r *chatRelay) relay(ctx context.Context, hs *subscription) (done bool, err error) {
	heartbeat := time.NewTicker(r.s.cfg.SSEHeartbeat)
	defer heartbeat.Stop()
	watch := time.NewTicker(max(r.s.cfg.ChatWatchdog/10, 20*time.Millisecond))
	defer watch.Stop()
	for {
		select {
		case ev := <-hs.events:
			if done, err := r.stored(ctx, ev); done || err != nil {
				return true, err
			}
			if err := r.settle(ctx); err != nil {
				return true, err
			}
		case msg := <-r.live:
			var live streams.ChatLive
			if json.Unmarshal(msg.Data, &live) != nil {
				continue
			}
			if err := r.onLive(ctx, live); err != nil {
				return true, err
			}
		case <-hs.lost:
			return false, nil
		case <-heartbeat.C:
			// A failed write is the only sign that the client left.
			if err := writeSSE(r.w, ": heartbeat\n\n"); err != nil {
				return true, err
			}
		case <-watch.C:
			if err := r.watch(ctx); err != nil {
				return true, err
			}
		case <-ctx.Done():
			return true, ctx.Err()
		}
	}
}

// stored handles one stored event: writes what the client has not seen
// and follows the answer being written. done: the session was deleted.
func (r *chatRelay) stored(ctx context.Context, ev *streams.Event) (done bool, err error) {
	if ev.Seq <= r.sent {
		return false, nil
	}
	// An event after the transcript's is folded in; one before it (the
	// replay of what the client missed) is in it already.
	fresh := ev.Seq > r.tr.Seq
	var before string
	switch ev.EventKind() {
	case streams.ChatAsked:
		var d streams.ChatAskedData
		if err := ev.Decode(&d); err != nil {
			break
		}
		if err := r.fold(ev, fresh); err != nil {
			return true, err
		}
		if err := r.question(ev, d); err != nil {
			return true, err
		}
		r.sent = ev.Seq // the deltas that follow are after it
		if a := findMessage(r.tr, d.AnswerID); a != nil && a.Status == streams.MessageAnswering {
			r.asked[d.AnswerID] = true
			r.follow(ctx, a, ev.CorrelationID, 0)
		}
	case streams.ChatAnswered, streams.ChatFailed:
		var d streams.ChatAnswerData
		if err := ev.Decode(&d); err != nil {
			break
		}
		if a := findMessage(r.tr, d.AnswerID); a != nil {
			before = a.Status
		}
		if err := r.fold(ev, fresh); err != nil {
			return true, err
		}
		if r.cur != nil && r.cur.id == d.AnswerID {
			r.cur = nil
		}
		r.dropPending(d.AnswerID)
		a := findMessage(r.tr, d.AnswerID)
		// A second end of an answer, or the end of one regenerated since
		// (its replacement follows), is not news.
		if a == nil || a.Status == streams.MessageAnswering || (fresh && before != streams.MessageAnswering) {
			break
		}
		name := "answer"
		if a.Status != streams.MessageComplete {
			name = "error"
		}
		if err := r.frame(strconv.FormatUint(ev.Seq, 10), name, shownMessage(*a)); err != nil {
			return true, err
		}
	case streams.ChatDeleted:
		r.sent = ev.Seq
		return true, r.frame(strconv.FormatUint(ev.Seq, 10), "deleted", map[string]string{"id": r.session})
	default:
		if err := r.fold(ev, fresh); err != nil {
			return true, err
		}
	}
	r.sent = ev.Seq
	return false, nil
}

func (r *chatRelay) fold(ev *streams.Event, fresh bool) error {
	if !fresh {
		return nil
	}
	return r.tr.Apply(ev)
}

// chatQuestion is the data of a question event: the user's message, with
// the answer it awaits (and the one that answer replaces).
type chatQuestion struct {
	streams.ChatMessage
	AnswerID    string `json:"answer_id"`
	Regenerates string `json:"regenerates,omitempty"`
}

func (r *chatRelay) question(ev *streams.Event, d streams.ChatAskedData) error {
	q := streams.ChatMessage{ID: d.MessageID, Role: streams.RoleUser, Status: streams.MessageSent, Content: d.Content, CreatedAt: ev.Time}
	if m := findMessage(r.tr, d.MessageID); m != nil {
		q = *m
	}
	return r.frame(strconv.FormatUint(ev.Seq, 10), "question", chatQuestion{ChatMessage: shownMessage(q), AnswerID: d.AnswerID, Regenerates: d.Regenerates})
}

// follow makes a the answer being written, of which the client has sent
// bytes, and relays the live messages that came before its question.
func (r *chatRelay) follow(ctx context.Context, a *streams.ChatMessage, correlation string, sent int) {
	r.cur = &liveAnswer{id: a.ID, question: a.QuestionID, correlation: correlation, asked: a.CreatedAt, sent: sent, known: sent == 0, heard: time.Now()}
	held := r.pending
	r.pending = nil
	for _, m := range held {
		if m.AnswerID == a.ID {
			_ = r.onLive(ctx, m)
		} else {
			r.pending = append(r.pending, m)
		}
	}
}

func (r *chatRelay) dropPending(answer string) {
	kept := r.pending[:0]
	for _, m := range r.pending {
		if m.AnswerID != answer {
			kept = append(kept, m)
		}
	}
	r.pending = kept
}

// settle takes up, once the stream has caught up with the session as it
// was authorized, the answer that was being written before the client's
// last event (the client has its text up to its offset), and sends the
// client the text written so far that it lacks.
func (r *chatRelay) settle(ctx context.Context) error {
	if r.settled || r.sent < r.setupSeq {
		return nil
	}
	r.settled = true
	a := r.tr.Answering()
	if a == nil {
		return nil
	}
	if r.cur == nil || r.cur.id != a.ID {
		sent := 0
		if !r.asked[a.ID] {
			sent = r.resumeOffset
		}
		r.follow(ctx, a, "", sent)
	}
	_, err := r.sync(ctx, r.cur)
	return err
}

// onLive relays a live message of the session.
func (r *chatRelay) onLive(ctx context.Context, m streams.ChatLive) error {
	a := r.cur
	if a == nil || a.id != m.AnswerID {
		// Text before its question (the stored event travels slower than
		// core NATS): held. After its end: late, dropped.
		if m.Kind == streams.LiveDelta && findMessage(r.tr, m.AnswerID) == nil && len(r.pending) < maxPending {
			r.pending = append(r.pending, m)
		}
		return nil
	}
	a.heard = time.Now()
	if m.Kind != streams.LiveDelta {
		return nil
	}
	end := m.Offset + len(m.Text)
	if end <= a.sent {
		return nil // sent already
	}
	if m.Offset > a.sent {
		// Deltas were missed (dropped for a slow client, or sent before
		// the stream subscribed): the writer has the whole text.
		if _, err := r.sync(ctx, a); err != nil || m.Offset > a.sent || end <= a.sent {
			return err
		}
	}
	return r.delta(a, m.Text[a.sent-m.Offset:])
}

// sync fetches the text of a from its writer and sends the client what it
// lacks.
func (r *chatRelay) sync(ctx context.Context, a *liveAnswer) (writer, error) {
	w, live := r.s.syncAnswer(ctx, r.owner, r.session, a.id)
	if w != writerFound {
		return w, nil
	}
	a.heard = time.Now()
	if len(live.Text) < a.sent {
		return w, nil
	}
	a.text, a.known = live.Text[:a.sent], true
	if len(live.Text) == a.sent {
		return w, nil
	}
	return w, r.delta(a, live.Text[a.sent:])
}

// delta sends the next text of a.
func (r *chatRelay) delta(a *liveAnswer, text string) error {
	offset := a.sent
	a.sent += len(text)
	if a.known {
		a.text += text
	}
	id := strconv.FormatUint(r.sent, 10) + "." + strconv.Itoa(a.sent)
	return r.frame(id, "delta", struct {
		AnswerID string `json:"answer_id"`
		Offset   int    `json:"offset"`
		Text     string `json:"text"`
	}{a.id, offset, text})
}

// watch checks on the answer being written when its writer has been
// silent for the watchdog's time: a replica that is writing it answers a
// sync request (and the client gets any text it lacks); when none
// listens, the answer is ended as interrupted with the text relayed.
func (r *chatRelay) watch(ctx context.Context) error {
	a := r.cur
	if a == nil || a.gaveUp || time.Since(a.heard) < r.s.cfg.ChatWatchdog {
		return nil
	}
	w, err := r.sync(ctx, a)
	if err != nil || w == writerFound {
		return err
	}
	if w == writerUnknown {
		a.heard = time.Now() // a writer may be there but slow: look again later
		return nil
	}
	partial := ""
	if a.known {
		partial = a.text
	}
	m := streams.ChatMeta{Owner: r.owner, Session: r.session, CorrelationID: a.correlation}
	if err := r.s.interrupt(ctx, m, a.id, a.question, partial, a.asked); err != nil {
		r.log.Warn().Err(err).Str("answer_id", a.id).Msg("chat sse: the silent answer could not be ended; trying again")
		a.heard = time.Now()
		return nil
	}
	a.gaveUp = true // its end comes back as a stored event
	return nil
}

// frame writes one event.
func (r *chatRelay) frame(id, event string, data any) error { return writeFrame(r.w, id, event, data) }
