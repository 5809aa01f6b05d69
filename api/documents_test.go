package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/aiprism/prism/persist/store"
	"github.com/aiprism/prism/streams"
)

func TestDocumentAssessmentAndHistory(t *testing.T) {
	e := newEnv(t)
	d := e.analyzed(alice, "nda.txt", "Mutual NDA with unlimited liability.", 72, "high")

	var got store.Document
	r := e.get("/api/v1/documents/"+d.id, alice)
	expect(t, r, http.StatusOK)
	r.json(t, &got)
	if got.Status != "analyzed" || got.Filename != "nda.txt" || got.Score == nil || *got.Score != 72 || got.RiskLevel != "high" || got.Assessment == nil || got.Assessment.Model != "claude-test" {
		t.Fatalf("document %+v", got)
	}
	var types []string
	for _, ev := range got.Timeline {
		types = append(types, ev.Type)
	}
	if strings.Join(types, ",") != "uploaded,extracted,analyzed" {
		t.Fatalf("timeline %v: the audit entries belong to the history, not the stage timeline", types)
	}
	if strings.Contains(string(r.body), "text/") || strings.Contains(string(r.body), "uploads/") {
		t.Fatalf("storage keys leak: %s", r.body)
	}

	var a store.Assessment
	r = e.get("/api/v1/documents/"+d.id+"/assessment", alice)
	expect(t, r, http.StatusOK)
	r.json(t, &a)
	if a.Run != 1 || a.Score != 72 || a.InputTokens != 1200 || !strings.Contains(string(a.Result), "risk_factors") {
		t.Fatalf("assessment %+v", a)
	}

	// The history holds the pipeline's events and the audit entries: the
	// views above are one entry (reads coalesce per minute), in two pages.
	var page struct {
		Items      []store.HistoryEntry
		NextCursor string `json:"next_cursor"`
	}
	r = e.get("/api/v1/documents/"+d.id+"/history?limit=3", alice)
	expect(t, r, http.StatusOK)
	r.json(t, &page)
	if len(page.Items) != 3 || page.NextCursor == "" {
		t.Fatalf("first history page %+v", page)
	}
	first := page.Items
	r = e.get("/api/v1/documents/"+d.id+"/history?limit=3&cursor="+page.NextCursor, alice)
	expect(t, r, http.StatusOK)
	page.Items, page.NextCursor = nil, ""
	r.json(t, &page)
	all := append(first, page.Items...)
	if len(all) != 4 || page.NextCursor != "" {
		t.Fatalf("history %+v", all)
	}
	audit := all[3]
	if audit.Type != store.AuditViewed || audit.Seq != 0 || audit.Status != "" || audit.Source != "/prism/api" || !strings.Contains(string(audit.Detail), `"actor":"alice"`) {
		t.Fatalf("audit entry %+v", audit)
	}
	e.get("/api/v1/documents/"+d.id+"/history?cursor=bogus", alice).problem(t, http.StatusBadRequest, "bad-parameter")
}

func TestAssessmentNotYet(t *testing.T) {
	e := newEnv(t)
	d := e.newDoc(alice, "a.txt", []byte("hello"))
	d.waitSeq(d.extract("hello").Seq)
	p := e.get("/api/v1/documents/"+d.id+"/assessment", alice).problem(t, http.StatusNotFound, "no-assessment")
	if !strings.Contains(p.Detail, "extracted") {
		t.Fatalf("detail %q does not say the status", p.Detail)
	}
}

// Every route about one document answers another owner exactly as it
// answers for a document that does not exist.
func TestAnotherOwnersDocumentIsNotFound(t *testing.T) {
	e := newEnv(t)
	d := e.analyzed(alice, "secret.txt", "alice's secret", 10, "low")
	for _, route := range []struct{ method, path string }{
		{http.MethodGet, ""}, {http.MethodGet, "/assessment"}, {http.MethodGet, "/history"},
		{http.MethodGet, "/text"}, {http.MethodGet, "/original"}, {http.MethodGet, "/events"},
		{http.MethodPost, "/reanalyze"}, {http.MethodDelete, ""},
	} {
		for _, id := range []string{d.id, "NOSUCHDOCUMENT", "bad.id"} {
			r := e.do(route.method, "/api/v1/documents/"+id+route.path, bob, nil)
			r.problem(t, http.StatusNotFound, "not-found")
		}
	}
	// Nothing happened to alice's document.
	expect(t, e.get("/api/v1/documents/"+d.id, alice), http.StatusOK)
	if ok, _ := streams.NewLog(e.js).DocumentExists(t.Context(), bob, d.id); ok {
		t.Fatal("bob's request created an event")
	}
}
