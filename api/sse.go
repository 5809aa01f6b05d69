package api

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aiprism/prism/persist/store"
	"github.com/aiprism/prism/streams"
	"github.com/gofiber/fiber/v2"
	"github.com/rs/zerolog"
)

// documentEvents streams a document's events as server-sent events. Each
// event's id is its DOCS stream sequence: a client that reconnects with
// Last-Event-ID (to this replica or any other) resumes exactly after the
// last event it saw. The stream replays what happened so far, goes live,
// sends a comment every heartbeat interval, and ends after the terminal
// event (analyzed or failed) of the latest run at the time of the request,
// so a re-analyzed document's stream runs on to the new run's outcome. A
// client that already has that outcome gets 204 instead of a stream.
func (s *Server) documentEvents(c *fiber.Ctx) error {
	owner := ownerOf(c)
	id, err := documentID(c)
	if err != nil {
		return err
	}
	after, _, err := lastEventID(c)
	if err != nil {
		return err
	}
	// Setting a stream up costs a few reads; when thousands of clients
	// reconnect at once (an API replica restarted), they queue here
	// instead of timing out together.
	release, err := s.hub.setupSlot(c.UserContext())
	if err != nil {
		return err
	}
	defer release()
	// Authorize before subscribing: the subscription and the replay are
	// keyed by owner and document, so they only ever see this document.
	// A check that cannot be made refuses: a stream is never opened on
	// the chance that the document is the caller's (or not deleted).
	latest, err := s.events.Last(c.UserContext(), streams.DocumentFilter(owner, id))
	if err != nil {
		return s.uncheckable(c, "document "+id, err)
	}
	if latest == nil {
		return notFound(id)
	}
	st, err := s.deps.Documents.DocumentState(c.UserContext(), owner, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		// Only the event log knows it yet (just uploaded): its events,
		// found under the caller's owner, are the caller's.
	case err != nil:
		return s.uncheckable(c, "document "+id, err)
	case st.Deleted:
		return notFound(id)
	}
	lastRun := latest.Run
	// EventSource reconnects after every end of a stream (it cannot tell
	// an end from a drop) with the id of the last event it saw. When that
	// is the latest run's outcome, nothing is left to send: 204 makes it
	// stop, where a stream would stay open waiting for an event that never
	// comes.
	if after > 0 {
		final, err := s.outcomeSeq(c.UserContext(), owner, id, latest)
		if err != nil {
			return err
		}
		if final != 0 && after >= final {
			return c.SendStatus(fiber.StatusNoContent)
		}
	}
	log := s.deps.Log.With().Str("document_id", id).Str("owner", owner).Logger()
	return s.openStream(c, log, func(ctx context.Context, w *bufio.Writer) error {
		return s.streamEvents(ctx, &sseOut{w: w, sent: after, lastRun: lastRun}, owner, id)
	})
}

// ownerEvents streams the events of every document of the caller as
// server-sent events, optionally only those of the types listed in
// ?types=: the feed of a dashboard. Ids are DOCS stream sequences, as in a
// document's stream, so Last-Event-ID resumes it exactly, on any replica.
// Without one, the feed starts from now, and its first frame is an id
// alone, which EventSource keeps as its last event id without firing an
// event: a reconnect before the first event then misses nothing either.
// The feed never ends by itself.
func (s *Server) ownerEvents(c *fiber.Ctx) error {
	owner := ownerOf(c)
	types, err := eventTypes(c.Query("types"))
	if err != nil {
		return err
	}
	after, resume, err := lastEventID(c)
	if err != nil {
		return err
	}
	if !resume {
		if after, err = s.hub.position(c.UserContext()); err != nil {
			s.deps.Log.Error().Err(err).Str("request_id", requestID(c)).Msg("sse: the event log cannot be read; no feed")
			c.Set(fiber.HeaderRetryAfter, "2")
			return problem(fiber.StatusServiceUnavailable, classUnavailable, "the event log cannot be read now; retry in a moment")
		}
	}
	log := s.deps.Log.With().Str("owner", owner).Str("stream", "feed").Logger()
	return s.openStream(c, log, func(ctx context.Context, w *bufio.Writer) error {
		if !resume {
			if err := writeSSE(w, "id: "+strconv.FormatUint(after, 10)+"\n\n"); err != nil {
				return err
			}
		}
		return s.streamEvents(ctx, &sseOut{w: w, sent: after, feed: true, types: types}, owner, "")
	})
}

// lastEventID reads where a client resumes a stream: Last-Event-ID, or
// ?lastEventId= from clients that cannot set headers. resume: one was sent.
func lastEventID(c *fiber.Ctx) (after uint64, resume bool, err error) {
	last := c.Get("Last-Event-ID", c.Query("lastEventId"))
	if last == "" {
		return 0, false, nil
	}
	n, err := strconv.ParseUint(last, 10, 64)
	if err != nil {
		return 0, false, problem(fiber.StatusBadRequest, "bad-last-event-id", "Last-Event-ID must be an event id from this stream")
	}
	return n, true, nil
}

// documentEventTypes are the event types of a document's stream, in
// pipeline order.
var documentEventTypes = []streams.EventType{streams.Uploaded, streams.Progress, streams.Extracted, streams.Analyzed, streams.Failed}

// eventTypes reads ?types= (comma-separated document event types); nil
// for all of them.
func eventTypes(raw string) (map[streams.EventType]bool, error) {
	if raw == "" {
		return nil, nil
	}
	types := map[streams.EventType]bool{}
	for name := range strings.SplitSeq(raw, ",") {
		t := streams.EventType(strings.TrimSpace(name))
		if !slices.Contains(documentEventTypes, t) {
			return nil, badParam("types", fmt.Sprintf("%q is not an event type: list some of %v, comma-separated", t, documentEventTypes))
		}
		types[t] = true
	}
	return types, nil
}

// openStream answers with an event stream that run writes. The stream
// holds one of the owner's stream places until it ends (a replica that
// dies stops refreshing it, and it frees itself), and ends with the
// server, not only with the client.
func (s *Server) openStream(c *fiber.Ctx, log zerolog.Logger, run func(ctx context.Context, w *bufio.Writer) error) error {
	lease, err := s.lease(c, leaseSSE, s.cfg.Limits.SSEStreams)
	if err != nil {
		return err
	}
	setSSEHeaders(c)
	// The writer runs after the handler returns: it uses nothing of c.
	c.Context().SetBodyStreamWriter(func(w *bufio.Writer) {
		ctx, cancel := context.WithCancel(s.hub.life)
		defer cancel()
		defer s.release(lease)
		lease.Keep(cancel) // lost (this replica stalled): end, the client reconnects through the limit
		if writeSSE(w, "retry: 2000\n\n") != nil {
			return
		}
		if err := run(ctx, w); err != nil {
			log.Debug().Err(err).Msg("sse: stream ended")
		}
		s.endStream(w)
	})
	return nil
}

// shutdownRetry is the last frame of a stream the server ends because it
// stops: EventSource reconnects after retry ms with Last-Event-ID, and the
// load balancer sends it to a replica still serving.
const shutdownRetry = ": server stopping; resume elsewhere\nretry: 1000\n\n"

// endStream closes an SSE stream; when the server is stopping, with the
// hint to resume elsewhere soon.
func (s *Server) endStream(w *bufio.Writer) {
	if s.hub.life.Err() != nil {
		_ = writeSSE(w, shutdownRetry)
	}
}

// setSSEHeaders makes the answer an event stream that no proxy buffers.
func setSSEHeaders(c *fiber.Ctx) {
	c.Set(fiber.HeaderContentType, "text/event-stream")
	c.Set(fiber.HeaderCacheControl, "no-cache")
	c.Set(fiber.HeaderConnection, "keep-alive")
	c.Set("X-Accel-Buffering", "no")
}

// uncheckable answers a request whose access check failed (the event log
// or the database did not answer): 503, to be retried, with the cause in
// the log only. what names the resource ("document <id>").
func (s *Server) uncheckable(c *fiber.Ctx, what string, err error) error {
	s.deps.Log.Error().Err(err).Str("request_id", requestID(c)).Str("resource", what).Msg("sse: access check failed; no stream")
	c.Set(fiber.HeaderRetryAfter, "2")
	return problem(fiber.StatusServiceUnavailable, classUnavailable, "whether "+what+" is yours cannot be checked now; retry in a moment")
}

// outcomeSeq is the stream sequence of the terminal event (analyzed or
// failed) of latest's run, 0 while that run has none. latest is the
// document's newest event.
func (s *Server) outcomeSeq(ctx context.Context, owner, id string, latest *streams.Event) (uint64, error) {
	if latest.EventKind().Terminal() {
		return latest.Seq, nil
	}
	// An event may follow the outcome within the run (a late progress
	// report): look the outcome up.
	var seq uint64
	for _, t := range []streams.EventType{streams.Analyzed, streams.Failed} {
		ev, err := s.events.Last(ctx, streams.DocSubject(owner, id, t))
		if err != nil {
			return 0, fmt.Errorf("events of %s: last %s: %w", id, t, err)
		}
		if ev != nil && ev.Run >= latest.Run {
			seq = max(seq, ev.Seq)
		}
	}
	return seq, nil
}

// sseOut writes one client's stream and remembers how far it got.
type sseOut struct {
	w       *bufio.Writer
	sent    uint64 // stream sequence of the last event written, or passed over
	lastRun int    // a document's stream ends after this run's terminal event
	// feed: an owner's feed, which never ends, and writes only events of
	// types (all when nil).
	feed  bool
	types map[streams.EventType]bool
}

// write sends ev unless the client has it already or did not ask for its
// type, and reports whether the stream is complete.
func (o *sseOut) write(ev *streams.Event) (done bool, err error) {
	if ev.Seq <= o.sent {
		return false, nil
	}
	if o.types != nil && !o.types[ev.EventKind()] {
		o.sent = ev.Seq // a resync need not read it again
		return false, nil
	}
	if err := writeEvent(o.w, ev); err != nil {
		return true, err
	}
	o.sent = ev.Seq
	return !o.feed && ev.EventKind().Terminal() && ev.Run >= o.lastRun, nil
}

// streamEvents subscribes to the live events of the owner's document id
// (of all the owner's documents when id is empty), writes what the stream
// holds from after the client's last event up to where live delivery
// starts, then the live events. A subscription that fell behind is
// dropped by the hub and resumes the same way from the last event written:
// the client sees every event once, in order.
func (s *Server) streamEvents(ctx context.Context, out *sseOut, owner, id string) error {
	s.hub.open.Inc()
	defer s.hub.open.Dec()
	filter := streams.OwnerFilter(owner)
	if id != "" {
		filter = streams.DocumentFilter(owner, id)
	}
	for {
		sub, liveFrom, err := s.hub.subscribe(ctx, owner, id)
		if err != nil {
			return err
		}
		done := false
		if out.sent < liveFrom {
			done, err = s.replayFor(ctx, filter, out, liveFrom)
		}
		if err == nil && !done {
			done, err = s.live(ctx, out, sub)
		}
		s.hub.unsubscribe(sub)
		if done || err != nil {
			return err
		}
		s.hub.resyncs.Inc()
	}
}

// replayFor writes the stored events after the client's last up to upTo,
// holding a setup slot while it reads; done: the stream is complete.
func (s *Server) replayFor(ctx context.Context, filter string, out *sseOut, upTo uint64) (done bool, err error) {
	release, err := s.hub.setupSlot(ctx)
	if err != nil {
		return false, err
	}
	defer release()
	err = s.events.Replay(ctx, filter, out.sent, upTo, func(ev *streams.Event) (bool, error) {
		var werr error
		done, werr = out.write(ev)
		return done, werr
	})
	return done, err
}

// live writes sub's events until the stream is complete, fails, or the hub
// dropped sub (done and err both zero: resynchronise).
func (s *Server) live(ctx context.Context, out *sseOut, sub *subscription) (done bool, err error) {
	heartbeat := time.NewTicker(s.cfg.SSEHeartbeat)
	defer heartbeat.Stop()
	for {
		select {
		case ev := <-sub.events:
			if done, err := out.write(ev); done || err != nil {
				return true, err
			}
		case <-sub.lost:
			return false, nil
		case <-heartbeat.C:
			// A failed write is the only sign that the client left.
			if err := writeSSE(out.w, ": heartbeat\n\n"); err != nil {
				return true, err
			}
		case <-ctx.Done():
			return true, ctx.Err()
		}
	}
}

func writeEvent(w *bufio.Writer, ev *streams.Event) error {
	return writeFrame(w, strconv.FormatUint(ev.Seq, 10), string(ev.EventKind()), ev)
}

// writeFrame writes one event of id and type with data as JSON.
func writeFrame(w *bufio.Writer, id, event string, data any) error {
	raw, err := json.Marshal(data)
	if err != nil {
		return err
	}
	frame := make([]byte, 0, len(raw)+len(id)+len(event)+32)
	frame = append(frame, "id: "...)
	frame = append(frame, id...)
	frame = append(frame, "\nevent: "...)
	frame = append(frame, event...)
	frame = append(frame, "\ndata: "...)
	frame = append(frame, raw...) // JSON never contains a raw newline
	frame = append(frame, "\n\n"...)
	if _, err := w.Write(frame); err != nil {
		return err
	}
	return w.Flush()
}

func writeSSE(w *bufio.Writer, s string) error {
	if _, err := w.WriteString(s); err != nil {
		return err
	}
	return w.Flush()
}
