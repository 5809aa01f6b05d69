package api

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strconv"

	"github.com/aiprism/prism/persist/store"
	"github.com/gofiber/fiber/v2"
)

// Text windows are counted in characters (Unicode code points), the unit
// of the document's "chars": a client pages with offset += limit and never
// splits a character. HTTP Range requests count bytes, as HTTP defines.
const (
	defaultTextChars = 100_000
	maxTextChars     = 1_000_000
	maxTextOffset    = 1 << 31
)

// text returns the document's extracted text (UTF-8) from the claim-check
// store. Three ways to ask:
//   - no parameters: the whole text, streamed;
//   - Range: bytes=...: that byte range, 206;
//   - ?offset=&limit=: a window of characters; X-Text-Next-Offset names
//     the next window's offset while text remains.
func (s *Server) text(c *fiber.Ctx) error {
	doc, err := s.loadDocument(c)
	if err != nil {
		return err
	}
	if doc.TextKey == "" {
		return problem(fiber.StatusNotFound, classNoText, "document "+doc.ID+" has no extracted text yet (status "+doc.Status+")")
	}
	window := c.Query("offset") != "" || c.Query("limit") != ""
	if window && c.Get(fiber.HeaderRange) != "" {
		return badParam("offset", "use either a Range header (bytes) or offset/limit (characters), not both")
	}
	s.recordAccess(c, doc.ID, store.AuditViewed, map[string]any{"what": "text"})
	if !window {
		return s.serveObject(c, download{key: doc.TextKey, owner: doc.Owner, resource: doc.ID, contentType: "text/plain; charset=utf-8"})
	}
	offset, err := intParam(c, "offset", 0, 0, maxTextOffset)
	if err != nil {
		return err
	}
	limit, err := intParam(c, "limit", defaultTextChars, 1, maxTextChars)
	if err != nil {
		return err
	}
	return s.textWindow(c, doc, offset, limit)
}

// textWindow answers limit characters from offset. It reads the text from
// its start (S3 cannot seek by character), skipping without keeping, and
// holds at most the window (limit characters) in memory.
func (s *Server) textWindow(c *fiber.Ctx, doc store.Document, offset, limit int) error {
	if err := s.checkOwned(c, doc.TextKey, doc.Owner, doc.ID); err != nil {
		return err
	}
	rc, _, err := s.deps.Blobs.Get(c.UserContext(), doc.TextKey)
	if err != nil {
		return objectErr(err)
	}
	defer rc.Close()
	br := bufio.NewReaderSize(rc, 64<<10)
	for i := 0; i < offset; i++ {
		if _, _, err := br.ReadRune(); errors.Is(err, io.EOF) {
			return badParam("offset", "lies beyond the end of the text ("+strconv.Itoa(i)+" characters)")
		} else if err != nil {
			return err
		}
	}
	var out bytes.Buffer
	n := 0
	for ; n < limit; n++ {
		r, _, err := br.ReadRune()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		out.WriteRune(r)
	}
	_, _, peek := br.ReadRune()
	c.Set(fiber.HeaderContentType, "text/plain; charset=utf-8")
	c.Set("X-Text-Offset", strconv.Itoa(offset))
	c.Set("X-Text-Chars", strconv.Itoa(n))
	if peek == nil {
		c.Set("X-Text-Next-Offset", strconv.Itoa(offset+n))
	}
	if doc.Chars != nil {
		c.Set("X-Text-Total-Chars", strconv.Itoa(*doc.Chars))
	}
	return c.Send(out.Bytes())
}

// intParam reads an optional integer query parameter within [lo, hi].
func intParam(c *fiber.Ctx, name string, def, lo, hi int) (int, error) {
	raw := c.Query(name)
	if raw == "" {
		return def, nil
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < lo || n > hi {
		return 0, badParam(name, "must be an integer from "+strconv.Itoa(lo)+" to "+strconv.Itoa(hi))
	}
	return n, nil
}

// loadDocument reads the document named by :id for its owner. A document
// the event log knows but the read model does not yet is 409 not-ready
// (retry shortly); a deleted or unknown one is 404.
func (s *Server) loadDocument(c *fiber.Ctx) (store.Document, error) {
	id, err := documentID(c)
	if err != nil {
		return store.Document{}, err
	}
	doc, err := s.deps.Documents.GetDocument(c.UserContext(), ownerOf(c), id)
	if errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrDeleted) {
		if _, serr := s.statusOf(c.UserContext(), ownerOf(c), id); serr != nil {
			return doc, serr
		}
		c.Set(fiber.HeaderRetryAfter, "1")
		return doc, problem(fiber.StatusConflict, classNotReady, "document "+id+" was just uploaded; retry in a moment")
	}
	if errors.Is(err, store.ErrNotFound) {
		return doc, notFound(id)
	}
	return doc, err
}
