package extractor

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aiprism/prism/platform/blob"
	"github.com/aiprism/prism/platform/testenv"
	"github.com/aiprism/prism/streams"
	"github.com/aiprism/prism/streams/streamstest"
	"github.com/nats-io/nats.go/jetstream"
)

// runningStage runs the extraction stage as the role does (the real
// runner on its consumer, plain text in process) on a watched S3
// endpoint, logging into logs.
func runningStage(t *testing.T) (jetstream.JetStream, *testenv.S3Watch, *testenv.Logs) {
	t.Helper()
	js := streamstest.JetStream(t)
	w := testenv.S3Watched(t)
	logs := &testenv.Logs{}
	pub := streams.NewPublisher(js, "/prism/extractor")
	x := &PlainTextInProcess{Next: testSandbox(t, Limits{}), Limits: Limits{}.withDefaults().extract(), MaxBytes: 1 << 20}
	stage := NewStage(w.Store(t), pub, Limits{}, x, WithJetStream(js))
	streamstest.Running(t, js, streams.ExtractorConsumer, stage.Handle, pub, logs)
	return js, w, logs
}

// store puts text as owner's original of doc and returns the reference
// an uploaded event carries.
func store(t *testing.T, w *testenv.S3Watch, owner, doc, text string) streams.ObjectRef {
	t.Helper()
	put, err := w.Store(t).Put(context.Background(), blob.Key(owner, doc, "contract.txt", time.Now()), strings.NewReader(text), int64(len(text)), "text/plain")
	if err != nil {
		t.Fatal(err)
	}
	return streams.ObjectRef{Key: put.Key, Size: put.Size, SHA256: put.SHA256}
}

func publishUploaded(t *testing.T, js jetstream.JetStream, owner, doc string, original streams.ObjectRef) {
	t.Helper()
	if _, err := streams.NewPublisher(js, "/test").Emit(context.Background(), streams.Meta{Owner: owner, DocumentID: doc, Run: 1, CorrelationID: "corr-" + doc},
		streams.Uploaded, "", streams.UploadedData{Original: original, Filename: "contract.txt"}); err != nil {
		t.Fatal(err)
	}
}

// An uploaded event published under mallory's owner pointing at alice's
// original ends in document.failed of class foreign-object, and the
// extractor never asks S3 for alice's object. Alice's own event for the
// same object is read (so the count does see reads) and extracted.
func TestForgedUploadedEventReadsNothingOfAnotherOwner(t *testing.T) {
	js, w, _ := runningStage(t)
	original := store(t, w, "alice", "doc-a", "Confidential: the price is 42.")

	publishUploaded(t, js, "mallory", "doc-m", original)
	f := streamstest.WaitFailed(t, js, "mallory", "doc-m")
	if f.ReasonClass != streams.ClassForeignObject || f.Stage != streams.StageExtract || f.Reason != streams.ClassReason(streams.ClassForeignObject) {
		t.Fatalf("failed event %+v, want class %s told as %q", f, streams.ClassForeignObject, streams.ClassReason(streams.ClassForeignObject))
	}
	if n := w.Count(http.MethodGet, original.Key) + w.Count(http.MethodHead, original.Key); n != 0 {
		t.Fatalf("alice's original was requested %d times for mallory's event", n)
	}
	if ev, err := streams.NewLog(js).Last(context.Background(), streams.DocSubject("mallory", "doc-m", streams.Extracted)); err != nil || ev != nil {
		t.Fatalf("mallory's document was extracted: %+v, %v", ev, err)
	}

	publishUploaded(t, js, "alice", "doc-a", original)
	testenv.Eventually(t, 20*time.Second, "alice's document extracted", func() bool {
		ev, err := streams.NewLog(js).Last(context.Background(), streams.DocSubject("alice", "doc-a", streams.Extracted))
		return err == nil && ev != nil
	})
	if n := w.Count(http.MethodGet, original.Key); n != 1 {
		t.Fatalf("alice's original read %d times for alice's event, want 1", n)
	}
}

// S3 refuses to serve an original with an error of its own words: the
// document fails (gave-up, after the consumer's deliveries), users are
// told our sentence, and S3's words are in the log with the document and
// correlation ids.
func TestS3ErrorTextReachesTheLogNotTheUser(t *testing.T) {
	js, w, logs := runningStage(t)
	original := store(t, w, "alice", "doc-s3", "Some contract text.")
	const raw = "bucket-policy-xyzzy-denies-this-principal"
	w.Fail(original.Key, testenv.S3Error{Status: http.StatusForbidden, Code: "AccessDenied", Message: raw})

	publishUploaded(t, js, "alice", "doc-s3", original)
	f := streamstest.WaitFailed(t, js, "alice", "doc-s3")
	if f.ReasonClass != streams.ClassGaveUp || strings.Contains(f.Reason, raw) || strings.Contains(f.Reason, "AccessDenied") || strings.Contains(f.Reason, original.Key) {
		t.Fatalf("failed event %+v: want gave-up told in our words, without S3's", f)
	}
	testenv.Eventually(t, 5*time.Second, "S3's error in the log", func() bool {
		return logs.Has(raw, `"document_id":"doc-s3"`, `"correlation_id":"corr-doc-s3"`)
	})
}
