package api

import (
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"strconv"
	"strings"
	"time"

	"github.com/aiprism/prism/ingest"
	"github.com/aiprism/prism/persist/store"
	"github.com/aiprism/prism/streams"
	"github.com/gofiber/fiber/v2"
)

// upload accepts one document as multipart/form-data (field "file") and
// streams it to the claim-check store: the body is never held in memory.
// It answers 202 once the original and its uploaded event are durable.
func (s *Server) upload(c *fiber.Ctx) error {
	mediaType, params, err := mime.ParseMediaType(c.Get(fiber.HeaderContentType))
	if err != nil || mediaType != "multipart/form-data" || params["boundary"] == "" {
		return problem(fiber.StatusUnsupportedMediaType, "not-multipart", "send the document as multipart/form-data in a field named \"file\"")
	}
	body := c.Context().RequestBodyStream()
	if body == nil {
		body = strings.NewReader(string(c.Body()))
	}
	mr := multipart.NewReader(body, params["boundary"])
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return problem(fiber.StatusBadRequest, "no-file", "the form has no field named \"file\"")
		}
		if err != nil {
			return problem(fiber.StatusBadRequest, "bad-multipart", "the multipart body is malformed: "+err.Error())
		}
		if part.FormName() != "file" {
			_ = part.Close()
			continue
		}
		return s.accept(c, part)
	}
}

func (s *Server) accept(c *fiber.Ctx, part *multipart.Part) error {
	defer part.Close()
	filename := part.FileName()
	if filename == "" {
		filename = "document"
	}
	owner := ownerOf(c)
	ev, err := s.deps.Ingest.Accept(c.UserContext(), ingest.Upload{
		Owner:         owner,
		Filename:      filename,
		ContentType:   part.Header.Get(fiber.HeaderContentType),
		Size:          -1,
		UploadedBy:    owner,
		Via:           "http",
		CorrelationID: requestID(c),
		Body:          part,
	})
	switch {
	case errors.Is(err, ingest.ErrTooLarge):
		return problem(fiber.StatusRequestEntityTooLarge, "too-large", "the document exceeds the upload limit of "+humanBytes(s.deps.Ingest.MaxBytes()))
	case errors.Is(err, ingest.ErrEmpty):
		return problem(fiber.StatusBadRequest, "empty", "the document is empty")
	case err != nil:
		return err
	}
	loc := "/api/v1/documents/" + ev.Subject
	c.Location(loc)
	return c.Status(fiber.StatusAccepted).JSON(fiber.Map{
		"id":             ev.Subject,
		"status":         "uploaded",
		"correlation_id": ev.CorrelationID,
		"links": fiber.Map{
			"self":   loc,
			"events": loc + "/events",
		},
	})
}

// getDocument returns the document with its stage timeline and, once
// analyzed, its assessment. Right after an upload the read model may not
// have caught up yet: the stream is consulted so the caller still sees the
// document it was just told about, with status uploaded.
func (s *Server) getDocument(c *fiber.Ctx) error {
	owner, id := ownerOf(c), c.Params("id")
	if streams.ValidToken(id) != nil {
		return notFound(id)
	}
	doc, err := s.deps.Documents.GetDocument(c.UserContext(), owner, id)
	if errors.Is(err, store.ErrNotFound) {
		exists, serr := streams.DocumentExists(c.UserContext(), s.deps.JS, owner, id)
		if serr != nil {
			return serr
		}
		if !exists {
			return notFound(id)
		}
		return c.JSON(fiber.Map{"id": id, "status": "uploaded", "timeline": []any{}, "pending_projection": true})
	}
	if err != nil {
		return err
	}
	return c.JSON(s.caughtUp(c, doc))
}

// caughtUp gives the read model a moment to apply the document's newest
// event, so a client that just saw an event over SSE reads a document that
// reflects it. It waits at most readYourWritesWait, then answers with what
// is there.
func (s *Server) caughtUp(c *fiber.Ctx, doc store.Document) store.Document {
	ctx := c.UserContext()
	last, err := streams.LastSeq(ctx, s.deps.JS, doc.Owner, doc.ID)
	if err != nil || uint64(doc.LastEventSeq) >= last {
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
		if uint64(doc.LastEventSeq) >= last {
			break
		}
	}
	return doc
}

const readYourWritesWait = 2 * time.Second

func notFound(id string) *Problem {
	return problem(fiber.StatusNotFound, "not-found", "no document "+id)
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return strconv.FormatInt(n/div, 10) + " " + string("KMGT"[exp]) + "iB"
}
