package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/aiprism/prism/persist/store"
	"github.com/aiprism/prism/platform/blob"
	"github.com/aiprism/prism/streams"
	"github.com/gofiber/fiber/v2"
	"github.com/jackc/pgx/v5"
)

// exportTimeout bounds one export, streamed or stored.
const exportTimeout = 15 * time.Minute

// maxExportBody bounds the JSON body of POST /assessments/export.
const maxExportBody = 16 << 10

// maxConcurrentExports bounds the exports one API process runs at once:
// each holds a database connection for as long as its client reads, and
// the pool is shared with every other request.
const maxConcurrentExports = 2

// exportSlot takes one of the process's export slots, or answers 503 with
// Retry-After; release gives it back.
func (s *Server) exportSlot(c *fiber.Ctx) (release func(), err error) {
	select {
	case s.exports <- struct{}{}:
		return func() { <-s.exports }, nil
	default:
		c.Set(fiber.HeaderRetryAfter, "5")
		return nil, problem(fiber.StatusServiceUnavailable, "busy", "too many exports are running; retry in a few seconds")
	}
}

// exportSlots takes one of the owner's export places (429 when all are
// taken, on any replica) and one of this process's (503); release gives
// both back. The owner's place is a lease, refreshed while the export
// runs, so an export on a replica that dies frees it.
func (s *Server) exportSlots(c *fiber.Ctx) (release func(), err error) {
	lease, err := s.lease(c, leaseExports, s.cfg.Limits.Exports)
	if err != nil {
		return nil, err
	}
	local, err := s.exportSlot(c)
	if err != nil {
		s.release(lease)
		return nil, err
	}
	lease.Keep(func() {}) // lost: the export finishes; its place was taken meanwhile
	return func() { local(); s.release(lease) }, nil
}

type exportFormat struct {
	ext, contentType string
}

var exportFormats = map[string]exportFormat{
	"csv":    {"csv", "text/csv; charset=utf-8"},
	"json":   {"json", "application/json"},
	"ndjson": {"ndjson", "application/x-ndjson"},
}

// exportRequest is one validated export.
type exportRequest struct {
	id      string
	owner   string
	format  string
	filters filterParams
	q       store.ListQuery
	actor   store.Actor
	at      time.Time
}

// parseExport reads format and filters from the query string and, when
// body is set, from an optional JSON body whose fields override them.
func (s *Server) parseExport(c *fiber.Ctx, body bool) (exportRequest, error) {
	r := exportRequest{id: streams.NewID(), owner: ownerOf(c), format: c.Query("format", "csv"), actor: s.actor(c), at: time.Now().UTC()}
	var err error
	if r.filters, err = queryFilters(c); err != nil {
		return r, err
	}
	if body {
		raw, err := readBody(c, maxExportBody)
		if err != nil {
			return r, err
		}
		if len(bytes.TrimSpace(raw)) > 0 {
			var b struct {
				filterParams
				Format string `json:"format"`
			}
			dec := json.NewDecoder(bytes.NewReader(raw))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&b); err != nil {
				return r, problem(fiber.StatusBadRequest, "bad-body", "the body must be a JSON object of export filters: "+err.Error())
			}
			r.filters = r.filters.overlay(b.filterParams)
			if b.Format != "" {
				r.format = b.Format
			}
		}
	}
	if _, ok := exportFormats[r.format]; !ok {
		return r, badParam("format", "must be csv, json or ndjson")
	}
	r.q, err = r.filters.query()
	return r, err
}

// readBody reads a small request body, refusing one over max bytes. The
// app streams request bodies (for uploads), so it reads from the stream.
func readBody(c *fiber.Ctx, max int64) ([]byte, error) {
	var body io.Reader = bytes.NewReader(c.Body())
	if s := c.Context().RequestBodyStream(); s != nil {
		body = s
	}
	raw, err := io.ReadAll(io.LimitReader(body, max+1))
	if err != nil {
		return nil, fmt.Errorf("read body: %w", err)
	}
	if int64(len(raw)) > max {
		return nil, problem(fiber.StatusRequestEntityTooLarge, classTooLarge, "the body exceeds "+humanBytes(max))
	}
	return raw, nil
}

// begin opens the export's transaction: REPEATABLE READ, so the rows it
// streams are exactly the rows it counted. Counting is writing the audit
// trail: one audit.exported entry per exported document, committed with
// the export. An export over the row cap is refused before any byte is
// sent, with the count it would have had capped at cap+1.
func (s *Server) begin(ctx context.Context, r exportRequest, via string) (pgx.Tx, int64, error) {
	tx, err := s.deps.Pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead})
	if err != nil {
		return nil, 0, fmt.Errorf("export %s: begin: %w", r.id, err)
	}
	n, err := store.New(tx).AuditExport(ctx, r.owner, r.q, s.cfg.ExportMaxRows, r.id, r.actor, r.at,
		map[string]any{"export_id": r.id, "format": r.format, "via": via})
	if err == nil && n > int64(s.cfg.ExportMaxRows) {
		err = problem(fiber.StatusUnprocessableEntity, "export-too-large",
			"the export would hold more than "+strconv.Itoa(s.cfg.ExportMaxRows)+" assessments; narrow it with since/until or other filters")
	}
	if err != nil {
		_ = tx.Rollback(ctx)
		return nil, 0, err
	}
	return tx, n, nil
}

// exportDownload streams the export as the response body. Rows travel
// from PostgreSQL to the socket one at a time (the response writer blocks
// while the client is slow), so memory stays constant whatever the size.
// X-Total-Count says how many rows follow.
func (s *Server) exportDownload(c *fiber.Ctx) error {
	r, err := s.parseExport(c, false)
	if err != nil {
		return err
	}
	release, err := s.exportSlots(c)
	if err != nil {
		return err
	}
	// The body is written after the handler returns, when fiber.Ctx is
	// recycled: everything the writer needs is captured here.
	ctx, cancel := context.WithTimeout(context.Background(), exportTimeout)
	done := func() { cancel(); release() }
	tx, n, err := s.begin(ctx, r, "download")
	if err != nil {
		done()
		return err
	}
	f := exportFormats[r.format]
	c.Set(fiber.HeaderContentType, f.contentType)
	c.Set(fiber.HeaderContentDisposition, attachment("assessments-"+r.at.Format("20060102T150405Z")+"."+f.ext))
	c.Set("X-Export-Id", r.id)
	c.Set("X-Total-Count", strconv.FormatInt(n, 10))
	if c.Method() == fiber.MethodHead {
		// Headers only (Fiber answers HEAD with the GET handler): nothing
		// is exported, so nothing is audited.
		_ = tx.Rollback(ctx)
		done()
		return nil
	}
	log := s.deps.Log.With().Str("export_id", r.id).Str("owner", r.owner).Logger()
	limit := s.cfg.ExportMaxRows
	c.Context().SetBodyStreamWriter(func(w *bufio.Writer) {
		defer done()
		rows, err := writeExport(ctx, tx, r, limit, w)
		if err == nil {
			err = w.Flush()
		}
		// The audit entries are committed even when the client went away
		// half way: it may have received some of the rows.
		if cerr := tx.Commit(ctx); cerr != nil {
			err = errors.Join(err, cerr)
		}
		if err != nil {
			log.Warn().Err(err).Int64("rows", rows).Msg("export ended early")
		}
	})
	return nil
}

// exportToStore writes the export to the object store under
// exports/<owner>/<timestamp>-<id>.<ext> and answers 201 with its key and
// download route, GET /api/v1/exports/{id}. The rows stream through a pipe
// into a multipart upload, so memory stays bounded by one upload part.
func (s *Server) exportToStore(c *fiber.Ctx) error {
	r, err := s.parseExport(c, true)
	if err != nil {
		return err
	}
	release, err := s.exportSlots(c)
	if err != nil {
		return err
	}
	defer release()
	ctx, cancel := context.WithTimeout(c.UserContext(), exportTimeout)
	defer cancel()
	tx, _, err := s.begin(ctx, r, "store")
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(ctx) }() // no-op after Commit

	f := exportFormats[r.format]
	key := blob.ExportKey(r.owner, r.id, f.ext, r.at)
	pr, pw := io.Pipe()
	written := make(chan error, 1)
	var rows int64
	go func() {
		bw := bufio.NewWriterSize(pw, 64<<10)
		var err error
		rows, err = writeExport(ctx, tx, r, s.cfg.ExportMaxRows, bw)
		if err == nil {
			err = bw.Flush()
		}
		pw.CloseWithError(err) // nil: the reader sees EOF
		written <- err
	}()
	res, perr := s.deps.Blobs.Put(ctx, key, pr, -1, f.contentType)
	// A Put that stopped early must not leave the writer blocked on the pipe.
	pr.CloseWithError(errors.New("export upload ended"))
	if werr := <-written; werr != nil {
		return fmt.Errorf("export %s: %w", r.id, werr)
	}
	if perr != nil {
		return fmt.Errorf("export %s: %w", r.id, perr)
	}
	filters, _ := json.Marshal(r.filters)
	e := store.Export{ID: r.id, Owner: r.owner, Format: r.format, Key: res.Key, Filters: filters,
		Rows: rows, SizeBytes: res.Size, SHA256: res.SHA256, CreatedAt: r.at}
	err = store.New(tx).RecordExport(ctx, e)
	if err == nil {
		err = tx.Commit(ctx)
	}
	if err != nil {
		// Unrecorded, the object could never be downloaded: remove it.
		_ = s.deps.Blobs.Delete(context.WithoutCancel(ctx), key)
		return fmt.Errorf("export %s: %w", r.id, err)
	}
	loc := "/api/v1/exports/" + r.id
	c.Location(loc)
	return c.Status(fiber.StatusCreated).JSON(fiber.Map{
		"id": e.ID, "key": e.Key, "format": e.Format, "rows": e.Rows, "size_bytes": e.SizeBytes,
		"sha256": e.SHA256, "created_at": e.CreatedAt, "filters": json.RawMessage(filters),
		"links": fiber.Map{"download": loc},
	})
}

// getExport downloads a stored export of the owner's.
func (s *Server) getExport(c *fiber.Ctx) error {
	id := c.Params("id")
	if streams.ValidToken(id) != nil {
		return problem(fiber.StatusNotFound, classNotFound, "no such export")
	}
	e, err := s.deps.Documents.GetExport(c.UserContext(), ownerOf(c), id)
	if errors.Is(err, store.ErrNotFound) {
		return problem(fiber.StatusNotFound, classNotFound, "no export "+id)
	}
	if err != nil {
		return err
	}
	f := exportFormats[e.Format]
	return s.serveObject(c, download{key: e.Key, owner: e.Owner, resource: e.ID, contentType: f.contentType, filename: "assessments-" + e.ID + "." + f.ext})
}
