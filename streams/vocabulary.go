package streams

// Document statuses: where a document is in the pipeline. Progress events
// report them (ProgressData.Status), the read model stores them
// (documents.status, with a CHECK listing them) and the API shows them:
// never rename one, only add (and add it to that CHECK).
const (
	StatusUploaded   = "uploaded"   // stored and announced; waits for extraction
	StatusExtracting = "extracting" // its text is being extracted
	StatusExtracted  = "extracted"  // text stored; waits for analysis
	StatusAnalyzing  = "analyzing"  // a model is assessing it
	StatusQueued     = "queued"     // waits for model capacity, between analyzing attempts
	StatusAnalyzed   = "analyzed"   // assessed: final for its run
	StatusFailed     = "failed"     // given up, with a failure class: final for its run
)

// Statuses lists every status in pipeline order.
func Statuses() []string {
	return []string{StatusUploaded, StatusExtracting, StatusExtracted, StatusAnalyzing, StatusQueued, StatusAnalyzed, StatusFailed}
}

// StatusRank orders statuses for a monotonic projection: within a run a
// document's status only moves to a higher rank, and a newer run always
// wins ((run, rank) is compared as a pair). analyzing and queued share a
// rank: a document alternates between them, and the newer event says
// which it is now. 0 for an unknown status. The ranks are stored
// (documents.status_rank): change one only with a migration.
func StatusRank(status string) int {
	switch status {
	case StatusUploaded:
		return 10
	case StatusExtracting:
		return 20
	case StatusExtracted:
		return 30
	case StatusAnalyzing, StatusQueued:
		return 40
	case StatusAnalyzed, StatusFailed:
		return 100
	}
	return 0
}

// Failure classes: why a stage gave up on a document, as a stable slug for
// programs (FailedData.ReasonClass; the start of a terminated message's
// reason in the DLQ). They are stored (documents.failure_class), sent to
// webhooks and shown to users: never rename one, only add. The
// extractor's own classes (what is wrong with a file) are in
// extractor/reason, and share this namespace.
const (
	ClassBadEvent          = "bad-event"            // an event whose envelope or payload no stage can read
	ClassGaveUp            = "gave-up"              // a transient failure outlasted the consumer's deliveries or age
	ClassBadOwner          = "bad-owner"            // intake on a subject whose owner is not a valid id
	ClassEmpty             = "empty"                // a document of zero bytes
	ClassTooLarge          = "too-large"            // a document over the size limit
	ClassOwnerMismatch     = "owner-mismatch"       // an event about a document of another owner
	ClassDBRejected        = "db-rejected"          // the database refuses the event's data (the same way every time)
	ClassOriginalMissing   = "original-missing"     // the stored original is gone
	ClassOriginalCorrupt   = "original-corrupt"     // the stored original does not match its checksum
	ClassTextMissing       = "text-missing"         // the extracted text is gone
	ClassEmptyText         = "empty-text"           // the document has no text to analyze
	ClassTooLargeForModels = "too-large-for-models" // no model in the chain can take the document
	ClassModelRejected     = "model-rejected"       // a model refused the request, as it would every time
	ClassIncompleteOutput  = "incomplete-output"    // the model's answer stayed cut off at the largest output budget
	ClassInvalidAssessment = "invalid-assessment"   // the model's answer failed validation after a repair turn
	ClassBadWebhook        = "bad-webhook"          // the webhook request cannot be built
	ClassForeignObject     = "foreign-object"       // an event names a stored object of another owner
	ClassBudgetSpent       = "budget-spent"         // the owner's daily model-token budget is spent
	ClassAnswerInterrupted = "answer-interrupted"   // a chat answer stopped before it was complete (the model's stream broke, or the process writing it stopped)
	ClassModelsBusy        = "models-busy"          // every model was busy for longer than a chat answer may wait
)

// ClassReason is what users are told about a failure of class: a sentence
// of ours. An error's own text never reaches users (it may carry S3,
// PostgreSQL or Bedrock internals); the runner logs it. A class defined
// elsewhere (the extractor's) gets a general sentence here; its stage
// passes a better one with the error (PermanentError.Reason).
func ClassReason(class string) string {
	switch class {
	case ClassBadEvent:
		return "An event about this document could not be read, so this stage could not work on it."
	case ClassGaveUp:
		return "Gave up after repeated failures on our side, not in the document."
	case ClassBadOwner:
		return "The document was sent for an owner id that is not valid."
	case ClassEmpty:
		return "The document is empty."
	case ClassTooLarge:
		return "The document is larger than the size limit."
	case ClassOwnerMismatch:
		return "An event about this document named another owner and was refused."
	case ClassDBRejected:
		return "The document's data could not be recorded."
	case ClassOriginalMissing:
		return "The stored original of this document is gone."
	case ClassOriginalCorrupt:
		return "The stored original of this document does not match the checksum recorded at upload."
	case ClassTextMissing:
		return "The extracted text of this document is gone."
	case ClassEmptyText:
		return "The document has no text to analyze."
	case ClassTooLargeForModels:
		return "The document is too large for every model available."
	case ClassModelRejected:
		return "The model refused to assess this document."
	case ClassIncompleteOutput:
		return "The model's answer stayed cut off even at the largest output budget."
	case ClassInvalidAssessment:
		return "The model's answer failed validation, also after a repair attempt."
	case ClassBadWebhook:
		return "The webhook request could not be built."
	case ClassForeignObject:
		return "An event about this document named a stored object of another owner; nothing was read."
	case ClassBudgetSpent:
		return "The daily model budget of this account is spent; re-analyze the document after it renews at midnight UTC."
	}
	return "This stage could not process the document."
}
