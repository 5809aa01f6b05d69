package api

import (
	"time"

	"github.com/aiprism/prism/persist/store"
	"github.com/gofiber/fiber/v2"
)

// actor is who makes the request, for audit entries.
func (s *Server) actor(c *fiber.Ctx) store.Actor {
	return store.Actor{User: ownerOf(c), RequestID: requestID(c), Source: Source}
}

// recordAccess writes a read's audit entry. It is best effort: a reader is
// not refused because the audit row could not be written, but the failure
// is logged (and counted as an error log) for the operator.
func (s *Server) recordAccess(c *fiber.Ctx, id, typ string, extra map[string]any) {
	err := s.deps.Documents.RecordAccess(c.UserContext(), ownerOf(c), id, typ, s.actor(c), time.Now().UTC(), extra)
	if err != nil {
		s.deps.Log.Error().Err(err).Str("document_id", id).Str("audit", typ).Str("request_id", requestID(c)).
			Msg("audit entry not recorded")
	}
}
