package api

import (
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"strconv"
	"strings"

	"github.com/aiprism/prism/ingest"
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
		"status":         streams.StatusUploaded,
		"correlation_id": ev.CorrelationID,
		"links": fiber.Map{
			"self":   loc,
			"events": loc + "/events",
		},
	})
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
