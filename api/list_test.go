package api_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/aiprism/prism/persist/store"
	"github.com/aiprism/prism/streams"
)

type page struct {
	Items      []store.Document `json:"items"`
	NextCursor string           `json:"next_cursor"`
}

// listAll follows next_cursor to the end and returns the filenames in order.
func (e *env) listAll(owner, query string) []string {
	e.t.Helper()
	var names []string
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 100 {
			e.t.Fatal("pagination does not end")
		}
		q := query
		if cursor != "" {
			q += "&cursor=" + url.QueryEscape(cursor)
		}
		var p page
		r := e.get("/api/v1/documents?"+q, owner)
		expect(e.t, r, http.StatusOK)
		r.json(e.t, &p)
		for _, d := range p.Items {
			names = append(names, d.Filename)
		}
		if p.NextCursor == "" {
			return names
		}
		cursor = p.NextCursor
	}
}

// fixture: five documents of alice's with known upload days, and one of bob's.
func listFixture(t *testing.T) *env {
	e := newEnv(t)
	docs := []*doc{
		e.analyzed(alice, "Lease 2024.pdf", "lease", 12, "low"),
		e.analyzed(alice, "NDA_final.docx", "nda", 81, "high"),
		e.newDoc(alice, "100% draft.txt", []byte("draft")),
		e.newDoc(alice, "dpa.txt", []byte("dpa")),
		e.analyzed(alice, "Master NDA.txt", "master", 55, "medium"),
	}
	docs[3].emit(streams.Failed, streams.FailedData{Stage: streams.StageExtract, Reason: "broken", ReasonClass: "corrupt"})
	bobs := e.analyzed(bob, "NDA.docx", "bob's", 90, "critical")
	// Wait until the read model has applied every event of every document
	// (the failure included), then give each document its own upload day
	// and the name it was uploaded with: ingest stores names made safe for
	// object keys ("Lease_2024.pdf"), and the search must handle any name.
	for _, d := range append(docs, bobs) {
		d.waitProjected()
	}
	for i, name := range []string{"Lease 2024.pdf", "NDA_final.docx", "100% draft.txt", "dpa.txt", "Master NDA.txt"} {
		if _, err := e.pool.Exec(context.Background(), `UPDATE documents SET uploaded_at = $1, filename = $2 WHERE id = $3`,
			fmt.Sprintf("2025-0%d-01T00:00:00Z", i+1), name, docs[i].id); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

func TestListFiltersAndSorts(t *testing.T) {
	e := listFixture(t)
	for _, tc := range []struct{ query, want string }{
		{"", "Master NDA.txt|dpa.txt|100% draft.txt|NDA_final.docx|Lease 2024.pdf"},
		{"sort=uploaded_at", "Lease 2024.pdf|NDA_final.docx|100% draft.txt|dpa.txt|Master NDA.txt"},
		// Unscored documents sort below every score.
		{"sort=-score", "NDA_final.docx|Master NDA.txt|Lease 2024.pdf|dpa.txt|100% draft.txt"},
		{"sort=score", "100% draft.txt|dpa.txt|Lease 2024.pdf|Master NDA.txt|NDA_final.docx"},
		{"status=analyzed", "Master NDA.txt|NDA_final.docx|Lease 2024.pdf"},
		{"status=failed", "dpa.txt"},
		{"risk_level=high", "NDA_final.docx"},
		{"min_score=50", "Master NDA.txt|NDA_final.docx"},
		{"max_score=55&sort=-score", "Master NDA.txt|Lease 2024.pdf"},
		{"min_score=50&max_score=60", "Master NDA.txt"},
		{"since=2025-02-01T00:00:00Z&until=2025-04-01T00:00:00Z", "100% draft.txt|NDA_final.docx"},
		{"q=nda", "Master NDA.txt|NDA_final.docx"},
		{"q=" + url.QueryEscape("100%"), "100% draft.txt"},
		{"q=a_f", "NDA_final.docx"},
		{"q=nda&status=analyzed&sort=score", "Master NDA.txt|NDA_final.docx"},
		{"q=zzz", ""},
	} {
		// The same order whatever the page size: keyset pages join up.
		for _, limit := range []string{"200", "2", "1"} {
			got := strings.Join(e.listAll(alice, tc.query+"&limit="+limit), "|")
			if got != tc.want {
				t.Errorf("?%s&limit=%s: %s, want %s", tc.query, limit, got, tc.want)
			}
		}
	}
	if got := e.listAll(bob, ""); len(got) != 1 || got[0] != "NDA.docx" {
		t.Fatalf("bob sees %v", got)
	}
}

func TestListPagesAreStableWhileDocumentsArrive(t *testing.T) {
	e := newEnv(t)
	want := map[string]bool{}
	for i := range 8 {
		name := fmt.Sprintf("doc-%d.txt", i)
		e.newDoc(alice, name, []byte(name)).waitProjected()
		want[name] = true
	}
	seen := map[string]int{}
	cursor, pages := "", 0
	for {
		var p page
		r := e.get("/api/v1/documents?limit=3&cursor="+url.QueryEscape(cursor), alice)
		expect(t, r, http.StatusOK)
		r.json(t, &p)
		pages++
		for _, d := range p.Items {
			seen[d.Filename]++
		}
		// New uploads between page requests: newer than every listed one,
		// they belong before the first page and must not shift the rest.
		e.newDoc(alice, fmt.Sprintf("new-%d.txt", pages), []byte("new")).waitProjected()
		if p.NextCursor == "" {
			break
		}
		cursor = p.NextCursor
	}
	if pages != 3 || len(seen) != len(want) {
		t.Fatalf("%d pages, saw %v", pages, seen)
	}
	for name := range want {
		if seen[name] != 1 {
			t.Errorf("%s listed %d times", name, seen[name])
		}
	}
}

func TestListRejectsBadInput(t *testing.T) {
	e := newEnv(t)
	var p page
	r := e.get("/api/v1/documents?limit=1&sort=score", alice)
	expect(t, r, http.StatusOK)
	r.json(t, &p)
	for _, q := range []string{
		"limit=0", "limit=201", "limit=x", "status=done", "risk_level=severe", "min_score=-1", "max_score=101",
		"min_score=x", "min_score=60&max_score=50", "since=yesterday", "until=2025-13-01T00:00:00Z",
		"since=2025-02-01T00:00:00Z&until=2025-01-01T00:00:00Z", "sort=name", "cursor=bogus",
		"q=" + strings.Repeat("a", 101), "q=a%00b", "cursor=" + strings.Repeat("a", 600),
	} {
		pr := e.get("/api/v1/documents?"+q, alice).problem(t, http.StatusBadRequest, "bad-parameter")
		name, _, _ := strings.Cut(q, "=")
		if !strings.HasPrefix(pr.Detail, name) && !strings.Contains(q, "&") {
			t.Errorf("?%s: detail %q does not name the parameter", q, pr.Detail)
		}
	}
	if empty := e.get("/api/v1/documents", alice); !strings.Contains(string(empty.body), `"items":[]`) {
		t.Fatalf("empty list: %s", empty.body)
	}
}
