package api

import (
	"errors"

	"github.com/aiprism/prism/persist/store"
	"github.com/gofiber/fiber/v2"
)

// listDocuments pages through the owner's documents, filtered and sorted
// (see filterParams). Pages are keyset-based: next_cursor names the last
// row shown, so uploads arriving meanwhile never shift or repeat a page.
// An empty next_cursor means the last page.
func (s *Server) listDocuments(c *fiber.Ctx) error {
	fp, err := queryFilters(c)
	if err != nil {
		return err
	}
	q, err := fp.query()
	if err != nil {
		return err
	}
	if q.Limit, q.Cursor, err = pageParams(c); err != nil {
		return err
	}
	docs, next, err := s.deps.Documents.ListDocuments(c.UserContext(), ownerOf(c), q)
	switch {
	case errors.Is(err, store.ErrBadCursor):
		return badParam("cursor", "is not a cursor from this API for sort "+sortName(q.Sort))
	case err != nil:
		return err
	}
	if docs == nil {
		docs = []store.Document{}
	}
	return c.JSON(fiber.Map{"items": docs, "next_cursor": next})
}

func sortName(s string) string {
	if s == "" {
		return store.SortNewest
	}
	return s
}
