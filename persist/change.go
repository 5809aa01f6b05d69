package persist

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/aiprism/prism/streams"
)

// change is what one event contributes to the read model. Nil pointers are
// facts the event does not know; they never overwrite known ones.
type change struct {
	ev     *streams.Event
	kind   streams.EventType
	stage  string
	status string // "" = the event implies no status: history only
	detail []byte // payload for the history, without bulky parts

	filename, contentType, sha256, originalKey *string
	sizeBytes                                  *int64
	detectedFormat, textKey, textSHA256        *string
	words, chars, pages                        *int
	truncated                                  *bool
	score                                      *int
	riskLevel                                  *string
	failureStage, failureReason, failureClass  *string
	completedAt                                *time.Time
	analysis                                   *streams.AnalyzedData
}

// errBadEvent marks an event whose payload cannot be projected; Handle
// turns it into a permanent error.
var errBadEvent = errors.New("bad event")

// changeOf decodes ev into its change.
func changeOf(ev *streams.Event) (*change, error) {
	c := &change{ev: ev, kind: ev.EventKind(), detail: nonEmpty(ev.Data)}
	if ev.Subject == "" || ev.Owner == "" || ev.ID == "" {
		return nil, fmt.Errorf("%w: event %q lacks id, owner or subject", errBadEvent, ev.ID)
	}
	decode := func(v any) error {
		if err := ev.Decode(v); err != nil {
			return fmt.Errorf("%w: %w", errBadEvent, err)
		}
		return nil
	}
	at := occurredAt(ev)
	switch c.kind {
	case streams.Uploaded:
		var d streams.UploadedData
		if err := decode(&d); err != nil {
			return nil, err
		}
		c.stage, c.status = string(streams.StageIngest), streams.StatusUploaded
		c.filename, c.contentType = str(d.Filename), str(d.ContentType)
		c.originalKey, c.sha256 = str(d.Original.Key), str(d.Original.SHA256)
		if d.Original.Size > 0 || d.Original.Key != "" {
			c.sizeBytes = &d.Original.Size
		}
	case streams.Progress:
		var d streams.ProgressData
		if err := decode(&d); err != nil {
			return nil, err
		}
		c.stage, c.status = string(d.Stage), progressStatus(d)
	case streams.Extracted:
		var d streams.ExtractedData
		if err := decode(&d); err != nil {
			return nil, err
		}
		c.stage, c.status = string(streams.StageExtract), streams.StatusExtracted
		c.detectedFormat, c.textKey, c.textSHA256 = str(d.Format), str(d.Text.Key), str(d.Text.SHA256)
		c.words, c.chars, c.truncated = &d.Words, &d.Chars, &d.Truncated
		if d.Pages > 0 {
			c.pages = &d.Pages
		}
	case streams.Analyzed:
		var d streams.AnalyzedData
		if err := decode(&d); err != nil {
			return nil, err
		}
		if a := string(d.Assessment); a == "" || a == "null" {
			return nil, fmt.Errorf("%w: analyzed event %s has no assessment", errBadEvent, ev.ID)
		}
		c.stage, c.status = string(streams.StageAnalyze), streams.StatusAnalyzed
		c.score, c.riskLevel, c.completedAt = &d.Score, str(d.Level), &at
		c.analysis = &d
		// The assessment lives in its own table; the history keeps the rest.
		c.detail = withoutKey(ev.Data, "assessment")
	case streams.Failed:
		var d streams.FailedData
		if err := decode(&d); err != nil {
			return nil, err
		}
		c.stage, c.status = string(d.Stage), streams.StatusFailed
		c.failureStage, c.failureReason, c.failureClass = str(string(d.Stage)), str(d.Reason), str(d.ReasonClass)
		c.completedAt = &at
	default:
		// A type this version does not know: kept in the history so a
		// later version can read it, but no effect on the document.
	}
	return c, nil
}

// progressStatus maps a progress event to the status it implies.
func progressStatus(d streams.ProgressData) string {
	switch d.Status {
	case streams.StatusQueued, streams.StatusExtracting, streams.StatusAnalyzing:
		return d.Status
	case "":
		switch d.Stage {
		case streams.StageExtract:
			return streams.StatusExtracting
		case streams.StageAnalyze:
			return streams.StatusAnalyzing
		}
	}
	return ""
}

// occurredAt is the event's own time; projecting with it (rather than the
// clock) makes the read model a function of the events alone.
func occurredAt(ev *streams.Event) time.Time {
	if ev.Time.IsZero() {
		return time.Now().UTC()
	}
	return ev.Time.UTC()
}

func str(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func nonEmpty(raw json.RawMessage) []byte {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	return raw
}

// withoutKey returns the JSON object raw without key (raw unchanged if it
// is not an object).
func withoutKey(raw json.RawMessage, key string) []byte {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nonEmpty(raw)
	}
	delete(m, key)
	out, err := json.Marshal(m)
	if err != nil {
		return nonEmpty(raw)
	}
	return out
}
