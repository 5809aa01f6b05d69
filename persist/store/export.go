package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// ExportRow is one exported assessment: a document's latest analyzed run.
type ExportRow struct {
	DocumentID    string          `json:"document_id"`
	Filename      string          `json:"filename"`
	Status        string          `json:"status"`
	UploadedAt    time.Time       `json:"uploaded_at"`
	Run           int             `json:"run"`
	Score         int             `json:"score"`
	RiskLevel     string          `json:"risk_level"`
	Model         string          `json:"model"`
	PromptVersion string          `json:"prompt_version"`
	InputTokens   int             `json:"input_tokens"`
	OutputTokens  int             `json:"output_tokens"`
	CostUSD       float64         `json:"cost_usd"`
	Cached        bool            `json:"cached"`
	AssessedAt    time.Time       `json:"assessed_at"`
	Summary       string          `json:"summary"`
	Assessment    json.RawMessage `json:"assessment,omitempty"`
}

// ExportColumns names ExportRow's fields in CSV column order (without the
// assessment, which only JSON formats carry).
var ExportColumns = []string{"document_id", "filename", "status", "uploaded_at", "run", "score", "risk_level",
	"model", "prompt_version", "input_tokens", "output_tokens", "cost_usd", "cached", "assessed_at", "summary"}

// exportFrom selects the documents q selects with their latest assessment;
// documents never analyzed are not exported.
const exportFrom = ` FROM documents d CROSS JOIN LATERAL (
		SELECT a.run, a.score, a.risk_level, a.model, a.prompt_version, a.input_tokens, a.output_tokens,
			a.cost_usd, a.cached, a.created_at, a.result
		FROM assessments a WHERE a.document_id = d.id AND a.owner = d.owner
		ORDER BY a.run DESC LIMIT 1) a`

// ExportAssessments calls fn with the latest assessment of every document
// q selects (q.Limit and q.Cursor are ignored), in q.Sort order, at most
// max rows. Rows are read from the database one at a time as fn consumes
// them and the row passed to fn is reused, so memory stays constant
// whatever the number of rows. withResult adds the full assessment.
func (s *Store) ExportAssessments(ctx context.Context, owner string, q ListQuery, max int, withResult bool, fn func(*ExportRow) error) (int64, error) {
	ord, err := orderOf(q.Sort)
	if err != nil {
		return 0, err
	}
	var b queryBuilder
	q.filter(&b, owner)
	result := "NULL::jsonb"
	if withResult {
		result = "a.result"
	}
	rows, err := s.db.Query(ctx, `SELECT d.id, COALESCE(d.filename, ''), d.status, d.uploaded_at,
		a.run, a.score, a.risk_level, a.model, a.prompt_version, a.input_tokens, a.output_tokens,
		a.cost_usd::float8, a.cached, a.created_at, COALESCE(a.result->>'summary', ''), `+result+
		exportFrom+` WHERE `+b.sql()+` ORDER BY `+ord.by()+` LIMIT `+b.arg(max), b.args...)
	if err != nil {
		return 0, fmt.Errorf("export assessments: %w", err)
	}
	defer rows.Close()
	var r ExportRow
	var n int64
	for rows.Next() {
		r.Assessment = r.Assessment[:0]
		if err := rows.Scan(&r.DocumentID, &r.Filename, &r.Status, &r.UploadedAt,
			&r.Run, &r.Score, &r.RiskLevel, &r.Model, &r.PromptVersion, &r.InputTokens, &r.OutputTokens,
			&r.CostUSD, &r.Cached, &r.AssessedAt, &r.Summary, &r.Assessment); err != nil {
			return n, fmt.Errorf("export assessments: %w", err)
		}
		if err := fn(&r); err != nil {
			return n, err
		}
		n++
	}
	if err := rows.Err(); err != nil {
		return n, fmt.Errorf("export assessments: %w", err)
	}
	return n, nil
}

// AuditExport records an audit.exported entry for every document an
// export of q would contain, stopping at max+1, and returns how many it
// recorded. Run in the export's transaction (REPEATABLE READ) it both
// leaves the audit trail and counts the rows the export will stream; a
// count above max means the export is refused and the transaction rolled
// back.
func (s *Store) AuditExport(ctx context.Context, owner string, q ListQuery, max int, exportID string, a Actor, at time.Time, extra map[string]any) (int64, error) {
	var b queryBuilder
	q.filter(&b, owner)
	b.where("EXISTS (SELECT 1 FROM assessments x WHERE x.document_id = d.id AND x.owner = d.owner)")
	detail := auditDetail(a, extra)
	tag, err := s.db.Exec(ctx, auditInsert+`
		SELECT d.id || ':audit:exported:' || `+b.arg(exportID)+`, d.id, d.owner, d.run, `+b.arg(AuditExported)+`,
			`+b.arg(a.Source)+`, `+b.arg(a.RequestID)+`, `+b.arg(detail)+`::jsonb, `+b.arg(at)+`
		FROM documents d WHERE `+b.sql()+` LIMIT `+b.arg(max+1)+`
		ON CONFLICT (event_id) DO NOTHING`, b.args...)
	if err != nil {
		return 0, fmt.Errorf("audit export %s: %w", exportID, err)
	}
	return tag.RowsAffected(), nil
}
