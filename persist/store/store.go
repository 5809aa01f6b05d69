// Package store is the API's side of the document read model: the reads
// (documents, assessments, history, exports, statistics) and the few
// writes the API makes itself (soft deletes, audit entries, export
// records). Every statement is scoped by owner: another owner's document
// is simply not found, never "forbidden", so ids cannot be probed.
//
// The structs carry snake_case JSON tags because the API serves them as
// they are; storage keys are kept out of JSON.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// ErrNotFound: no such document (or assessment) for this owner.
var ErrNotFound = errors.New("not found")

// ErrDeleted: the owner's document was deleted. It matches ErrNotFound, so
// callers that do not care see a missing document; the API uses it to
// avoid falling back to the event log for a document that is gone.
var ErrDeleted = fmt.Errorf("%w: deleted", ErrNotFound)

// DB is what the store needs of a pool or transaction (*pgxpool.Pool,
// pgx.Tx).
type DB interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// Store reads documents and assessments.
type Store struct{ db DB }

// New returns a Store over db.
func New(db DB) *Store { return &Store{db: db} }

// Document is one document as the API shows it.
type Document struct {
	ID             string     `json:"id"`
	Owner          string     `json:"owner"`
	Filename       string     `json:"filename"`
	ContentType    string     `json:"content_type,omitempty"`
	DetectedFormat string     `json:"detected_format,omitempty"`
	SizeBytes      *int64     `json:"size_bytes,omitempty"`
	SHA256         string     `json:"sha256,omitempty"`
	Status         string     `json:"status"`
	Run            int        `json:"run"`
	Failure        *Failure   `json:"failure,omitempty"`
	Words          *int       `json:"words,omitempty"`
	Chars          *int       `json:"chars,omitempty"`
	Pages          *int       `json:"pages,omitempty"`
	Truncated      bool       `json:"truncated"`
	Score          *int       `json:"score,omitempty"`
	RiskLevel      string     `json:"risk_level,omitempty"`
	UploadedAt     time.Time  `json:"uploaded_at"`
	UpdatedAt      time.Time  `json:"updated_at"`
	CompletedAt    *time.Time `json:"completed_at,omitempty"`
	CorrelationID  string     `json:"correlation_id,omitempty"`
	LastEventSeq   int64      `json:"last_event_seq"`

	// Storage keys of the original and the extracted text: for the API to
	// fetch them, not to show.
	OriginalKey string     `json:"-"`
	TextKey     string     `json:"-"`
	DeletedAt   *time.Time `json:"-"`

	// Only GetDocument fills these.
	Timeline   []HistoryEntry `json:"timeline,omitempty"`
	Assessment *Assessment    `json:"assessment,omitempty"`
}

// Failure says where and why a document's run failed.
type Failure struct {
	Stage  string `json:"stage"`
	Reason string `json:"reason"`
	Class  string `json:"class"`
}

// Assessment is the analysis result of one run.
type Assessment struct {
	DocumentID    string          `json:"document_id"`
	Run           int             `json:"run"`
	Result        json.RawMessage `json:"result"`
	Score         int             `json:"score"`
	RiskLevel     string          `json:"risk_level"`
	Model         string          `json:"model"`
	PromptVersion string          `json:"prompt_version"`
	Attempts      json.RawMessage `json:"attempts"`
	InputTokens   int             `json:"input_tokens"`
	OutputTokens  int             `json:"output_tokens"`
	CostUSD       float64         `json:"cost_usd"`
	TextSHA256    string          `json:"text_sha256,omitempty"`
	Cached        bool            `json:"cached"`
	CreatedAt     time.Time       `json:"created_at"`
}

// documentColumns are selected in the order scanDocument reads them.
const documentColumns = `id, owner, COALESCE(filename, ''), COALESCE(content_type, ''),
	COALESCE(detected_format, ''), size_bytes, COALESCE(sha256, ''), status, run,
	failure_stage, failure_reason, failure_class, words, chars, pages, COALESCE(truncated, false),
	score, COALESCE(risk_level, ''), uploaded_at, updated_at, completed_at,
	COALESCE(correlation_id, ''), last_event_seq, COALESCE(original_key, ''), COALESCE(text_key, ''),
	deleted_at`

func scanDocument(row pgx.Row) (Document, error) {
	var d Document
	var fStage, fReason, fClass *string
	err := row.Scan(&d.ID, &d.Owner, &d.Filename, &d.ContentType,
		&d.DetectedFormat, &d.SizeBytes, &d.SHA256, &d.Status, &d.Run,
		&fStage, &fReason, &fClass, &d.Words, &d.Chars, &d.Pages, &d.Truncated,
		&d.Score, &d.RiskLevel, &d.UploadedAt, &d.UpdatedAt, &d.CompletedAt,
		&d.CorrelationID, &d.LastEventSeq, &d.OriginalKey, &d.TextKey, &d.DeletedAt)
	if err != nil {
		return d, err
	}
	if fStage != nil || fReason != nil || fClass != nil {
		d.Failure = &Failure{Stage: deref(fStage), Reason: deref(fReason), Class: deref(fClass)}
	}
	return d, nil
}

// GetDocument returns the owner's document with its stage timeline and its
// latest assessment, if any. The three reads travel as one batch: one
// round trip to the database.
func (s *Store) GetDocument(ctx context.Context, owner, id string) (Document, error) {
	b := &pgx.Batch{}
	b.Queue(`SELECT `+documentColumns+` FROM documents WHERE owner = $1 AND id = $2`, owner, id)
	b.Queue(timelineSQL, owner, id)
	b.Queue(assessmentSQL, owner, id)
	br := s.db.SendBatch(ctx, b)
	defer br.Close()

	d, err := scanDocument(br.QueryRow())
	if errors.Is(err, pgx.ErrNoRows) {
		return Document{}, ErrNotFound
	}
	if err != nil {
		return Document{}, fmt.Errorf("get document %s: %w", id, err)
	}
	if d.DeletedAt != nil {
		return Document{}, ErrDeleted
	}
	rows, err := br.Query()
	if err != nil {
		return Document{}, fmt.Errorf("timeline of %s: %w", id, err)
	}
	if d.Timeline, err = pgx.CollectRows(rows, scanHistoryEntry); err != nil {
		return Document{}, fmt.Errorf("timeline of %s: %w", id, err)
	}
	a, err := scanAssessment(br.QueryRow())
	switch {
	case err == nil:
		d.Assessment = &a
	case !errors.Is(err, pgx.ErrNoRows):
		return Document{}, fmt.Errorf("get assessment of %s: %w", id, err)
	}
	return d, nil
}

// timelineSQL is a document's stage history: the pipeline's events, not
// the audit entries the API adds (see History for both).
const timelineSQL = `SELECT ` + historyColumns + `
	FROM document_events WHERE owner = $1 AND document_id = $2 AND type NOT LIKE 'audit.%'
	ORDER BY occurred_at, stream_seq, event_id`

// assessmentSQL is the assessment of a document's latest analyzed run.
const assessmentSQL = `SELECT a.document_id, a.run, a.result, a.score, a.risk_level, a.model,
	a.prompt_version, a.attempts, a.input_tokens, a.output_tokens, a.cost_usd::float8, a.text_sha256,
	a.cached, a.created_at
	FROM assessments a JOIN documents d ON d.id = a.document_id
	WHERE a.owner = $1 AND a.document_id = $2 AND d.owner = $1 AND d.deleted_at IS NULL
	ORDER BY a.run DESC LIMIT 1`

func scanAssessment(row pgx.Row) (Assessment, error) {
	var a Assessment
	var textSHA *string
	err := row.Scan(&a.DocumentID, &a.Run, &a.Result, &a.Score, &a.RiskLevel, &a.Model,
		&a.PromptVersion, &a.Attempts, &a.InputTokens, &a.OutputTokens, &a.CostUSD, &textSHA,
		&a.Cached, &a.CreatedAt)
	a.TextSHA256 = deref(textSHA)
	return a, err
}

// GetAssessment returns the assessment of the owner's document's latest
// analyzed run.
func (s *Store) GetAssessment(ctx context.Context, owner, id string) (Assessment, error) {
	a, err := scanAssessment(s.db.QueryRow(ctx, assessmentSQL, owner, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Assessment{}, ErrNotFound
	}
	if err != nil {
		return Assessment{}, fmt.Errorf("get assessment of %s: %w", id, err)
	}
	return a, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// State is the little the API needs to know of a document to authorize
// and route a request: whether it exists for the owner, and where it is.
type State struct {
	Deleted bool
	Status  string
	Run     int
}

// DocumentState returns the owner's document's state; ErrNotFound if the
// owner has no such document (deleted ones are returned, with Deleted).
func (s *Store) DocumentState(ctx context.Context, owner, id string) (State, error) {
	var st State
	err := s.db.QueryRow(ctx, `SELECT deleted_at IS NOT NULL, status, run FROM documents WHERE owner = $1 AND id = $2`,
		owner, id).Scan(&st.Deleted, &st.Status, &st.Run)
	if errors.Is(err, pgx.ErrNoRows) {
		return State{}, ErrNotFound
	}
	if err != nil {
		return State{}, fmt.Errorf("state of %s: %w", id, err)
	}
	return st, nil
}
