package api

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/aiprism/prism/platform/blob"
	"github.com/gofiber/fiber/v2"
)

// download describes a stored object to answer with.
type download struct {
	key         string
	owner       string // the object must be one of this owner's (the document's or export's)
	resource    string // the document or export id, for the log
	contentType string
	filename    string // "" = shown inline; otherwise an attachment with this name
}

// serveObject streams an object from the claim-check store: the body goes
// from S3 to the client without being held in memory. A single byte range
// (Range: bytes=a-b, a-, -n) is answered with 206 and Content-Range;
// several ranges or a malformed header get the whole object (RFC 9110
// lets a server ignore Range); a range past the end is 416.
func (s *Server) serveObject(c *fiber.Ctx, d download) error {
	if err := s.checkOwned(c, d.key, d.owner, d.resource); err != nil {
		return err
	}
	ctx := c.UserContext()
	c.Set(fiber.HeaderAcceptRanges, "bytes")
	// Headers of the object, set only once it is found: a problem answer
	// must not arrive as an attachment.
	headers := func(info blob.Info) {
		c.Set(fiber.HeaderContentType, d.contentType)
		c.Set("X-Content-Type-Options", "nosniff")
		if d.filename != "" {
			c.Set(fiber.HeaderContentDisposition, attachment(d.filename))
		}
		if info.ETag != "" {
			c.Set(fiber.HeaderETag, `"`+info.ETag+`"`)
		}
		if !info.LastModified.IsZero() {
			c.Set(fiber.HeaderLastModified, info.LastModified.UTC().Format(http.TimeFormat))
		}
	}
	if h := c.Get(fiber.HeaderRange); h != "" {
		info, err := s.deps.Blobs.Head(ctx, d.key)
		if err != nil {
			return objectErr(err)
		}
		start, end, ok, satisfiable := parseRange(h, info.Size)
		if ok && !satisfiable {
			c.Set(fiber.HeaderContentRange, "bytes */"+strconv.FormatInt(info.Size, 10))
			return problem(fiber.StatusRequestedRangeNotSatisfiable, "range-not-satisfiable",
				"the range lies outside the object's "+strconv.FormatInt(info.Size, 10)+" bytes")
		}
		if ok {
			rc, _, err := s.deps.Blobs.GetRange(ctx, d.key, start, end-start+1)
			if err != nil {
				return objectErr(err)
			}
			headers(info)
			c.Set(fiber.HeaderContentRange, "bytes "+strconv.FormatInt(start, 10)+"-"+strconv.FormatInt(end, 10)+"/"+strconv.FormatInt(info.Size, 10))
			c.Status(fiber.StatusPartialContent)
			c.Context().SetBodyStream(rc, int(end-start+1))
			return nil
		}
	}
	rc, info, err := s.deps.Blobs.Get(ctx, d.key)
	if err != nil {
		return objectErr(err)
	}
	headers(info)
	c.Context().SetBodyStream(rc, int(info.Size))
	return nil
}

// checkOwned refuses, before anything is read, a key that is not an
// object of owner: keys come from events, and a forged event could have
// recorded another owner's key on a document. The caller sees the object
// as missing; the log says why.
func (s *Server) checkOwned(c *fiber.Ctx, key, owner, resource string) error {
	if blob.OwnedBy(key, owner) {
		return nil
	}
	s.deps.Log.Error().Str("request_id", requestID(c)).Str("resource", resource).Str("owner", owner).Str("key", key).
		Msg("refused a stored object of another owner")
	return objectErr(blob.ErrNotFound)
}

// objectErr maps a store error: a document whose object is gone is a 404
// of its own class, anything else a 500.
func objectErr(err error) error {
	if errors.Is(err, blob.ErrNotFound) {
		return problem(fiber.StatusNotFound, "object-missing", "the stored object of this resource is missing")
	}
	return err
}

// parseRange reads a single byte range of an object of size bytes. ok is
// false when the header should be ignored (not bytes, several ranges,
// malformed); satisfiable is false when the range starts past the end.
func parseRange(h string, size int64) (start, end int64, ok, satisfiable bool) {
	spec, found := strings.CutPrefix(h, "bytes=")
	if !found || strings.Contains(spec, ",") {
		return 0, 0, false, false
	}
	first, last, found := strings.Cut(strings.TrimSpace(spec), "-")
	if !found {
		return 0, 0, false, false
	}
	if first == "" { // suffix: the last n bytes
		n, err := strconv.ParseInt(last, 10, 64)
		if err != nil || n < 0 {
			return 0, 0, false, false
		}
		if n == 0 || size == 0 {
			return 0, 0, true, false
		}
		return max(0, size-n), size - 1, true, true
	}
	start, err := strconv.ParseInt(first, 10, 64)
	if err != nil || start < 0 {
		return 0, 0, false, false
	}
	end = size - 1
	if last != "" {
		if end, err = strconv.ParseInt(last, 10, 64); err != nil || end < start {
			return 0, 0, false, false
		}
		end = min(end, size-1)
	}
	if start >= size {
		return 0, 0, true, false
	}
	return start, end, true, true
}

// attachment is a Content-Disposition that makes browsers download under
// name: an ASCII fallback for old clients and the exact UTF-8 name in
// filename* (RFC 6266, RFC 8187). Stored names are already reduced to
// letters, digits and . _ - ( ) by blob.SafeFilename; this keeps the
// header safe even for names that were not.
func attachment(name string) string {
	var ascii, ext strings.Builder
	for _, r := range name {
		switch {
		case r < 0x80 && (r == '.' || r == '-' || r == '_' || r == '(' || r == ')' ||
			r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'):
			ascii.WriteRune(r)
		default:
			ascii.WriteByte('_')
		}
	}
	for _, b := range []byte(name) {
		if b < 0x80 && (b >= '0' && b <= '9' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || strings.IndexByte("!#$&+-.^_`|~", b) >= 0) {
			ext.WriteByte(b)
		} else {
			ext.WriteString("%" + strings.ToUpper(strconv.FormatUint(uint64(b)|0x100, 16)[1:]))
		}
	}
	return `attachment; filename="` + ascii.String() + `"; filename*=UTF-8''` + ext.String()
}
