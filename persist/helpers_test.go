package persist_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/aiprism/prism/persist/persisttest"
	"github.com/aiprism/prism/platform/testenv"
	"github.com/aiprism/prism/streams"
	"github.com/jackc/pgx/v5/pgxpool"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// newDB returns a pool on a fresh, migrated database.
func newDB(t *testing.T) *pgxpool.Pool { return persisttest.DB(t) }

// history builds events the way the stages publish them, with increasing
// times and stream sequences.
type history struct {
	t   *testing.T
	at  time.Time
	seq uint64
	evs []*streams.Event
}

func newHistory(t *testing.T) *history {
	return &history{t: t, at: time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)}
}

func (h *history) add(m streams.Meta, typ streams.EventType, key string, data any) *streams.Event {
	h.t.Helper()
	ev, err := streams.NewEvent("/test", m, typ, key, data)
	if err != nil {
		h.t.Fatal(err)
	}
	h.seq++
	h.at = h.at.Add(1500 * time.Millisecond)
	ev.Time, ev.Seq = h.at, h.seq
	h.evs = append(h.evs, ev)
	return ev
}

func meta(owner, doc string, run int) streams.Meta {
	return streams.Meta{Owner: owner, DocumentID: doc, Run: run, CorrelationID: "req-" + doc + "-" + string(rune('0'+run))}
}

func (h *history) uploaded(m streams.Meta, filename string) *streams.Event {
	return h.add(m, streams.Uploaded, "", streams.UploadedData{
		Original:    streams.ObjectRef{Key: "originals/" + m.Owner + "/" + m.DocumentID, Size: 48213, SHA256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"},
		Filename:    filename,
		ContentType: "application/pdf",
		UploadedBy:  m.Owner,
		Via:         "http",
	})
}

func (h *history) progress(m streams.Meta, stage streams.Stage, step, status string) *streams.Event {
	return h.add(m, streams.Progress, string(stage)+"-"+step, streams.ProgressData{Stage: stage, Step: step, Status: status})
}

func (h *history) extracted(m streams.Meta) *streams.Event {
	return h.add(m, streams.Extracted, "", streams.ExtractedData{
		Text:   streams.ObjectRef{Key: "texts/" + m.Owner + "/" + m.DocumentID + ".txt", Size: 9120, SHA256: "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"},
		Format: "pdf", Pages: 4, Words: 1530, Chars: 9120,
	})
}

func (h *history) analyzed(m streams.Meta, score int, level string) *streams.Event {
	return h.add(m, streams.Analyzed, "", streams.AnalyzedData{
		Assessment:    json.RawMessage(`{"summary":"indemnity clause is uncapped","findings":[{"clause":"7.2","severity":"high"}]}`),
		Score:         score,
		Level:         level,
		Model:         "anthropic.claude-sonnet-4",
		PromptVersion: "risk-v3",
		TextSHA256:    "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae",
		Attempts: []streams.Attempt{
			{Model: "anthropic.claude-opus-4", Outcome: "throttled", LatencyMS: 120},
			{Model: "anthropic.claude-sonnet-4", Outcome: "ok", LatencyMS: 8400},
		},
		InputTokens: 2100, OutputTokens: 640, CostUSD: 0.01593,
	})
}

func (h *history) failed(m streams.Meta, stage streams.Stage, class, reason string) *streams.Event {
	return h.add(m, streams.Failed, "", streams.FailedData{Stage: stage, Reason: reason, ReasonClass: class, Attempts: 3})
}

// pipeline is a realistic mix: a document analyzed on its first run, one
// that fails at extraction, and one whose first analysis fails and whose
// re-analysis (run 2) succeeds, interleaved as the stages would publish.
func pipeline(t *testing.T) []*streams.Event {
	h := newHistory(t)
	a, b, c1, c2 := meta("alice", "docA", 1), meta("alice", "docB", 1), meta("bob", "docC", 1), meta("bob", "docC", 2)
	h.uploaded(a, "Master Services Agreement.pdf")
	h.uploaded(b, "scan.pdf")
	h.progress(a, streams.StageExtract, "started", "extracting")
	h.uploaded(c1, "lease.pdf")
	h.progress(b, streams.StageExtract, "started", "extracting")
	h.extracted(a)
	h.failed(b, streams.StageExtract, "needs-ocr", "the PDF has no text layer")
	h.progress(a, streams.StageAnalyze, "started", "analyzing")
	h.progress(c1, streams.StageExtract, "started", "extracting")
	h.progress(a, streams.StageAnalyze, "queued", "queued")
	h.extracted(c1)
	h.analyzed(a, 72, "high")
	h.progress(c1, streams.StageAnalyze, "started", "analyzing")
	h.failed(c1, streams.StageAnalyze, "gave-up", "every model throttled for 10 minutes")
	h.progress(c2, streams.StageAnalyze, "started", "analyzing")
	h.analyzed(c2, 18, "low")
	return h.evs
}

// snapshot is the read model as comparable text: every documents and
// assessments column, and the history's identity (recorded_at is the
// clock, so it is left out).
type snapshot struct{ Documents, Assessments, Events string }

func snap(t *testing.T, pool *pgxpool.Pool) snapshot {
	t.Helper()
	var s snapshot
	err := pool.QueryRow(context.Background(), `SELECT
		COALESCE((SELECT jsonb_agg(to_jsonb(d) ORDER BY d.id) FROM documents d), '[]')::text,
		COALESCE((SELECT jsonb_agg(to_jsonb(a) ORDER BY a.document_id, a.run) FROM assessments a), '[]')::text,
		COALESCE((SELECT jsonb_agg(jsonb_build_array(e.event_id, e.stream_seq, e.document_id, e.owner, e.run, e.type, e.stage, e.status, e.detail, e.occurred_at)
			ORDER BY e.event_id) FROM document_events e), '[]')::text`).Scan(&s.Documents, &s.Assessments, &s.Events)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// docRow is the part of a documents row the scenario tests look at.
type docRow struct {
	Status        string
	Rank, Run     int
	Filename      *string
	Words         *int
	TextKey       *string
	Score         *int
	RiskLevel     *string
	FailureClass  *string
	CompletedAt   *time.Time
	CorrelationID *string
}

func doc(t *testing.T, pool *pgxpool.Pool, id string) docRow {
	t.Helper()
	var r docRow
	err := pool.QueryRow(context.Background(), `SELECT status, status_rank, run, filename, words, text_key,
		score, risk_level, failure_class, completed_at, correlation_id FROM documents WHERE id = $1`, id).Scan(
		&r.Status, &r.Rank, &r.Run, &r.Filename, &r.Words, &r.TextKey, &r.Score, &r.RiskLevel, &r.FailureClass, &r.CompletedAt, &r.CorrelationID)
	if err != nil {
		t.Fatalf("document %s: %v", id, err)
	}
	return r
}

func count(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
