package ingest_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/aiprism/prism/ingest"
	"github.com/aiprism/prism/platform/blob"
	"github.com/aiprism/prism/platform/testenv"
	"github.com/aiprism/prism/streams"
	"github.com/aiprism/prism/streams/streamstest"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

const owner = streamstest.Owner

// publishIntake publishes body on owner's intake subject as another system
// would, with msgID as its Nats-Msg-Id, and returns its stream sequence.
func publishIntake(t *testing.T, js jetstream.JetStream, owner, msgID, filename string, body []byte) uint64 {
	t.Helper()
	msg := nats.NewMsg(streams.IntakeSubject(owner))
	msg.Data = body
	msg.Header.Set(ingest.HeaderFilename, filename)
	msg.Header.Set(ingest.HeaderCorrelationID, "corr-"+msgID)
	ack, err := js.PublishMsg(context.Background(), msg, jetstream.WithMsgID(msgID))
	if err != nil {
		t.Fatal(err)
	}
	return ack.Sequence
}

// uploadedOf returns the one document.uploaded event of doc.
func uploadedOf(t *testing.T, js jetstream.JetStream, doc string) (*streams.Event, streams.UploadedData) {
	t.Helper()
	evs := streamstest.Events(t, js, doc, streams.Uploaded)
	if len(evs) != 1 {
		t.Fatalf("%s: %d uploaded events, want 1", doc, len(evs))
	}
	var d streams.UploadedData
	if err := evs[0].Decode(&d); err != nil {
		t.Fatal(err)
	}
	return evs[0], d
}

func TestAcceptStoresTheOriginalThenAnnouncesIt(t *testing.T) {
	ctx := context.Background()
	js := streamstest.JetStream(t)
	store := testenv.S3(t)
	svc := ingest.NewService(store, streams.NewPublisher(js, "/test"), 1<<20)
	for _, size := range []int64{-1, 0} { // streamed, and with its size declared
		body := "Rahmenvertrag: der Auftragnehmer haftet unbegrenzt."
		if size == 0 {
			size = int64(len(body))
		}
		ev, err := svc.Accept(ctx, ingest.Upload{
			Owner: owner, Filename: "../contracts/Rahmenvertrag Q3.txt", ContentType: "text/plain", Size: size,
			UploadedBy: "bob", Via: "http", Body: strings.NewReader(body),
		})
		if err != nil {
			t.Fatal(err)
		}
		if streams.ValidToken(ev.Subject) != nil || ev.CorrelationID != ev.Subject || ev.Run != 1 {
			t.Fatalf("event %+v: want a new valid document id, its own correlation id, run 1", ev)
		}
		stored, d := uploadedOf(t, js, ev.Subject)
		sum := sha256.Sum256([]byte(body))
		if stored.ID != ev.ID || d.Original.Size != int64(len(body)) || d.Original.SHA256 != hex.EncodeToString(sum[:]) ||
			d.Filename != blob.SafeFilename("Rahmenvertrag Q3.txt") || d.UploadedBy != "bob" || d.Via != "http" || d.ContentType != "text/plain" {
			t.Fatalf("uploaded %+v", d)
		}
		rc, _, err := store.Get(ctx, d.Original.Key)
		if err != nil {
			t.Fatalf("the announced original is not stored: %v", err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || string(got) != body {
			t.Fatalf("stored original %q, %v", got, err)
		}
	}
}

func TestAcceptRefusesTooLargeAndEmptyDocuments(t *testing.T) {
	ctx := context.Background()
	js := streamstest.JetStream(t)
	svc := ingest.NewService(testenv.S3(t), streams.NewPublisher(js, "/test"), 16)
	for _, tc := range []struct {
		doc, body string
		size      int64
		want      error
	}{
		{"declared-too-large", strings.Repeat("x", 17), 17, ingest.ErrTooLarge},
		{"streamed-too-large", strings.Repeat("x", 4096), -1, ingest.ErrTooLarge},
		{"empty", "", 0, ingest.ErrEmpty},
		{"streamed-empty", "", -1, ingest.ErrEmpty},
		{"at-the-limit", strings.Repeat("x", 16), -1, nil},
	} {
		_, err := svc.Accept(ctx, ingest.Upload{Owner: owner, DocumentID: tc.doc, Filename: "a.txt", Size: tc.size, Via: "http", Body: strings.NewReader(tc.body)})
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.doc, err, tc.want)
		}
		want := 0
		if tc.want == nil {
			want = 1
		}
		if n := streamstest.CountEvents(t, js, tc.doc, streams.Uploaded); n != want {
			t.Errorf("%s: %d uploaded events, want %d", tc.doc, n, want)
		}
	}
}

// A document is announced only once its original is stored: while the
// store is down, Accept fails and nothing is announced.
func TestAcceptAnnouncesNothingWhileTheStoreIsDown(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	js := streamstest.JetStream(t)
	s3 := startS3(t)
	svc := ingest.NewService(s3.store(t), streams.NewPublisher(js, "/test"), 1<<20)
	back := s3.outage(t)
	_, err := svc.Accept(ctx, ingest.Upload{Owner: owner, DocumentID: "doc1", Filename: "a.txt", Size: 5, Via: "http", Body: strings.NewReader("hello")})
	if err == nil || errors.Is(err, ingest.ErrEmpty) || errors.Is(err, ingest.ErrTooLarge) {
		t.Fatalf("with the store down: %v, want a store error", err)
	}
	if n := streamstest.CountEvents(t, js, "doc1", streams.Uploaded); n != 0 {
		t.Fatalf("%d uploaded events for an original that was never stored", n)
	}
	back()
	if _, err := svc.Accept(ctx, ingest.Upload{Owner: owner, DocumentID: "doc1", Filename: "a.txt", Size: 5, Via: "http", Body: strings.NewReader("hello")}); err != nil {
		t.Fatalf("once the store is back: %v", err)
	}
}

// The ingest role takes documents from the intake stream: one document per
// message id however often it is sent, and a document it cannot take
// fails with its class instead of disappearing.
func TestIntakeFromNATS(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	js := streamstest.JetStream(t)
	done := make(chan error, 1)
	go func() {
		done <- ingest.NewRole(ingest.Config{MaxBytes: 64, Concurrency: 2}, ingest.Deps{
			JS: js, Objects: testenv.S3(t), Registry: prometheus.NewRegistry(), Log: zerolog.New(zerolog.NewTestWriter(t)),
		}).Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("the ingest role stopped with: %v", err)
		}
	})

	// A sender that retries (the same message id) gets one document.
	seq := publishIntake(t, js, owner, "order-1", "order.txt", []byte("purchase order 1"))
	if again := publishIntake(t, js, owner, "order-1", "order.txt", []byte("purchase order 1")); again != seq {
		t.Fatalf("a resent message was stored again: sequence %d, then %d", seq, again)
	}
	doc := ingest.IntakeDocumentID(seq, "order-1")
	testenv.Eventually(t, 10*time.Second, "the document announced", func() bool {
		return streamstest.CountEvents(t, js, doc, streams.Uploaded) == 1
	})
	ev, d := uploadedOf(t, js, doc)
	if d.Via != "nats" || d.Filename != "order.txt" || d.UploadedBy != owner || d.Original.Size != 16 || ev.CorrelationID != "corr-order-1" {
		t.Fatalf("uploaded %+v, correlation %q", d, ev.CorrelationID)
	}

	for _, tc := range []struct {
		msgID string
		body  []byte
		class string
	}{
		{"empty-1", nil, "empty"},
		{"large-1", []byte(strings.Repeat("x", 65)), "too-large"},
	} {
		doc := ingest.IntakeDocumentID(publishIntake(t, js, owner, tc.msgID, "a.txt", tc.body), tc.msgID)
		testenv.Eventually(t, 10*time.Second, tc.msgID+" failed", func() bool {
			return streamstest.CountEvents(t, js, doc, streams.Failed) == 1
		})
		var f streams.FailedData
		if err := streamstest.Events(t, js, doc, streams.Failed)[0].Decode(&f); err != nil {
			t.Fatal(err)
		}
		if f.ReasonClass != tc.class || f.Stage != streams.StageIngest {
			t.Fatalf("%s: failed %+v, want class %s at stage ingest", tc.msgID, f, tc.class)
		}
	}
	// Every message was acknowledged: the work queue is empty.
	testenv.Eventually(t, 10*time.Second, "the intake queue emptied", func() bool {
		s, err := js.Stream(ctx, streams.IntakeStream)
		if err != nil {
			t.Fatal(err)
		}
		i, err := s.Info(ctx)
		return err == nil && i.State.Msgs == 0
	})
}
