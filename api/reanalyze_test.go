package api_test

import (
	"context"
	"net/http"
	"sync"
	"testing"

	"github.com/aiprism/prism/persist/store"
	"github.com/aiprism/prism/streams"
)

// lastEvent reads the document's newest event of type t from the log.
func (e *env) lastEvent(owner, id string, t streams.EventType) *streams.Event {
	e.t.Helper()
	s, err := e.js.Stream(context.Background(), streams.DocsStream)
	if err != nil {
		e.t.Fatal(err)
	}
	msg, err := s.GetLastMsgForSubject(context.Background(), streams.DocSubject(owner, id, t))
	if err != nil {
		e.t.Fatalf("last %s of %s: %v", t, id, err)
	}
	ev, err := streams.ParseEvent(msg.Subject, msg.Data)
	if err != nil {
		e.t.Fatal(err)
	}
	ev.Seq = msg.Sequence
	return ev
}

func TestReanalyzeStartsTheNextRun(t *testing.T) {
	e := newEnv(t)
	d := e.analyzed(alice, "a.txt", "unlimited liability", 60, "high")
	first := e.lastEvent(alice, d.id, streams.Extracted)

	// Twice at once: one new run, not two. Each request either starts
	// run 2 or, once the other's run is in the read model, is refused.
	answers := make([]response, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i := range answers {
		wg.Go(func() {
			answers[i], errs[i] = e.send(http.MethodPost, "/api/v1/documents/"+d.id+"/reanalyze", alice, nil)
		})
	}
	wg.Wait()
	started := 0
	for i, r := range answers {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if r.StatusCode == http.StatusConflict {
			r.problem(t, http.StatusConflict, "conflict")
			continue
		}
		expect(t, r, http.StatusAccepted)
		var out struct {
			Run    int
			Status string
		}
		r.json(t, &out)
		if out.Run != 2 || out.Status != "extracted" || r.Header.Get("Location") != "/api/v1/documents/"+d.id {
			t.Fatalf("reanalyze: %s", r.body)
		}
		started++
	}
	if started == 0 {
		t.Fatal("neither re-analysis started run 2")
	}
	again := e.lastEvent(alice, d.id, streams.Extracted)
	var a, b streams.ExtractedData
	_ = first.Decode(&a)
	_ = again.Decode(&b)
	if again.Run != 2 || again.ID != d.id+":2:extracted" || again.Source != "/prism/api" || b.Text != a.Text || b.Words != a.Words {
		t.Fatalf("re-published %+v %+v", again, b)
	}

	// The projector moves the document to run 2; the run-1 assessment
	// stays readable until run 2's arrives.
	d.waitSeq(again.Seq)
	var got store.Document
	e.get("/api/v1/documents/"+d.id, alice).json(t, &got)
	if got.Run != 2 || got.Status != "extracted" || got.Assessment == nil || got.Assessment.Run != 1 {
		t.Fatalf("after reanalyze: run %d status %s assessment %+v", got.Run, got.Status, got.Assessment)
	}
	// While it runs, another re-analysis is refused.
	e.do(http.MethodPost, "/api/v1/documents/"+d.id+"/reanalyze", alice, nil).problem(t, http.StatusConflict, "conflict")

	d.run = 2
	d.waitSeq(d.analyze(20, "low").Seq)
	var asmt store.Assessment
	e.get("/api/v1/documents/"+d.id+"/assessment", alice).json(t, &asmt)
	if asmt.Run != 2 || asmt.Score != 20 {
		t.Fatalf("assessment after run 2: %+v", asmt)
	}
}

func TestReanalyzeAfterFailedExtractionRunsFromTheOriginal(t *testing.T) {
	e := newEnv(t)
	d := e.newDoc(alice, "broken.pdf", []byte("%PDF-broken"))
	d.waitSeq(d.emit(streams.Failed, streams.FailedData{Stage: streams.StageExtract, Reason: "unreadable", ReasonClass: "corrupt"}).Seq)
	var before store.Document
	e.get("/api/v1/documents/"+d.id, alice).json(t, &before)

	r := e.do(http.MethodPost, "/api/v1/documents/"+d.id+"/reanalyze", alice, nil)
	expect(t, r, http.StatusAccepted)
	up := e.lastEvent(alice, d.id, streams.Uploaded)
	var data streams.UploadedData
	_ = up.Decode(&data)
	if up.Run != 2 || data.Original.Key == "" || data.Filename != "broken.pdf" || data.Via != "reanalyze" {
		t.Fatalf("re-published %+v %+v", up, data)
	}
	d.waitSeq(up.Seq)
	var got store.Document
	e.get("/api/v1/documents/"+d.id, alice).json(t, &got)
	// A new run from the original: the failure is gone, the upload time
	// is still the first upload's.
	if got.Run != 2 || got.Status != "uploaded" || got.Failure != nil || !got.UploadedAt.Equal(before.UploadedAt) {
		t.Fatalf("after reanalyze: %+v, before: %+v", got, before)
	}
}
