package api_test

import (
	"bufio"
	"context"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"
)

// seedAssessments inserts n analyzed documents of owner with an assessment
// each, straight in SQL: the projector is tested elsewhere, and n is large.
func (e *env) seedAssessments(owner string, n int) {
	e.t.Helper()
	ctx := context.Background()
	start := time.Now()
	if _, err := e.pool.Exec(ctx, `INSERT INTO documents (id, owner, filename, status, status_rank, run, score, risk_level,
			text_key, uploaded_at, updated_at, completed_at)
		SELECT 'seed' || lpad(i::text, 7, '0'), $1, 'contract-' || i || '.pdf', 'analyzed', 100, 1, i % 101,
			(ARRAY['low', 'medium', 'high', 'critical'])[i % 4 + 1], 'text/seed/' || i || '.txt',
			timestamptz '2025-01-01' + i * interval '1 second', now(), now()
		FROM generate_series(1, $2::int) i`, owner, n); err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.pool.Exec(ctx, `INSERT INTO assessments (document_id, run, owner, result, score, risk_level, model,
			prompt_version, input_tokens, output_tokens, cost_usd, created_at)
		SELECT id, 1, owner, jsonb_build_object('summary', 'Unlimited liability in ' || filename, 'overall_score', score,
				'risk_factors', jsonb_build_array(jsonb_build_object('category', 'liability', 'severity', 'high'))),
			score, risk_level, 'claude-test', 'v1', 1500, 400, 0.0105, uploaded_at + interval '20 seconds'
		FROM documents WHERE owner = $1`, owner); err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.pool.Exec(ctx, `ANALYZE documents; ANALYZE assessments`); err != nil {
		e.t.Fatal(err)
	}
	e.t.Logf("seeded %d assessments in %s", n, time.Since(start).Round(time.Millisecond))
}

func TestExport100kAssessmentsInConstantMemory(t *testing.T) {
	const rows = 100_000
	const bound = 50 << 20
	e := newEnv(t)
	e.seedAssessments(alice, rows)

	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	heap := watchHeap(10 * time.Millisecond)
	start := time.Now()

	req, _ := http.NewRequest(http.MethodGet, e.url+"/api/v1/assessments/export?format=csv", nil)
	req.Header.Set("Authorization", "Bearer "+tokenOf(alice))
	resp, err := e.unchecked.Do(req) // too large to hold for checking
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Total-Count") != "100000" {
		t.Fatalf("export: %d, X-Total-Count %q", resp.StatusCode, resp.Header.Get("X-Total-Count"))
	}
	sc := bufio.NewScanner(resp.Body)
	lines, bytes := 0, 0
	var last string
	for sc.Scan() {
		lines++
		bytes += len(sc.Bytes()) + 1
		if lines == 2 || lines == rows+1 {
			last = sc.Text()
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	grew := int64(heap.stop())
	var after runtime.MemStats
	runtime.ReadMemStats(&after)

	if lines != rows+1 {
		t.Fatalf("%d lines, want %d rows and a header", lines, rows)
	}
	if !strings.HasPrefix(last, "seed0000001,contract-1.pdf,analyzed,") {
		t.Fatalf("last row (oldest upload) %q", last)
	}
	t.Logf("exported %d rows (%.1f MB) in %s; peak heap growth %.1f MB; %.0f MB allocated in total",
		rows, float64(bytes)/(1<<20), elapsed.Round(time.Millisecond), float64(grew)/(1<<20),
		mb(after.TotalAlloc-before.TotalAlloc))
	if grew > bound {
		t.Fatalf("heap grew by %.1f MB during the export, bound %d MB: rows are being accumulated", float64(grew)/(1<<20), bound>>20)
	}
	// The bound above is larger than the export itself; holding even half
	// of the output would show here.
	if grew > int64(bytes)/2 {
		t.Fatalf("heap grew by %.1f MB for a %.1f MB export: the output is being held", float64(grew)/(1<<20), float64(bytes)/(1<<20))
	}
	var audited int
	_ = e.pool.QueryRow(context.Background(), `SELECT count(*) FROM document_events WHERE type = 'audit.exported'`).Scan(&audited)
	if audited != rows {
		t.Fatalf("%d audit entries, want %d", audited, rows)
	}
}

func mb(n uint64) float64 { return float64(n) / (1 << 20) }
