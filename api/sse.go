package api

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"strconv"

	"github.com/aiprism/prism/streams"
	"github.com/gofiber/fiber/v2"
)

// documentEvents streams a document's events as server-sent events. Each
// event's id is its DOCS stream sequence: a client that reconnects with
// Last-Event-ID (to this replica or any other) resumes exactly after the
// last event it saw. The stream replays what happened so far, goes live,
// sends a comment every heartbeat interval, and ends after the terminal
// event (analyzed or failed) of the latest run at the time of the request,
// so a re-analyzed document's stream runs on to the new run's outcome.
func (s *Server) documentEvents(c *fiber.Ctx) error {
	owner := ownerOf(c)
	id, err := documentID(c)
	if err != nil {
		return err
	}
	var after uint64
	if last := c.Get("Last-Event-ID", c.Query("lastEventId")); last != "" {
		n, err := strconv.ParseUint(last, 10, 64)
		if err != nil {
			return problem(fiber.StatusBadRequest, "bad-last-event-id", "Last-Event-ID must be an event id from this stream")
		}
		after = n
	}
	// Authorize before subscribing: the filter carries the owner, so the
	// follower can only ever see this owner's document.
	exists, err := streams.DocumentExists(c.UserContext(), s.deps.JS, owner, id)
	if err != nil {
		return err
	}
	if !exists {
		return notFound(id)
	}
	if st, err := s.deps.Documents.DocumentState(c.UserContext(), owner, id); err == nil && st.Deleted {
		return notFound(id)
	}
	lastRun, err := s.events.latestRun(c.UserContext(), owner, id)
	if err != nil {
		return err
	}
	// Copy what the writer needs: fiber.Ctx is recycled once the handler returns.
	js, heartbeat := s.deps.JS, s.cfg.SSEHeartbeat
	log := s.deps.Log.With().Str("document_id", id).Str("owner", owner).Logger()
	filter := streams.DocumentFilter(owner, id)

	c.Set(fiber.HeaderContentType, "text/event-stream")
	c.Set(fiber.HeaderCacheControl, "no-cache")
	c.Set(fiber.HeaderConnection, "keep-alive")
	c.Set("X-Accel-Buffering", "no")
	c.Context().SetBodyStreamWriter(func(w *bufio.Writer) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		f, err := streams.Follow(ctx, js, filter, after)
		if err != nil {
			log.Warn().Err(err).Msg("sse: cannot follow")
			return
		}
		defer f.Close()
		if writeSSE(w, "retry: 2000\n\n") != nil {
			return
		}
		for {
			ev, err := f.Next(ctx, heartbeat)
			if errors.Is(err, streams.ErrIdle) {
				// A failed write is the only sign that the client left.
				if writeSSE(w, ": heartbeat\n\n") != nil {
					return
				}
				continue
			}
			if err != nil {
				log.Debug().Err(err).Msg("sse: follower ended")
				return
			}
			if writeEvent(w, ev) != nil {
				return
			}
			if ev.EventKind().Terminal() && ev.Run >= lastRun {
				return
			}
		}
	})
	return nil
}

func writeEvent(w *bufio.Writer, ev *streams.Event) error {
	data, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	frame := make([]byte, 0, len(data)+64)
	frame = append(frame, "id: "...)
	frame = strconv.AppendUint(frame, ev.Seq, 10)
	frame = append(frame, "\nevent: "...)
	frame = append(frame, ev.EventKind()...)
	frame = append(frame, "\ndata: "...)
	frame = append(frame, data...) // JSON never contains a raw newline
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
