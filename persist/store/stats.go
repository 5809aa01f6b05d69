package store

import (
	"context"
	"fmt"
	"time"
)

// Stats summarizes an owner's documents, model usage and processing times.
type Stats struct {
	// Documents counts the documents uploaded in the window and not deleted.
	Documents   int64            `json:"documents"`
	ByStatus    map[string]int64 `json:"by_status"`
	ByRiskLevel map[string]int64 `json:"by_risk_level"`
	// Models counts every assessment made in the window, deleted documents
	// included: their model calls were made and paid for.
	Models []ModelUsage `json:"models"`
	// Stages are the times between pipeline events of a run.
	Stages []StageTime `json:"stages"`
}

// ModelUsage is what one model did.
type ModelUsage struct {
	Model        string  `json:"model"`
	Assessments  int64   `json:"assessments"`
	Cached       int64   `json:"cached"`
	InputTokens  int64   `json:"input_tokens"`
	OutputTokens int64   `json:"output_tokens"`
	CostUSD      float64 `json:"cost_usd"`
}

// StageTime is the time from one event of a run to the next, over the
// runs that had both.
type StageTime struct {
	From       string  `json:"from"`
	To         string  `json:"to"`
	Runs       int64   `json:"runs"`
	AvgSeconds float64 `json:"avg_seconds"`
	P50Seconds float64 `json:"p50_seconds"`
	P95Seconds float64 `json:"p95_seconds"`
}

// StatsWindow bounds Stats by time; zero values bound nothing.
type StatsWindow struct {
	Since, Until time.Time
}

func (w StatsWindow) filter(b *queryBuilder, col string) {
	if !w.Since.IsZero() {
		b.where(col + " >= " + b.arg(w.Since))
	}
	if !w.Until.IsZero() {
		b.where(col + " < " + b.arg(w.Until))
	}
}

// Stats computes the owner's statistics for the window with three grouped
// queries, each served by an owner-led index.
func (s *Store) Stats(ctx context.Context, owner string, w StatsWindow) (Stats, error) {
	st := Stats{ByStatus: map[string]int64{}, ByRiskLevel: map[string]int64{}, Models: []ModelUsage{}, Stages: []StageTime{}}

	var docs queryBuilder
	docs.where("owner = "+docs.arg(owner), "deleted_at IS NULL")
	w.filter(&docs, "uploaded_at")
	rows, err := s.db.Query(ctx, `SELECT status, COALESCE(risk_level, ''), count(*) FROM documents
		WHERE `+docs.sql()+` GROUP BY status, risk_level`, docs.args...)
	if err != nil {
		return st, fmt.Errorf("stats: %w", err)
	}
	var status, level string
	var n int64
	for rows.Next() {
		if err := rows.Scan(&status, &level, &n); err != nil {
			rows.Close()
			return st, fmt.Errorf("stats: %w", err)
		}
		st.Documents += n
		st.ByStatus[status] += n
		if level != "" {
			st.ByRiskLevel[level] += n
		}
	}
	if err := rows.Err(); err != nil {
		return st, fmt.Errorf("stats: %w", err)
	}

	var models queryBuilder
	models.where("owner = " + models.arg(owner))
	w.filter(&models, "created_at")
	rows, err = s.db.Query(ctx, `SELECT model, count(*), count(*) FILTER (WHERE cached),
		COALESCE(sum(input_tokens), 0), COALESCE(sum(output_tokens), 0), COALESCE(sum(cost_usd), 0)::float8
		FROM assessments WHERE `+models.sql()+` GROUP BY model ORDER BY count(*) DESC, model`, models.args...)
	if err != nil {
		return st, fmt.Errorf("stats: %w", err)
	}
	for rows.Next() {
		var m ModelUsage
		if err := rows.Scan(&m.Model, &m.Assessments, &m.Cached, &m.InputTokens, &m.OutputTokens, &m.CostUSD); err != nil {
			rows.Close()
			return st, fmt.Errorf("stats: %w", err)
		}
		st.Models = append(st.Models, m)
	}
	if err := rows.Err(); err != nil {
		return st, fmt.Errorf("stats: %w", err)
	}

	// Per run, the first time each stage event was seen; a re-analysis run
	// starts at extracted and so counts only for extracted -> analyzed.
	var evs queryBuilder
	evs.where("owner = "+evs.arg(owner), "type IN ('uploaded', 'extracted', 'analyzed')")
	w.filter(&evs, "occurred_at")
	rows, err = s.db.Query(ctx, `WITH runs AS (
			SELECT min(occurred_at) FILTER (WHERE type = 'uploaded') AS up,
				min(occurred_at) FILTER (WHERE type = 'extracted') AS ex,
				min(occurred_at) FILTER (WHERE type = 'analyzed') AS an
			FROM document_events WHERE `+evs.sql()+` GROUP BY document_id, run
		), spans AS (
			SELECT 1 AS o, 'uploaded' AS f, 'extracted' AS t, extract(epoch FROM ex - up)::float8 AS s FROM runs WHERE ex >= up
			UNION ALL SELECT 2, 'extracted', 'analyzed', extract(epoch FROM an - ex)::float8 FROM runs WHERE an >= ex
			UNION ALL SELECT 3, 'uploaded', 'analyzed', extract(epoch FROM an - up)::float8 FROM runs WHERE an >= up
		)
		SELECT f, t, count(*), avg(s), percentile_cont(0.5) WITHIN GROUP (ORDER BY s),
			percentile_cont(0.95) WITHIN GROUP (ORDER BY s)
		FROM spans GROUP BY o, f, t ORDER BY o`, evs.args...)
	if err != nil {
		return st, fmt.Errorf("stats: %w", err)
	}
	for rows.Next() {
		var t StageTime
		if err := rows.Scan(&t.From, &t.To, &t.Runs, &t.AvgSeconds, &t.P50Seconds, &t.P95Seconds); err != nil {
			rows.Close()
			return st, fmt.Errorf("stats: %w", err)
		}
		st.Stages = append(st.Stages, t)
	}
	if err := rows.Err(); err != nil {
		return st, fmt.Errorf("stats: %w", err)
	}
	return st, nil
}
