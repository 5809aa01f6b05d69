package persist_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/aiprism/prism/persist"
	"github.com/aiprism/prism/persist/migrations"
	"github.com/aiprism/prism/platform/testenv"
	"github.com/aiprism/prism/streams"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"
)

// benchEvents is the pipeline of docs documents, 5 events each (uploaded,
// two progress steps, extracted, analyzed), in the interleaved order the
// stages would publish them.
func benchEvents(b *testing.B, docs int) []*streams.Event {
	b.Helper()
	var evs []*streams.Event
	at := time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)
	add := func(d int, t streams.EventType, key string, data any) {
		m := streams.Meta{Owner: fmt.Sprintf("owner%d", d%10), DocumentID: fmt.Sprintf("doc%06d", d), Run: 1}
		ev, err := streams.NewEvent("/bench", m, t, key, data)
		if err != nil {
			b.Fatal(err)
		}
		at = at.Add(time.Millisecond)
		ev.Time = at
		evs = append(evs, ev)
	}
	for step := range 5 {
		for d := range docs {
			switch step {
			case 0:
				add(d, streams.Uploaded, "", streams.UploadedData{Original: streams.ObjectRef{Key: "uploads/x", Size: 1000, SHA256: "ab"}, Filename: "contract.pdf"})
			case 1:
				add(d, streams.Progress, "extract-started", streams.ProgressData{Stage: streams.StageExtract, Step: "started", Status: "extracting"})
			case 2:
				add(d, streams.Extracted, "", streams.ExtractedData{Text: streams.ObjectRef{Key: "text/x"}, Format: "pdf", Words: 500, Chars: 3000})
			case 3:
				add(d, streams.Progress, "analyze-started", streams.ProgressData{Stage: streams.StageAnalyze, Step: "started", Status: "analyzing"})
			case 4:
				add(d, streams.Analyzed, "", streams.AnalyzedData{Assessment: json.RawMessage(`{"summary":"s","risk_factors":[]}`),
					Score: d % 101, Level: "high", Model: "m", PromptVersion: "v1", InputTokens: 1000, OutputTokens: 200, CostUSD: 0.01})
			}
		}
	}
	return evs
}

func benchPool(b *testing.B) *pgxpool.Pool {
	b.Helper()
	pc, err := pgxpool.ParseConfig(testenv.Postgres(b))
	if err != nil {
		b.Fatal(err)
	}
	pc.MaxConns = 12
	pool, err := pgxpool.NewWithConfig(context.Background(), pc)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	if err := migrations.Migrate(context.Background(), pool); err != nil {
		b.Fatal(err)
	}
	return pool
}

// BenchmarkProjectorThroughput measures the persist role end to end:
// 10,000 events already in the DOCS stream, projected by Run as configured
// in production (batches of up to 100 events, one commit each, 8 at once)
// until the consumer has acknowledged them all. Reported as events/s.
//
//	go test -run '^$' -bench ProjectorThroughput -benchtime 1x ./
func BenchmarkProjectorThroughput(b *testing.B) {
	ctx := context.Background()
	pool := benchPool(b)
	js := docsStreams(b)
	evs := benchEvents(b, 2000)
	publishAll(b, js, evs)
	cons, err := streams.PersistConsumer.Create(ctx, js)
	if err != nil {
		b.Fatal(err)
	}

	b.ResetTimer()
	start := time.Now()
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- persist.New(pool, zerolog.Nop()).Run(runCtx, js, persist.WithConcurrency(8)) }()
	for {
		info, err := cons.Info(ctx)
		if err == nil && info.NumPending == 0 && info.NumAckPending == 0 {
			break
		}
		if time.Since(start) > 5*time.Minute {
			b.Fatalf("not projected: %+v", info)
		}
		time.Sleep(2 * time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM document_events`).Scan(&n); err != nil || n != len(evs) {
		b.Fatalf("%d events projected, want %d (%v)", n, len(evs), err)
	}
	b.ReportMetric(float64(len(evs))/elapsed.Seconds(), "events/s")
	b.Logf("%d events from the stream in %s", len(evs), elapsed.Round(time.Millisecond))
}

// BenchmarkProjectBatch measures Project alone: batches of 100 events in
// one transaction each, one writer, no NATS.
func BenchmarkProjectBatch(b *testing.B) {
	ctx := context.Background()
	pool := benchPool(b)
	evs := benchEvents(b, 2000)
	p := persist.New(pool, zerolog.Nop())
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < len(evs); i += 100 {
		if err := p.HandleBatch(ctx, evs[i:min(i+100, len(evs))]); err != nil {
			b.Fatal(err)
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(len(evs))/elapsed.Seconds(), "events/s")
}
