package streams_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/aiprism/prism/streams"
)

// Statuses, their ranks and failure classes are stored in PostgreSQL, sent
// to webhooks and shown to users: their values are pinned here, so a
// rename fails this test instead of splitting the data in two.
func TestVocabularyIsStable(t *testing.T) {
	statuses := []struct {
		got, want string
		rank      int
	}{
		{streams.StatusUploaded, "uploaded", 10},
		{streams.StatusExtracting, "extracting", 20},
		{streams.StatusExtracted, "extracted", 30},
		{streams.StatusAnalyzing, "analyzing", 40},
		{streams.StatusQueued, "queued", 40},
		{streams.StatusAnalyzed, "analyzed", 100},
		{streams.StatusFailed, "failed", 100},
	}
	var listed []string
	for _, s := range statuses {
		if s.got != s.want {
			t.Errorf("status %q was renamed to %q", s.want, s.got)
		}
		if r := streams.StatusRank(s.got); r != s.rank {
			t.Errorf("status %q: rank %d, want %d", s.want, r, s.rank)
		}
		listed = append(listed, s.want)
	}
	if !slices.Equal(streams.Statuses(), listed) {
		t.Errorf("Statuses() = %v, want %v", streams.Statuses(), listed)
	}
	if r := streams.StatusRank("archived"); r != 0 {
		t.Errorf("an unknown status has rank %d, want 0", r)
	}

	for got, want := range map[string]string{
		streams.ClassBadEvent:          "bad-event",
		streams.ClassGaveUp:            "gave-up",
		streams.ClassBadOwner:          "bad-owner",
		streams.ClassEmpty:             "empty",
		streams.ClassTooLarge:          "too-large",
		streams.ClassOwnerMismatch:     "owner-mismatch",
		streams.ClassDBRejected:        "db-rejected",
		streams.ClassOriginalMissing:   "original-missing",
		streams.ClassOriginalCorrupt:   "original-corrupt",
		streams.ClassTextMissing:       "text-missing",
		streams.ClassEmptyText:         "empty-text",
		streams.ClassTooLargeForModels: "too-large-for-models",
		streams.ClassModelRejected:     "model-rejected",
		streams.ClassIncompleteOutput:  "incomplete-output",
		streams.ClassInvalidAssessment: "invalid-assessment",
		streams.ClassBadWebhook:        "bad-webhook",
		streams.ClassForeignObject:     "foreign-object",
		streams.ClassBudgetSpent:       "budget-spent",
	} {
		if got != want {
			t.Errorf("failure class %q was renamed to %q", want, got)
		}
		// Users are told a sentence of ours for every class.
		if r := streams.ClassReason(got); r == streams.ClassReason("no-such-class") || !strings.HasSuffix(r, ".") {
			t.Errorf("failure class %q has no sentence of its own: %q", got, r)
		}
	}
}
