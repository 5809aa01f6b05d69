package api

import (
	"errors"
	"time"

	"github.com/aiprism/prism/persist/store"
	"github.com/gofiber/fiber/v2"
)

// deleteDocument soft-deletes a document: it leaves every listing and
// read at once (deleted_at, with an audit.deleted entry in the same
// statement), then its stored objects (the original and every run's text)
// are removed. It is idempotent: deleting again answers 204 and retries
// the object removal, so a DELETE that failed half way is finished by
// repeating it. The projector never clears deleted_at, so late events of
// the document cannot bring it back.
func (s *Server) deleteDocument(c *fiber.Ctx) error {
	owner := ownerOf(c)
	id, err := documentID(c)
	if err != nil {
		return err
	}
	ctx := c.UserContext()
	del, err := s.deps.Documents.Delete(ctx, owner, id, s.actor(c), time.Now().UTC())
	if errors.Is(err, store.ErrNotFound) {
		exists, serr := s.events.DocumentExists(ctx, owner, id)
		if serr != nil {
			return serr
		}
		if !exists {
			return notFound(id)
		}
		// Only the event log knows it yet; there is no row to mark.
		c.Set(fiber.HeaderRetryAfter, "1")
		return problem(fiber.StatusConflict, classNotReady, "document "+id+" was just uploaded; retry the delete in a moment")
	}
	if err != nil {
		return err
	}
	var failed []error
	for _, key := range del.Keys {
		if s.checkOwned(c, key, owner, id) != nil {
			continue // named by a forged or mistaken event: another owner's object stays
		}
		if err := s.deps.Blobs.Delete(ctx, key); err != nil {
			failed = append(failed, err)
		}
	}
	if len(failed) > 0 {
		s.deps.Log.Error().Err(errors.Join(failed...)).Str("document_id", id).Msg("delete: stored objects remain")
		return problem(fiber.StatusServiceUnavailable, classStorage,
			"the document is deleted but some of its stored objects could not be removed yet; repeat the DELETE")
	}
	return c.SendStatus(fiber.StatusNoContent)
}
