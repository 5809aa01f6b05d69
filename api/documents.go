package api

import (
	"context"
	"errors"
	"time"

	"github.com/aiprism/prism/persist/store"
	"github.com/aiprism/prism/streams"
	"github.com/gofiber/fiber/v2"
)

// getDocument returns the document with its stage timeline and, once
// analyzed, its assessment. Right after an upload the read model may not
// have caught up yet: the stream is consulted so the caller still sees the
// document it was just told about, with status uploaded.
func (s *Server) getDocument(c *fiber.Ctx) error {
	owner := ownerOf(c)
	id, err := documentID(c)
	if err != nil {
		return err
	}
	doc, err := s.deps.Documents.GetDocument(c.UserContext(), owner, id)
	switch {
	case errors.Is(err, store.ErrDeleted):
		return notFound(id)
	case errors.Is(err, store.ErrNotFound):
		exists, serr := s.events.DocumentExists(c.UserContext(), owner, id)
		if serr != nil {
			return serr
		}
		if !exists {
			return notFound(id)
		}
		return c.JSON(fiber.Map{"id": id, "status": streams.StatusUploaded, "timeline": []any{}, "pending_projection": true})
	case err != nil:
		return err
	}
	doc = s.caughtUp(c, doc)
	s.recordAccess(c, id, store.AuditViewed, map[string]any{"what": "document"})
	return c.JSON(doc)
}

// caughtUp gives the read model a moment to apply the document's newest
// event, so a client that just saw an event over SSE reads a document that
// reflects it. It waits at most readYourWritesWait, then answers with what
// is there.
func (s *Server) caughtUp(c *fiber.Ctx, doc store.Document) store.Document {
	ctx := c.UserContext()
	last, err := s.events.LastSeq(ctx, doc.Owner, doc.ID)
	if err != nil || applied(doc) >= last {
		return doc
	}
	deadline := time.Now().Add(readYourWritesWait)
	for time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
		fresh, err := s.deps.Documents.GetDocument(ctx, doc.Owner, doc.ID)
		if err != nil {
			return doc
		}
		doc = fresh
		if applied(doc) >= last {
			break
		}
	}
	return doc
}

// applied is the newest stream sequence the read model has applied to
// doc: its row's, or its history's for events that imply no status (the
// row only moves with status).
func applied(doc store.Document) uint64 {
	seq := doc.LastEventSeq
	for _, ev := range doc.Timeline {
		seq = max(seq, ev.Seq)
	}
	return uint64(seq)
}

const readYourWritesWait = 2 * time.Second

// getAssessment returns the assessment of the document's latest analyzed
// run. A document without one yet is a 404 of class no-assessment, which
// says its status, so a client can tell "not yet" from "no such document".
func (s *Server) getAssessment(c *fiber.Ctx) error {
	owner := ownerOf(c)
	id, err := documentID(c)
	if err != nil {
		return err
	}
	a, err := s.deps.Documents.GetAssessment(c.UserContext(), owner, id)
	if errors.Is(err, store.ErrNotFound) {
		status, err := s.statusOf(c.UserContext(), owner, id)
		if err != nil {
			return err
		}
		return problem(fiber.StatusNotFound, classNoAnalysis, "document "+id+" has no assessment yet (status "+status+")")
	}
	if err != nil {
		return err
	}
	s.recordAccess(c, id, store.AuditViewed, map[string]any{"what": "assessment"})
	return c.JSON(a)
}

// statusOf returns the status of a document that exists for owner, or the
// not-found problem. A document the read model has not seen yet but the
// stream has is "uploaded".
func (s *Server) statusOf(ctx context.Context, owner, id string) (string, error) {
	st, err := s.deps.Documents.DocumentState(ctx, owner, id)
	switch {
	case err == nil && st.Deleted:
		return "", notFound(id)
	case err == nil:
		return st.Status, nil
	case !errors.Is(err, store.ErrNotFound):
		return "", err
	}
	exists, err := s.events.DocumentExists(ctx, owner, id)
	if err != nil {
		return "", err
	}
	if !exists {
		return "", notFound(id)
	}
	return streams.StatusUploaded, nil
}

// history returns the document's full history, oldest first: the
// pipeline's events and the audit entries (views, downloads, exports,
// deletion), paged like the document list.
func (s *Server) history(c *fiber.Ctx) error {
	id, err := documentID(c)
	if err != nil {
		return err
	}
	limit, cursor, err := pageParams(c)
	if err != nil {
		return err
	}
	items, next, err := s.deps.Documents.History(c.UserContext(), ownerOf(c), id, limit, cursor)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return notFound(id)
	case errors.Is(err, store.ErrBadCursor):
		return badParam("cursor", "is not a cursor from this API")
	case err != nil:
		return err
	}
	if items == nil {
		items = []store.HistoryEntry{}
	}
	return c.JSON(fiber.Map{"items": items, "next_cursor": next})
}

func notFound(id string) *Problem {
	if id == "" {
		return problem(fiber.StatusNotFound, classNotFound, "no such document")
	}
	return problem(fiber.StatusNotFound, classNotFound, "no document "+id)
}
