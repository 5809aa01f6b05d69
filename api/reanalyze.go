package api

import (
	"fmt"

	"github.com/aiprism/prism/persist/store"
	"github.com/aiprism/prism/platform/quota"
	"github.com/aiprism/prism/streams"
	"github.com/gofiber/fiber/v2"
)

// reanalyze starts a new run of a finished document (analyzed or failed).
// It adds no event type: it re-publishes the event the wanted stage
// already consumes, for run+1, with the payload of the run before:
//   - with extracted text, document.extracted: the analyzer assesses the
//     same text again (its result cache answers when neither text, prompt
//     nor models changed);
//   - without (extraction failed), document.uploaded: the whole pipeline
//     runs again from the stored original.
//
// The projector sees run+1 and moves the document forward; the previous
// assessment stays readable until the new one lands. Two concurrent
// requests publish the same event id (<document>:<run>:<type>), which
// JetStream stores once, so the document gets one new run, not two.
func (s *Server) reanalyze(c *fiber.Ctx) error {
	doc, err := s.loadDocument(c)
	if err != nil {
		return err
	}
	if doc.Status != streams.StatusAnalyzed && doc.Status != streams.StatusFailed {
		return problem(fiber.StatusConflict, classConflict,
			"document "+doc.ID+" is still being processed (status "+doc.Status+"); re-analyze it once it is analyzed or failed")
	}
	next := streams.Meta{Owner: doc.Owner, DocumentID: doc.ID, Run: doc.Run + 1, CorrelationID: requestID(c)}
	// A new run is a document in flight again, and costs model tokens.
	admission, err := s.admit(c, quota.Doc{ID: doc.ID, Run: next.Run}, false)
	if err != nil {
		return err
	}
	ev, err := s.startRun(c, doc, next)
	if err != nil {
		s.cancel(c, admission)
		return err
	}
	loc := "/api/v1/documents/" + doc.ID
	c.Location(loc)
	return c.Status(fiber.StatusAccepted).JSON(fiber.Map{
		"id":             doc.ID,
		"run":            ev.Run,
		"status":         string(ev.EventKind()),
		"correlation_id": ev.CorrelationID,
		"links":          fiber.Map{"self": loc, "events": loc + "/events"},
	})
}

// startRun publishes the event that starts run next of doc.
func (s *Server) startRun(c *fiber.Ctx, doc store.Document, next streams.Meta) (*streams.Event, error) {
	ctx := c.UserContext()
	var ev *streams.Event
	var err error
	switch {
	case doc.TextKey != "":
		var data streams.ExtractedData
		if err := lastPayload(ctx, s.events, doc.Owner, doc.ID, streams.Extracted, &data); err != nil {
			return nil, err
		}
		if data.Text.Key == "" {
			// The event aged out of the log: rebuild the reference from the
			// read model, which is all the analyzer needs.
			data = streams.ExtractedData{Text: streams.ObjectRef{Key: doc.TextKey}, Format: doc.DetectedFormat, Truncated: doc.Truncated}
			data.Words, data.Chars = deref(doc.Words), deref(doc.Chars)
		}
		ev, err = s.pub.Emit(ctx, next, streams.Extracted, "", data)
	case doc.OriginalKey != "":
		var data streams.UploadedData
		if err := lastPayload(ctx, s.events, doc.Owner, doc.ID, streams.Uploaded, &data); err != nil {
			return nil, err
		}
		if data.Original.Key == "" {
			data = streams.UploadedData{Original: streams.ObjectRef{Key: doc.OriginalKey, SHA256: doc.SHA256}, Filename: doc.Filename, ContentType: doc.ContentType}
			if doc.SizeBytes != nil {
				data.Original.Size = *doc.SizeBytes
			}
		}
		data.UploadedBy, data.Via = ownerOf(c), "reanalyze"
		ev, err = s.pub.Emit(ctx, next, streams.Uploaded, "", data)
	default:
		return nil, problem(fiber.StatusConflict, classConflict, "document "+doc.ID+" has neither text nor an original to analyze")
	}
	if err != nil {
		return nil, fmt.Errorf("reanalyze %s: %w", doc.ID, err)
	}
	return ev, nil
}

func deref(p *int) int {
	if p == nil {
		return 0
	}
	return *p
}
