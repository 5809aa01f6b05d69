package api

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"strconv"

	"github.com/aiprism/prism/ingest"
	"github.com/aiprism/prism/platform/quota"
	"github.com/aiprism/prism/streams"
	"github.com/gofiber/fiber/v2"
)

// Form limits: what a client may send besides the file.
const (
	maxFormFields     = 16       // parts other than "file"
	maxFormFieldBytes = 64 << 10 // their bodies together
	// formOverhead is what the whole body may hold beyond the file: the
	// other fields, every part's headers and the boundaries.
	formOverhead = 2 * maxFormFieldBytes
)

// uploadLimit is the largest document the API accepts: API_MAX_UPLOAD_BYTES,
// or ingest's own limit if that is lower.
func (s *Server) uploadLimit() int64 {
	limit := s.deps.Ingest.MaxBytes()
	if s.cfg.MaxUploadBytes > 0 {
		limit = min(limit, s.cfg.MaxUploadBytes)
	}
	return limit
}

// upload accepts one document as multipart/form-data (field "file") and
// streams it to the claim-check store: the body is never held in memory.
// It answers 202 once the original and its uploaded event are durable.
// The body arrives capped (limitBodies): a document over the limit is
// refused with 413 while it streams, and nothing of it is kept. An owner
// over a limit (uploads per minute, documents in flight, the daily model
// budget) is refused with 429 before the body is read.
func (s *Server) upload(c *fiber.Ctx) error {
	mediaType, params, err := mime.ParseMediaType(c.Get(fiber.HeaderContentType))
	if err != nil || mediaType != "multipart/form-data" || params["boundary"] == "" {
		return problem(fiber.StatusUnsupportedMediaType, "not-multipart", "send the document as multipart/form-data in a field named \"file\"")
	}
	doc := quota.Doc{ID: streams.NewID(), Run: 1}
	admission, err := s.admit(c, doc, true)
	if err != nil {
		return err
	}
	if err := s.receive(c, params["boundary"], doc.ID); err != nil {
		s.cancel(c, admission)
		return err
	}
	return nil
}

// receive reads the form and stores its file as document id.
func (s *Server) receive(c *fiber.Ctx, boundary, id string) error {
	body, ok := c.Locals(localsUploadBody).(io.Reader)
	if !ok {
		body = bytes.NewReader(c.Body()) // no body, or one limitBodies read
	}
	mr := multipart.NewReader(body, boundary)
	fields, fieldBytes := 0, int64(0)
	for {
		part, err := mr.NextPart()
		switch {
		case errors.Is(err, io.EOF):
			return problem(fiber.StatusBadRequest, "no-file", "the form has no field named \"file\"")
		case err != nil:
			return s.badForm(err)
		}
		if part.FormName() == "file" {
			if err := s.accept(c, part, id); err != nil {
				return err
			}
			_, _ = io.Copy(io.Discard, body) // the closing boundary: read, so the connection stays usable
			return nil
		}
		// Other fields are read and dropped, within bounds.
		fields++
		n, err := io.Copy(io.Discard, io.LimitReader(part, maxFormFieldBytes-fieldBytes+1))
		fieldBytes += n
		switch {
		case fields > maxFormFields || fieldBytes > maxFormFieldBytes:
			return problem(fiber.StatusRequestEntityTooLarge, classTooLarge,
				"the form may hold at most "+strconv.Itoa(maxFormFields)+" fields besides \"file\", of "+humanBytes(maxFormFieldBytes)+" together")
		case err != nil:
			return s.badForm(err)
		}
	}
}

// badForm answers a form that could not be read: the body's problem, or
// what the multipart reader found wrong with it.
func (s *Server) badForm(err error) *Problem {
	if p := bodyProblem(err, s.tooLarge(true)); p != nil {
		return p
	}
	return problem(fiber.StatusBadRequest, "bad-multipart", "the multipart body is malformed: "+err.Error())
}

func (s *Server) accept(c *fiber.Ctx, part *multipart.Part, id string) error {
	defer part.Close()
	filename := part.FileName()
	if filename == "" {
		filename = "document"
	}
	owner := ownerOf(c)
	ev, err := s.deps.Ingest.Accept(c.UserContext(), ingest.Upload{
		Owner:         owner,
		DocumentID:    id,
		Filename:      filename,
		ContentType:   part.Header.Get(fiber.HeaderContentType),
		Size:          -1,
		UploadedBy:    owner,
		Via:           "http",
		CorrelationID: requestID(c),
		Body:          part,
		MaxBytes:      s.uploadLimit(),
	})
	if p := bodyProblem(err, s.tooLarge(true)); p != nil {
		return p
	}
	switch {
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
