package api_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/aiprism/prism/api/loadtest"
)

// The API under load: 100 concurrent clients in a closed loop against the
// real HTTP listener, token authentication, PostgreSQL and NATS, over
// 20,000 analyzed documents. Run with
//
//	go test -run '^$' -bench . -benchtime 1x ./
//
// BENCH_DURATION (default 5s) sets how long each measurement runs.
const (
	benchClients = 100
	benchDocs    = 20_000
)

func benchEnv(b *testing.B) *env {
	e := newEnv(b)
	e.seedAssessments(alice, benchDocs)
	// A stage history for every document, as the projector leaves it.
	if _, err := e.pool.Exec(context.Background(), `INSERT INTO document_events (event_id, stream_seq, document_id, owner, run, type, stage, status, occurred_at)
		SELECT d.id || ':1:' || t.type, 0, d.id, d.owner, 1, t.type, t.stage, t.type, d.uploaded_at + t.n * interval '5 seconds'
		FROM documents d CROSS JOIN (VALUES (0, 'uploaded', 'ingest'), (1, 'extracted', 'extract'), (2, 'analyzed', 'analyze')) AS t(n, type, stage)`); err != nil {
		b.Fatal(err)
	}
	if _, err := e.pool.Exec(context.Background(), `ANALYZE document_events`); err != nil {
		b.Fatal(err)
	}
	return e
}

func benchDuration() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("BENCH_DURATION")); err == nil && d > 0 {
		return d
	}
	return 5 * time.Second
}

// measure reports the saturated figures (the clients send back to back)
// and, as sub-benchmarks' metrics, the latency at a paced load of 100
// clients sending 10 requests a second each (1,000 requests a second
// offered).
func measure(b *testing.B, e *env, paths []string) {
	b.Helper()
	// Warm the connection pools and caches first.
	warm := loadtest.Config{BaseURL: e.url, Clients: benchClients, Duration: time.Second, Paths: paths,
		Header: http.Header{"Authorization": {"Bearer " + tokenOf(alice)}}}
	if _, err := loadtest.Run(context.Background(), warm); err != nil {
		b.Fatal(err)
	}
	cfg := warm
	cfg.Duration = benchDuration()
	b.ResetTimer()
	res, err := loadtest.Run(context.Background(), cfg)
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	if res.Errors > 0 {
		b.Errorf("%d failed requests", res.Errors)
	}
	b.Logf("%d clients back to back: %s", benchClients, res)
	b.ReportMetric(float64(res.P50.Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(res.P99.Microseconds())/1000, "p99-ms")
	b.ReportMetric(res.RPS, "req/s")

	cfg.Pace = 100 * time.Millisecond
	paced, err := loadtest.Run(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("%d clients at 10 req/s each: %s", benchClients, paced)
	b.ReportMetric(float64(paced.P50.Microseconds())/1000, "paced-p50-ms")
	b.ReportMetric(float64(paced.P99.Microseconds())/1000, "paced-p99-ms")
}

// BenchmarkGetDocument: GET /api/v1/documents/{id} with its timeline and
// assessment, across 1,000 documents.
func BenchmarkGetDocument(b *testing.B) {
	e := benchEnv(b)
	var paths []string
	for i := 1; i <= 1000; i++ {
		paths = append(paths, fmt.Sprintf("/api/v1/documents/seed%07d", i*(benchDocs/1000)))
	}
	measure(b, e, paths)
}

// BenchmarkListFiltered: one page (50) of a filtered, sorted list.
func BenchmarkListFiltered(b *testing.B) {
	e := benchEnv(b)
	measure(b, e, []string{
		"/api/v1/documents?risk_level=high&sort=-score",
		"/api/v1/documents?status=analyzed&min_score=40&max_score=60",
		"/api/v1/documents?since=2025-01-01T02:00:00Z&until=2025-01-01T04:00:00Z",
		"/api/v1/documents?q=contract-19",
	})
}
