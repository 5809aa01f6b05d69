package api

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/aiprism/prism/persist/store"
	"github.com/jackc/pgx/v5"
)

// writeExport writes the export's rows, read through tx, to w in the
// request's format. Each row is encoded and handed to w as it is read.
func writeExport(ctx context.Context, tx pgx.Tx, r exportRequest, limit int, w io.Writer) (int64, error) {
	var enc rowEncoder
	switch r.format {
	case "csv":
		enc = &csvEncoder{w: csv.NewWriter(w)}
	case "json":
		enc = &jsonEncoder{w: w, array: true}
	default:
		enc = &jsonEncoder{w: w}
	}
	if err := enc.begin(); err != nil {
		return 0, fmt.Errorf("write export: %w", err)
	}
	n, err := store.New(tx).ExportAssessments(ctx, r.owner, r.q, limit, r.format != "csv", enc.row)
	if err != nil {
		return n, err
	}
	if err := enc.end(); err != nil {
		return n, fmt.Errorf("write export: %w", err)
	}
	return n, nil
}

type rowEncoder interface {
	begin() error
	row(*store.ExportRow) error
	end() error
}

// csvEncoder writes RFC 4180 CSV with a header row. The assessment itself
// is not in it (one column per field would not fit a spreadsheet); the
// summary is.
type csvEncoder struct {
	w   *csv.Writer
	rec []string
}

func (e *csvEncoder) begin() error {
	e.rec = make([]string, len(store.ExportColumns))
	return e.w.Write(store.ExportColumns)
}

func (e *csvEncoder) row(r *store.ExportRow) error {
	e.rec[0] = r.DocumentID
	e.rec[1] = cell(r.Filename)
	e.rec[2] = r.Status
	e.rec[3] = r.UploadedAt.UTC().Format(time.RFC3339Nano)
	e.rec[4] = strconv.Itoa(r.Run)
	e.rec[5] = strconv.Itoa(r.Score)
	e.rec[6] = r.RiskLevel
	e.rec[7] = cell(r.Model)
	e.rec[8] = cell(r.PromptVersion)
	e.rec[9] = strconv.Itoa(r.InputTokens)
	e.rec[10] = strconv.Itoa(r.OutputTokens)
	e.rec[11] = strconv.FormatFloat(r.CostUSD, 'f', -1, 64)
	e.rec[12] = strconv.FormatBool(r.Cached)
	e.rec[13] = r.AssessedAt.UTC().Format(time.RFC3339Nano)
	e.rec[14] = cell(r.Summary)
	return e.w.Write(e.rec)
}

func (e *csvEncoder) end() error {
	e.w.Flush()
	return e.w.Error()
}

// cell defuses spreadsheet formulas: a text cell starting with = + - @ or
// a tab/CR is evaluated by Excel and LibreOffice (CSV injection), so it is
// prefixed with an apostrophe. Filenames and model summaries quote
// untrusted documents, hence the need.
func cell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// jsonEncoder writes one JSON object per row: as NDJSON lines, or as the
// elements of one JSON array.
type jsonEncoder struct {
	w     io.Writer
	array bool
	n     int
}

func (e *jsonEncoder) begin() error {
	if e.array {
		_, err := io.WriteString(e.w, "[")
		return err
	}
	return nil
}

func (e *jsonEncoder) row(r *store.ExportRow) error {
	raw, err := json.Marshal(r)
	if err != nil {
		return err
	}
	sep, end := "", "\n" // NDJSON: one object a line
	if e.array {
		sep, end = ",\n", ""
		if e.n == 0 {
			sep = "\n"
		}
	}
	e.n++
	if _, err := io.WriteString(e.w, sep); err != nil {
		return err
	}
	if _, err := e.w.Write(raw); err != nil {
		return err
	}
	_, err = io.WriteString(e.w, end)
	return err
}

func (e *jsonEncoder) end() error {
	if e.array {
		_, err := io.WriteString(e.w, "\n]\n")
		return err
	}
	return nil
}
