package persist

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"github.com/aiprism/prism/streams"
	"github.com/jackc/pgx/v5"
)

// errOwnerMismatch: an event names a document id that belongs to another
// owner. Merging it would let one tenant write into another's document.
var errOwnerMismatch = errors.New("document belongs to another owner")

// advances is true when the incoming event moves the document's status:
// a higher (run, rank); at equal (run, rank) before the outcome, the newer
// event; at the outcome, an analysis result over a failure of the same run.
// So the status does not depend on the order events arrive in.
const advances = `((excluded.run, excluded.status_rank) > (d.run, d.status_rank)
	OR (excluded.run = d.run AND excluded.status_rank = d.status_rank
	    AND ((excluded.status_rank < 100 AND excluded.status_seq > d.status_seq)
	         OR (excluded.status = 'analyzed' AND d.status = 'failed'))))`

// merge keeps a fact known, preferring the value of the newer (or same) run.
func merge(col string) string {
	return fmt.Sprintf(`%[1]s = CASE WHEN excluded.%[1]s IS NOT NULL AND excluded.run >= d.run
		THEN excluded.%[1]s ELSE COALESCE(d.%[1]s, excluded.%[1]s) END`, col)
}

// outcome belongs to the event that set the status, so it moves with it
// and a new run clears the previous run's result.
func outcome(col string) string {
	return fmt.Sprintf(`%[1]s = CASE WHEN %[2]s THEN excluded.%[1]s ELSE d.%[1]s END`, col, advances)
}

// projectSQL applies one event in one statement. The history insert decides
// whether the event is new; only then is the document upserted (the
// conflict path locks the row, so concurrent events of one document
// serialize and each sees the other's result) and, for analyzed, the
// assessment stored. It returns whether the event was new and whether the
// document accepted it.
var projectSQL = `
WITH ev AS (
	INSERT INTO document_events (event_id, stream_seq, document_id, owner, run, type, stage, status,
		source, correlation_id, detail, occurred_at)
	VALUES (@event_id, @seq, @doc, @owner, @run, @type, @stage, @status,
		@source, @correlation_id, @detail, @at)
	ON CONFLICT (event_id) DO NOTHING
	RETURNING 1
), doc AS (
	INSERT INTO documents AS d (id, owner, run, status, status_rank, status_seq, uploaded_at, updated_at,
		last_event_seq, correlation_id,
		filename, content_type, size_bytes, sha256, original_key,
		detected_format, text_key, text_sha256, words, chars, pages, truncated,
		score, risk_level, failure_stage, failure_reason, failure_class, completed_at)
	SELECT @doc, @owner, @run, @status, @rank, @seq, @at, @at,
		@seq, @correlation_id,
		@filename, @content_type, @size_bytes, @sha256, @original_key,
		@detected_format, @text_key, @text_sha256, @words, @chars, @pages, @truncated,
		@score, @risk_level, @failure_stage, @failure_reason, @failure_class, @completed_at
	WHERE EXISTS (SELECT 1 FROM ev) AND @status::text IS NOT NULL
	ON CONFLICT (id) DO UPDATE SET
		` + outcome("status") + `,
		` + outcome("status_rank") + `,
		` + outcome("status_seq") + `,
		` + outcome("run") + `,
		` + outcome("score") + `,
		` + outcome("risk_level") + `,
		` + outcome("failure_stage") + `,
		` + outcome("failure_reason") + `,
		` + outcome("failure_class") + `,
		` + outcome("completed_at") + `,
		` + merge("correlation_id") + `,
		` + merge("filename") + `,
		` + merge("content_type") + `,
		` + merge("size_bytes") + `,
		` + merge("sha256") + `,
		` + merge("original_key") + `,
		` + merge("detected_format") + `,
		` + merge("text_key") + `,
		` + merge("text_sha256") + `,
		` + merge("words") + `,
		` + merge("chars") + `,
		` + merge("pages") + `,
		` + merge("truncated") + `,
		uploaded_at = LEAST(d.uploaded_at, excluded.uploaded_at),
		updated_at = GREATEST(d.updated_at, excluded.updated_at),
		last_event_seq = GREATEST(d.last_event_seq, excluded.last_event_seq)
	WHERE d.owner = excluded.owner
	RETURNING 1
), asmt AS (
	INSERT INTO assessments (document_id, run, owner, result, score, risk_level, model, prompt_version,
		attempts, input_tokens, output_tokens, cost_usd, text_sha256, cached, event_id, created_at)
	SELECT @doc, @run, @owner, @result, @score, @risk_level, @model, @prompt_version,
		@attempts, @input_tokens, @output_tokens, @cost_usd, @analyzed_text_sha256, @cached, @event_id, @at
	WHERE EXISTS (SELECT 1 FROM doc) AND @result::jsonb IS NOT NULL
	ON CONFLICT (document_id, run) DO NOTHING
)
SELECT EXISTS (SELECT 1 FROM ev), EXISTS (SELECT 1 FROM doc)`

// Project applies evs to the read model inside tx. It is idempotent (an
// event id already in document_events has no effect) and order-independent
// (status is monotonic in (run, rank), facts are merged), so duplicates,
// redeliveries and out-of-order arrival all converge on the same rows.
// The caller commits.
func Project(ctx context.Context, tx pgx.Tx, evs []*streams.Event) error {
	changes := make([]*change, 0, len(evs))
	for _, ev := range evs {
		c, err := changeOf(ev)
		if err != nil {
			return err
		}
		changes = append(changes, c)
	}
	// A fixed lock order across concurrent batches avoids deadlocks; the
	// order within a document does not matter to the result.
	sort.SliceStable(changes, func(i, j int) bool {
		a, b := changes[i].ev, changes[j].ev
		if a.Subject != b.Subject {
			return a.Subject < b.Subject
		}
		return a.ID < b.ID
	})

	batch := &pgx.Batch{}
	for _, c := range changes {
		batch.Queue(projectSQL, args(c))
	}
	br := tx.SendBatch(ctx, batch)
	for _, c := range changes {
		var fresh, applied bool
		if err := br.QueryRow().Scan(&fresh, &applied); err != nil {
			_ = br.Close()
			return fmt.Errorf("project event %s: %w", c.ev.ID, err)
		}
		if fresh && c.status != "" && !applied {
			_ = br.Close()
			return fmt.Errorf("project event %s of owner %s: %w", c.ev.ID, c.ev.Owner, errOwnerMismatch)
		}
	}
	if err := br.Close(); err != nil {
		return fmt.Errorf("project batch: %w", err)
	}
	return nil
}

// args binds a change to projectSQL's parameters.
func args(c *change) pgx.NamedArgs {
	ev := c.ev
	var status any
	if c.status != "" {
		status = c.status
	}
	a := pgx.NamedArgs{
		"event_id": ev.ID, "seq": int64(ev.Seq), "doc": ev.Subject, "owner": ev.Owner, "run": ev.Run,
		"type": string(c.kind), "stage": str(c.stage), "status": status, "rank": streams.StatusRank(c.status),
		"source": str(ev.Source), "correlation_id": str(ev.CorrelationID), "detail": jsonArg(c.detail),
		"at": occurredAt(ev),

		"filename": c.filename, "content_type": c.contentType, "size_bytes": c.sizeBytes,
		"sha256": c.sha256, "original_key": c.originalKey,
		"detected_format": c.detectedFormat, "text_key": c.textKey, "text_sha256": c.textSHA256,
		"words": c.words, "chars": c.chars, "pages": c.pages, "truncated": c.truncated,
		"score": c.score, "risk_level": c.riskLevel,
		"failure_stage": c.failureStage, "failure_reason": c.failureReason, "failure_class": c.failureClass,
		"completed_at": c.completedAt,

		"result": nil, "model": "", "prompt_version": "", "attempts": []byte("[]"), "analyzed_text_sha256": nil,
		"input_tokens": 0, "output_tokens": 0, "cost_usd": 0.0, "cached": false,
	}
	if d := c.analysis; d != nil {
		a["result"] = []byte(d.Assessment)
		a["model"], a["prompt_version"] = d.Model, d.PromptVersion
		a["attempts"] = attemptsJSON(d.Attempts)
		a["input_tokens"], a["output_tokens"] = d.InputTokens, d.OutputTokens
		a["cost_usd"], a["cached"] = d.CostUSD, d.Cached
		// The hash of the text this assessment was made from (the result
		// cache's key), which a later run's extraction may have replaced.
		a["analyzed_text_sha256"] = str(d.TextSHA256)
	}
	return a
}

// jsonArg passes JSON through as is; nil becomes SQL NULL.
func jsonArg(raw []byte) any {
	if raw == nil {
		return nil
	}
	return raw
}

func attemptsJSON(as []streams.Attempt) []byte {
	if as == nil {
		as = []streams.Attempt{}
	}
	raw, err := json.Marshal(as)
	if err != nil { // plain struct of strings and ints: cannot fail
		return []byte("[]")
	}
	return raw
}
