package api_test

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"testing"
	"time"

	"github.com/aiprism/prism/persist/store"
	"github.com/aiprism/prism/streams"
)

// publishRun publishes a document's events with the given times (zero =
// not published), as the stages would, and returns the last one.
func (e *env) publishRun(owner, id string, at map[streams.EventType]time.Time, score int, level string) *streams.Event {
	e.t.Helper()
	payload := map[streams.EventType]any{
		streams.Uploaded:  streams.UploadedData{Filename: id + ".txt", Original: streams.ObjectRef{Key: "uploads/" + id}},
		streams.Extracted: streams.ExtractedData{Text: streams.ObjectRef{Key: "text/" + id}, Words: 1, Chars: 5},
		streams.Analyzed: streams.AnalyzedData{Assessment: json.RawMessage(`{"summary":"s"}`), Score: score, Level: level,
			Model: "claude-test", InputTokens: 1000, OutputTokens: 100, CostUSD: 0.01},
		streams.Failed: streams.FailedData{Stage: streams.StageExtract, Reason: "r", ReasonClass: "c"},
	}
	var last *streams.Event
	for _, t := range []streams.EventType{streams.Uploaded, streams.Extracted, streams.Analyzed, streams.Failed} {
		if at[t].IsZero() {
			continue
		}
		ev, err := streams.NewEvent("/test", streams.Meta{Owner: owner, DocumentID: id, Run: 1}, t, "", payload[t])
		if err != nil {
			e.t.Fatal(err)
		}
		ev.Time = at[t]
		if err := e.pub.Publish(context.Background(), ev); err != nil {
			e.t.Fatal(err)
		}
		last = ev
	}
	(&doc{e: e, owner: owner, id: id}).waitSeq(last.Seq)
	return last
}

func TestStats(t *testing.T) {
	e := newEnv(t)
	t0 := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	s := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Second) }
	e.publishRun(alice, "a", map[streams.EventType]time.Time{streams.Uploaded: s(0), streams.Extracted: s(10), streams.Analyzed: s(40)}, 80, "high")
	e.publishRun(alice, "b", map[streams.EventType]time.Time{streams.Uploaded: s(0), streams.Extracted: s(20), streams.Analyzed: s(80)}, 20, "low")
	e.publishRun(alice, "c", map[streams.EventType]time.Time{streams.Uploaded: s(5)}, 0, "")
	e.publishRun(alice, "d", map[streams.EventType]time.Time{streams.Uploaded: s(5), streams.Failed: s(6)}, 0, "")
	e.publishRun(bob, "e", map[streams.EventType]time.Time{streams.Uploaded: s(0), streams.Extracted: s(1), streams.Analyzed: s(2)}, 90, "critical")

	var st store.Stats
	r := e.get("/api/v1/stats", alice)
	expect(t, r, http.StatusOK)
	r.json(t, &st)
	if st.Documents != 4 || st.ByStatus["analyzed"] != 2 || st.ByStatus["uploaded"] != 1 || st.ByStatus["failed"] != 1 ||
		st.ByRiskLevel["high"] != 1 || st.ByRiskLevel["low"] != 1 || len(st.ByRiskLevel) != 2 {
		t.Fatalf("counts %+v", st)
	}
	if len(st.Models) != 1 || st.Models[0].Model != "claude-test" || st.Models[0].Assessments != 2 ||
		st.Models[0].InputTokens != 2000 || math.Abs(st.Models[0].CostUSD-0.02) > 1e-9 {
		t.Fatalf("models %+v", st.Models)
	}
	want := []store.StageTime{
		{From: "uploaded", To: "extracted", Runs: 2, AvgSeconds: 15, P50Seconds: 15},
		{From: "extracted", To: "analyzed", Runs: 2, AvgSeconds: 45, P50Seconds: 45},
		{From: "uploaded", To: "analyzed", Runs: 2, AvgSeconds: 60, P50Seconds: 60},
	}
	if len(st.Stages) != len(want) {
		t.Fatalf("stages %+v", st.Stages)
	}
	for i, w := range want {
		g := st.Stages[i]
		if g.From != w.From || g.To != w.To || g.Runs != w.Runs || g.AvgSeconds != w.AvgSeconds || g.P50Seconds != w.P50Seconds {
			t.Fatalf("stage %d: %+v, want %+v", i, g, w)
		}
	}

	// A window before everything is empty, not an error.
	r = e.get("/api/v1/stats?until=2025-01-01T00:00:00Z", alice)
	expect(t, r, http.StatusOK)
	st = store.Stats{}
	r.json(t, &st)
	if st.Documents != 0 || len(st.Models) != 0 || len(st.Stages) != 0 {
		t.Fatalf("empty window %+v", st)
	}
	e.get("/api/v1/stats?since=soon", alice).problem(t, http.StatusBadRequest, "bad-parameter")
}
