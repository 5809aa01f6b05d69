package api

import (
	"github.com/aiprism/prism/persist/store"
	"github.com/gofiber/fiber/v2"
)

// original downloads the document as uploaded. It is always an attachment
// of type application/octet-stream (with nosniff): the bytes are untrusted
// and must never render in the API's origin. Range requests resume
// interrupted downloads.
func (s *Server) original(c *fiber.Ctx) error {
	doc, err := s.loadDocument(c)
	if err != nil {
		return err
	}
	if doc.OriginalKey == "" {
		return problem(fiber.StatusNotFound, "object-missing", "document "+doc.ID+" has no stored original")
	}
	name := doc.Filename
	if name == "" {
		name = "document"
	}
	s.recordAccess(c, doc.ID, store.AuditDownloaded, nil)
	return s.serveObject(c, download{key: doc.OriginalKey, owner: doc.Owner, resource: doc.ID, contentType: "application/octet-stream", filename: name})
}
