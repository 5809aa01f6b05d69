package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aiprism/prism/persist/persisttest"
	"github.com/aiprism/prism/persist/store"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Size of the seeded read model: documents spread over owners (each
// holding a tenth of them), each with its pipeline events (and some audit
// entries) and, once analyzed, its assessments.
const (
	planOwners    = 10
	planDocuments = 40_000
	planExports   = 5_000
	// exportRowCap is the API's default export row cap (api.DefaultExportMaxRows).
	exportRowCap = 100_000
)

// seededTables are the tables the seed fills; a query that reads one of
// them without an index reads every owner's rows.
var seededTables = []string{"documents", "document_events", "assessments", "exports"}

// TestQueriesUseIndexes seeds a realistic read model, then has PostgreSQL
// plan every statement the store sends for the API's reads (lists under
// each filter, sort and cursor, stats, history and timeline, assessment,
// exports) and its writes (audit entries, deletes), and requires each plan
// to reach the seeded tables through an index only: no sequential scan.
// The statements are captured from the store's own calls, so the test
// checks exactly the SQL the API runs.
func TestQueriesUseIndexes(t *testing.T) {
	if testing.Short() {
		t.Skip("seeds tens of thousands of rows")
	}
	ctx := context.Background()
	pool := persisttest.DB(t)
	start := time.Now()
	seedReadModel(t, pool)
	t.Logf("seeded %d documents of %d owners in %s", planDocuments, planOwners, time.Since(start).Round(time.Millisecond))

	const owner = "owner-03"
	var docID, lastID, exportID string
	if err := pool.QueryRow(ctx, `SELECT min(id), max(id), (SELECT min(id) FROM exports WHERE owner = $1)
		FROM documents WHERE owner = $1 AND status = 'analyzed' AND deleted_at IS NULL`, owner).Scan(&docID, &lastID, &exportID); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	actor := store.Actor{User: owner, RequestID: "req-1", Source: "/test"}

	cases := map[string]func(s *store.Store) error{
		"GetDocument":   func(s *store.Store) error { _, err := s.GetDocument(ctx, owner, docID); return err },
		"DocumentState": func(s *store.Store) error { _, err := s.DocumentState(ctx, owner, docID); return err },
		"GetAssessment": func(s *store.Store) error { _, err := s.GetAssessment(ctx, owner, docID); return err },
		"GetExport":     func(s *store.Store) error { _, err := s.GetExport(ctx, owner, exportID); return err },
		"History": func(s *store.Store) error {
			_, next, err := s.History(ctx, owner, docID, 2, "")
			if err == nil {
				_, _, err = s.History(ctx, owner, docID, 2, next)
			}
			return err
		},
		"RecordAccess": func(s *store.Store) error {
			return s.RecordAccess(ctx, owner, docID, store.AuditViewed, actor, at, nil)
		},
		"Delete": func(s *store.Store) error { _, err := s.Delete(ctx, owner, lastID, actor, at); return err },
		"InFlight": func(s *store.Store) error {
			_, _, err := s.InFlight(ctx, owner, []string{docID, "not-projected"}, []int{2, 1})
			return err
		},
	}
	for name, w := range statsWindows() {
		cases["Stats/"+name] = func(s *store.Store) error { _, err := s.Stats(ctx, owner, w); return err }
	}
	for name, q := range listQueries() {
		cases["ListDocuments/"+name] = func(s *store.Store) error {
			_, next, err := s.ListDocuments(ctx, owner, q)
			if err == nil && next != "" { // the next page, from its cursor
				q.Cursor = next
				_, _, err = s.ListDocuments(ctx, owner, q)
			}
			return err
		}
		cases["ExportAssessments/"+name] = func(s *store.Store) error {
			_, err := s.ExportAssessments(ctx, owner, q, exportRowCap, true, func(*store.ExportRow) error { return nil })
			return err
		}
		cases["AuditExport/"+name] = func(s *store.Store) error {
			_, err := s.AuditExport(ctx, owner, q, exportRowCap, "export-x", actor, at, nil)
			return err
		}
	}

	names := make([]string, 0, len(cases))
	for name := range cases {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			plans := explainCall(t, pool, cases[name])
			if len(plans) == 0 {
				t.Fatal("the store sent no statement")
			}
			for _, p := range plans {
				p.check(t)
				t.Logf("%s", p)
			}
		})
	}
}

// listQueries are the API's list filters, each under every sort order.
func listQueries() map[string]store.ListQuery {
	minScore, maxScore := 80, 20
	filters := map[string]store.ListQuery{
		"all":          {},
		"status":       {Status: "analyzed"},
		"rare status":  {Status: "failed"},
		"risk level":   {RiskLevel: "high"},
		"min score":    {MinScore: &minScore},
		"max score":    {MaxScore: &maxScore},
		"score range":  {MinScore: &maxScore, MaxScore: &minScore},
		"window":       {Since: time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC), Until: time.Date(2025, 4, 1, 0, 0, 0, 0, time.UTC)},
		"q":            {FilenameContains: "nda"},
		"rare q":       {FilenameContains: "lease-1234"},
		"prefix":       {FilenamePrefix: "dpa"},
		"status and q": {Status: "analyzed", FilenameContains: "nda", RiskLevel: "critical"},
	}
	out := map[string]store.ListQuery{}
	for name, q := range filters {
		for _, s := range store.Sorts {
			q.Sort = s
			out[name+"/sort="+s] = q
		}
	}
	return out
}

func statsWindows() map[string]store.StatsWindow {
	return map[string]store.StatsWindow{
		"all time":  {},
		"one month": {Since: time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC), Until: time.Date(2025, 4, 1, 0, 0, 0, 0, time.UTC)},
		"since":     {Since: time.Date(2025, 4, 1, 0, 0, 0, 0, time.UTC)},
	}
}

// seedReadModel fills the read model with generate_series in one
// transaction (a fixed random seed keeps runs comparable) and analyzes it.
// Owners' documents are interleaved over time, as uploads arrive in
// production, so no owner's rows sit together on disk.
func seedReadModel(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	ctx := context.Background()
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		for _, stmt := range []string{
			`SELECT setseed(0.42)`,
			fmt.Sprintf(seedDocuments, planOwners, planDocuments),
			seedEvents,
			seedAudit,
			seedAssessments,
			fmt.Sprintf(seedExports, planOwners, planExports),
		} {
			if _, err := tx.Exec(ctx, stmt); err != nil {
				return fmt.Errorf("seed: %w\n%s", err, stmt)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Statistics, as autovacuum's analyze keeps them; the plans below are
	// the ones PostgreSQL picks from them.
	if _, err := pool.Exec(ctx, `ANALYZE documents, document_events, assessments, exports`); err != nil {
		t.Fatal(err)
	}
}

const seedDocuments = `
INSERT INTO documents (id, owner, filename, content_type, size_bytes, sha256, original_key, text_key,
	status, status_rank, run, words, score, risk_level, uploaded_at, updated_at, completed_at, deleted_at,
	last_event_seq, correlation_id)
SELECT id, owner, filename, 'application/pdf', 1000 + i, md5(id), 'originals/' || id, 'texts/' || id,
	status, 1, run, 500, score, CASE WHEN score < 25 THEN 'low' WHEN score < 50 THEN 'medium'
		WHEN score < 75 THEN 'high' WHEN score IS NOT NULL THEN 'critical' END,
	uploaded_at, uploaded_at + interval '1 minute',
	CASE WHEN status IN ('analyzed', 'failed') THEN uploaded_at + interval '1 minute' END,
	CASE WHEN deleted THEN uploaded_at + interval '2 days' END, i, id
FROM (
	SELECT *, CASE WHEN status = 'analyzed' THEN floor(r_score * 101)::int END AS score
	FROM (
		SELECT *, CASE WHEN r_status < 0.80 THEN 'analyzed' WHEN r_status < 0.85 THEN 'failed'
			WHEN r_status < 0.90 THEN 'extracting' WHEN r_status < 0.95 THEN 'analyzing' ELSE 'uploaded' END AS status
		FROM (
			-- Volatile columns keep this level from being flattened: one draw per row.
			SELECT i, 'doc-' || lpad(i::text, 6, '0') AS id,
				'owner-' || lpad(floor(random() * %[1]d)::int::text, 2, '0') AS owner,
				(ARRAY['contract', 'nda', 'lease', 'dpa', 'invoice', 'policy'])[1 + floor(random() * 6)::int] || '-' || i || '.pdf' AS filename,
				CASE WHEN random() < 0.05 THEN 2 ELSE 1 END AS run,
				random() < 0.02 AS deleted,
				random() AS r_status, random() AS r_score,
				timestamptz '2024-06-01' + i * interval '12 minutes' AS uploaded_at
			FROM generate_series(1, %[2]d) AS i
		) AS gen
	) AS with_status
) AS doc`

// seedEvents: each document's pipeline events up to its status.
const seedEvents = `
INSERT INTO document_events (event_id, stream_seq, document_id, owner, run, type, stage, status, source,
	correlation_id, detail, occurred_at)
SELECT d.id || ':1:' || e.step || ':' || e.type, d.last_event_seq * 10 + e.step, d.id, d.owner, 1, e.type,
	e.stage, e.status, '/seed', d.id, e.detail, d.uploaded_at + e.step * interval '5 seconds'
FROM documents d CROSS JOIN LATERAL (VALUES
	(0, 'uploaded', NULL, 'uploaded', jsonb_build_object('original', jsonb_build_object('key', d.original_key))),
	(1, 'progress', 'extract', 'extracting', NULL),
	(2, 'extracted', 'extract', 'extracted', jsonb_build_object('text', jsonb_build_object('key', d.text_key))),
	(3, 'progress', 'analyze', 'analyzing', NULL),
	(4, CASE WHEN d.status = 'failed' THEN 'failed' ELSE 'analyzed' END, 'analyze', d.status, NULL)
) AS e(step, type, stage, status, detail)
WHERE e.step <= CASE d.status WHEN 'uploaded' THEN 0 WHEN 'extracting' THEN 1 WHEN 'analyzing' THEN 3 ELSE 4 END`

// seedAudit: a third of the documents were viewed.
const seedAudit = `
INSERT INTO document_events (event_id, document_id, owner, run, type, source, correlation_id, detail, occurred_at)
SELECT d.id || ':audit:viewed', d.id, d.owner, d.run, 'audit.viewed', '/seed', 'req', '{"actor":"x"}',
	d.uploaded_at + interval '1 day'
FROM documents d WHERE random() < 0.33`

// seedAssessments: one per run of every analyzed document.
const seedAssessments = `
INSERT INTO assessments (document_id, run, owner, result, score, risk_level, model, prompt_version,
	attempts, input_tokens, output_tokens, cost_usd, text_sha256, created_at)
SELECT d.id, r, d.owner,
	jsonb_build_object('summary', 'The ' || d.filename || ' carries ' || d.risk_level || ' risk.',
		'overall_score', d.score, 'risk_level', d.risk_level,
		'risk_factors', jsonb_build_array(jsonb_build_object('category', 'liability', 'severity', d.risk_level,
			'description', repeat('unlimited liability clause ', 8)))),
	d.score, d.risk_level, (ARRAY['claude-sonnet', 'claude-haiku', 'claude-opus'])[1 + d.last_event_seq % 3], 'v1',
	'[{"model":"claude-sonnet","outcome":"ok"}]', 1200, 300, 0.0081, md5(d.id || r), d.uploaded_at + r * interval '20 seconds'
FROM documents d, generate_series(1, d.run) AS r
WHERE d.status = 'analyzed'`

const seedExports = `
INSERT INTO exports (id, owner, format, object_key, rows, size_bytes, sha256, created_at)
SELECT 'export-' || lpad(i::text, 5, '0'), 'owner-' || lpad((i %% %[1]d)::text, 2, '0'), 'csv',
	'exports/' || i, 100, 10000, md5(i::text), timestamptz '2025-01-01' + i * interval '1 hour'
FROM generate_series(1, %[2]d) AS i`

// explainCall runs call on a store whose statements PostgreSQL plans
// first, in a transaction rolled back after, so writes leave the seeded
// data (and its statistics) as they were.
func explainCall(t *testing.T, pool *pgxpool.Pool, call func(*store.Store) error) []plan {
	t.Helper()
	ctx := context.Background()
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	x := &explainer{t: t, db: tx}
	if err := call(store.New(x)); err != nil {
		t.Fatalf("store call: %v", err)
	}
	return x.plans
}

// explainer is a store.DB that has PostgreSQL plan each statement
// (EXPLAIN, without running it) before passing it on.
type explainer struct {
	t     *testing.T
	db    store.DB
	plans []plan
}

func (x *explainer) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	x.explain(ctx, sql, args)
	return x.db.Query(ctx, sql, args...)
}

func (x *explainer) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	x.explain(ctx, sql, args)
	return x.db.QueryRow(ctx, sql, args...)
}

func (x *explainer) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	x.explain(ctx, sql, args)
	return x.db.Exec(ctx, sql, args...)
}

func (x *explainer) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	for _, q := range b.QueuedQueries {
		x.explain(ctx, q.SQL, q.Arguments)
	}
	return x.db.SendBatch(ctx, b)
}

func (x *explainer) explain(ctx context.Context, sql string, args []any) {
	x.t.Helper()
	var raw []byte
	if err := x.db.QueryRow(ctx, "EXPLAIN (FORMAT JSON) "+sql, args...).Scan(&raw); err != nil {
		x.t.Fatalf("explain: %v\n%s", err, sql)
	}
	var out []struct{ Plan planNode }
	if err := json.Unmarshal(raw, &out); err != nil || len(out) != 1 {
		x.t.Fatalf("explain: unexpected output (%v): %s", err, raw)
	}
	x.plans = append(x.plans, plan{sql: sql, root: out[0].Plan})
}

// plan is one statement and PostgreSQL's plan of it.
type plan struct {
	sql  string
	root planNode
}

// planNode is the part of an EXPLAIN (FORMAT JSON) node the test reads.
type planNode struct {
	NodeType string     `json:"Node Type"`
	Relation string     `json:"Relation Name"`
	Index    string     `json:"Index Name"`
	Plans    []planNode `json:"Plans"`
}

func (n planNode) walk(fn func(planNode)) {
	fn(n)
	for _, c := range n.Plans {
		c.walk(fn)
	}
}

// indexScans are the node types that read a table through an index
// (a Bitmap Heap Scan's child is the Bitmap Index Scan).
var indexScans = []string{"Index Scan", "Index Only Scan", "Bitmap Heap Scan"}

// check fails the test if the plan reads a seeded table other than
// through an index, or reads none at all.
func (p plan) check(t *testing.T) {
	t.Helper()
	reads := 0
	p.root.walk(func(n planNode) {
		if !slices.Contains(seededTables, n.Relation) || n.NodeType == "ModifyTable" {
			return
		}
		reads++
		if !slices.Contains(indexScans, n.NodeType) {
			t.Errorf("%s on %s in the plan of\n%s", n.NodeType, n.Relation, p.sql)
		}
	})
	if reads == 0 {
		t.Errorf("the plan reads none of %v:\n%s", seededTables, p.sql)
	}
}

// String lists the plan's scans, e.g. "Index Scan documents_pkey; Bitmap
// Index Scan document_events_document_idx".
func (p plan) String() string {
	var scans []string
	p.root.walk(func(n planNode) {
		switch {
		case n.Index != "":
			scans = append(scans, n.NodeType+" "+n.Index)
		case strings.HasSuffix(n.NodeType, "Scan") && n.NodeType != "Bitmap Heap Scan":
			scans = append(scans, n.NodeType+" "+n.Relation)
		}
	})
	return strings.Join(scans, "; ")
}
