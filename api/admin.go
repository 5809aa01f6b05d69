package api

import (
	"encoding/json"

	"github.com/aiprism/prism/persist/store"
	"github.com/gofiber/fiber/v2"
)

// auditForeignRead serves an admin's read of another user's documents and
// audits it under the admin's name. The document, assessment, text and
// original routes audit every read themselves (the actor is the admin);
// the list, the history and the event stream audit only such reads, here:
// one audit.viewed entry per document shown.
func (s *Server) auditForeignRead(c *fiber.Ctx) error {
	if err := c.Next(); err != nil {
		return err
	}
	if code := c.Response().StatusCode(); code < 200 || code >= 300 {
		return nil
	}
	// After Next, the route is the one that answered.
	switch route := c.Route().Path; route {
	case "/api/v1/documents":
		var page struct {
			Items []struct {
				ID string `json:"id"`
			} `json:"items"`
		}
		if err := json.Unmarshal(c.Response().Body(), &page); err != nil {
			s.deps.Log.Error().Err(err).Str("request_id", requestID(c)).Msg("admin read not audited: the list is unreadable")
			return nil
		}
		for _, d := range page.Items {
			s.recordAccess(c, d.ID, store.AuditViewed, map[string]any{"what": "list"})
		}
	case "/api/v1/documents/:id/history":
		s.recordAccess(c, c.Params("id"), store.AuditViewed, map[string]any{"what": "history"})
	case "/api/v1/documents/:id/events":
		s.recordAccess(c, c.Params("id"), store.AuditViewed, map[string]any{"what": "events"})
	}
	return nil
}
