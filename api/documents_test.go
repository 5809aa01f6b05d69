package api_test

import (
	"bytes"
	"context"
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

// TestCrossUserProbe: bob, signed in with a session and with an API
// token, tries every route on alice's document and her export, by id and
// by guessing. Each answers as for a document that does not exist, his
// lists and exports hold nothing of hers, and nothing of hers changed.
func TestCrossUserProbe(t *testing.T) {
	e := newEnv(t)
	d := e.analyzed(alice, "secret.txt", "alice's secret", 10, "low")
	var export struct{ ID string }
	stored := e.do(http.MethodPost, "/api/v1/assessments/export", alice, strings.NewReader(`{"format":"json"}`), "Content-Type", "application/json")
	expect(t, stored, http.StatusCreated)
	stored.json(t, &export)
	before := e.get("/api/v1/documents/"+d.id, alice)
	expect(t, before, http.StatusOK)

	if _, err := e.accounts.Users.SetPassword(context.Background(), bob+"@example.com", alicePassword); err != nil {
		t.Fatal(err)
	}
	bobSession := e.mustSignIn(bob+"@example.com", alicePassword)
	ways := []struct {
		name   string
		owner  string   // bearer token of this owner
		header []string // or a browser's session
	}{{"token", bob, nil}, {"session", "", e.as(bobSession)}}
	for _, way := range ways {
		for _, route := range []struct{ method, path string }{
			{http.MethodGet, ""}, {http.MethodGet, "/assessment"}, {http.MethodGet, "/history"},
			{http.MethodGet, "/text"}, {http.MethodGet, "/original"}, {http.MethodGet, "/events"},
			{http.MethodPost, "/reanalyze"}, {http.MethodDelete, ""},
		} {
			for _, id := range []string{d.id, strings.ToLower(d.id), "NOSUCHDOCUMENT", "bad.id"} {
				r := e.do(route.method, "/api/v1/documents/"+id+route.path, way.owner, nil, way.header...)
				r.problem(t, http.StatusNotFound, "not-found")
			}
		}
		for _, id := range []string{export.ID, "NOSUCHEXPORT"} {
			e.get("/api/v1/exports/"+id, way.owner, way.header...).problem(t, http.StatusNotFound, "not-found")
		}
		// Lists, exports and stats: nothing of alice's, by any filter.
		for _, path := range []string{"/api/v1/documents", "/api/v1/documents?q=secret", "/api/v1/documents?status=analyzed",
			"/api/v1/assessments/export?format=json", "/api/v1/assessments/export?format=ndjson&q=secret", "/api/v1/stats"} {
			r := e.get(path, way.owner, way.header...)
			expect(t, r, http.StatusOK)
			if bytes.Contains(r.body, []byte(d.id)) || bytes.Contains(r.body, []byte("secret.txt")) {
				t.Fatalf("%s as bob (%s) shows alice's document: %s", path, way.name, r.body)
			}
		}
		var stats store.Stats
		e.get("/api/v1/stats", way.owner, way.header...).json(t, &stats)
		if stats.Documents != 0 {
			t.Fatalf("bob's stats (%s) count %d documents; he has none", way.name, stats.Documents)
		}
	}
	// Nothing happened to alice's document or export, and no event was
	// written under bob's name.
	after := e.get("/api/v1/documents/"+d.id, alice)
	if !bytes.Equal(after.body, before.body) {
		t.Fatalf("alice's document changed under bob's probe:\n%s\n%s", before.body, after.body)
	}
	expect(t, e.get("/api/v1/exports/"+export.ID, alice), http.StatusOK)
	if ok, _ := streams.NewLog(e.js).DocumentExists(t.Context(), bob, d.id); ok {
		t.Fatal("bob's request created an event")
	}
}
