package api_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/aiprism/prism/persist/store"
)

func TestExportFormatsAndFilters(t *testing.T) {
	e := newEnv(t)
	high := e.analyzed(alice, "cmd.txt", "formula name", 81, "high")
	// Ingest strips a leading "=" from names; a name from elsewhere may keep it.
	if _, err := e.pool.Exec(context.Background(), `UPDATE documents SET filename = '=cmd.txt' WHERE id = $1`, high.id); err != nil {
		t.Fatal(err)
	}
	e.analyzed(alice, "low.txt", "harmless", 10, "low")
	e.newDoc(alice, "pending.txt", []byte("not analyzed: never exported"))
	e.analyzed(bob, "bob.txt", "bob's", 90, "critical")

	r := e.get("/api/v1/assessments/export", alice)
	expect(t, r, http.StatusOK)
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "text/csv") || !strings.HasPrefix(r.Header.Get("Content-Disposition"), `attachment; filename="assessments-`) || r.Header.Get("X-Total-Count") != "2" {
		t.Fatalf("csv headers %v", r.Header)
	}
	recs, err := csv.NewReader(bytes.NewReader(r.body)).ReadAll()
	if err != nil || len(recs) != 3 || strings.Join(recs[0], ",") != strings.Join(store.ExportColumns, ",") {
		t.Fatalf("csv %v (%v):\n%s", recs, err, r.body)
	}
	// Newest first; cells that a spreadsheet would evaluate are defused.
	if recs[1][1] != "low.txt" || recs[2][1] != "'=cmd.txt" || recs[2][5] != "81" || recs[2][14] != "'=SUM(A1) risk 81" {
		t.Fatalf("csv rows %q", recs[1:])
	}

	r = e.get("/api/v1/assessments/export?format=json&risk_level=high", alice)
	expect(t, r, http.StatusOK)
	var rows []store.ExportRow
	r.json(t, &rows)
	if len(rows) != 1 || rows[0].DocumentID != high.id || rows[0].Score != 81 || !bytes.Contains(rows[0].Assessment, []byte(`"overall_score":81`)) {
		t.Fatalf("json export %s", r.body)
	}

	r = e.get("/api/v1/assessments/export?format=ndjson&sort=score", alice)
	expect(t, r, http.StatusOK)
	lines := strings.Split(strings.TrimSpace(string(r.body)), "\n")
	if len(lines) != 2 || r.Header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("ndjson %q", r.body)
	}
	var first store.ExportRow
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil || first.Score != 10 {
		t.Fatalf("ndjson first row %s (%v)", lines[0], err)
	}

	// An empty export is still well-formed.
	r = e.get("/api/v1/assessments/export?format=json&q=nothing", alice)
	expect(t, r, http.StatusOK)
	r.json(t, &rows)
	if len(rows) != 0 || r.Header.Get("X-Total-Count") != "0" {
		t.Fatalf("empty export %q", r.body)
	}

	// Every exported document's history says so, once per export.
	if types := e.historyTypes(high.id); count(types, "audit.exported") != 3 {
		t.Fatalf("history %v: want an audit.exported per export that held it", types)
	}
	e.get("/api/v1/assessments/export?format=xml", alice).problem(t, http.StatusBadRequest, "bad-parameter")
	e.get("/api/v1/assessments/export?min_score=500", alice).problem(t, http.StatusBadRequest, "bad-parameter")
}

func TestExportRowCap(t *testing.T) {
	e := newEnv(t, withExportMaxRows(2))
	for _, name := range []string{"a.txt", "b.txt", "c.txt"} {
		e.analyzed(alice, name, name, 50, "medium")
	}
	e.get("/api/v1/assessments/export", alice).problem(t, http.StatusUnprocessableEntity, "export-too-large")
	e.do(http.MethodPost, "/api/v1/assessments/export", alice, nil).problem(t, http.StatusUnprocessableEntity, "export-too-large")
	// A refused export leaves no audit entries behind.
	var n int
	_ = e.pool.QueryRow(context.Background(), `SELECT count(*) FROM document_events WHERE type = 'audit.exported'`).Scan(&n)
	if n != 0 {
		t.Fatalf("%d audit entries for a refused export", n)
	}
	expect(t, e.get("/api/v1/assessments/export?q=a.txt", alice), http.StatusOK)
}

func TestExportToStoreAndDownload(t *testing.T) {
	e := newEnv(t)
	e.analyzed(alice, "one.txt", "one", 81, "high")
	e.analyzed(alice, "two.txt", "two", 20, "low")

	r := e.do(http.MethodPost, "/api/v1/assessments/export?format=csv", alice,
		strings.NewReader(`{"format":"ndjson","risk_level":"high","min_score":50}`), "Content-Type", "application/json")
	expect(t, r, http.StatusCreated)
	var out struct {
		store.Export
		Links struct{ Download string }
	}
	r.json(t, &out)
	if out.Rows != 1 || out.Format != "ndjson" || !strings.HasPrefix(out.Key, "exports/alice/") || !strings.HasSuffix(out.Key, "-"+out.ID+".ndjson") ||
		out.Links.Download != "/api/v1/exports/"+out.ID || r.Header.Get("Location") != out.Links.Download {
		t.Fatalf("stored export %s", r.body)
	}
	stored := e.get(out.Links.Download, alice)
	expect(t, stored, http.StatusOK)
	var row store.ExportRow
	if err := json.Unmarshal(bytes.TrimSpace(stored.body), &row); err != nil || row.Filename != "one.txt" || int64(len(stored.body)) != out.SizeBytes {
		t.Fatalf("downloaded export %q (%v)", stored.body, err)
	}
	if !strings.Contains(stored.Header.Get("Content-Disposition"), "assessments-"+out.ID+".ndjson") {
		t.Fatalf("Content-Disposition %q", stored.Header.Get("Content-Disposition"))
	}
	rc, _, err := e.blobs.Get(context.Background(), out.Key)
	if err != nil {
		t.Fatalf("object %s: %v", out.Key, err)
	}
	rc.Close()

	e.get(out.Links.Download, bob).problem(t, http.StatusNotFound, "not-found")
	e.get("/api/v1/exports/NOSUCH", alice).problem(t, http.StatusNotFound, "not-found")
	e.do(http.MethodPost, "/api/v1/assessments/export", alice, strings.NewReader(`{"colour":"red"}`)).problem(t, http.StatusBadRequest, "bad-body")
	e.do(http.MethodPost, "/api/v1/assessments/export", alice, strings.NewReader(`{"q":"`+strings.Repeat("a", 20000)+`"}`)).problem(t, http.StatusRequestEntityTooLarge, "too-large")
	// No body: the query string alone, CSV by default.
	r = e.do(http.MethodPost, "/api/v1/assessments/export?risk_level=low", alice, nil)
	expect(t, r, http.StatusCreated)
	r.json(t, &out)
	if out.Rows != 1 || out.Format != "csv" {
		t.Fatalf("query-only export %s", r.body)
	}
}
