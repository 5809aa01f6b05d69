package extractor

import (
	"context"
	"testing"

	"github.com/aiprism/prism/extractor/corpus"
	"github.com/aiprism/prism/platform/testenv"
	"github.com/aiprism/prism/streams"
	"github.com/aiprism/prism/streams/streamstest"
)

// The extractor keeps the promises every stage makes; its effect is the
// stored text announced by document.extracted. It is built as Run builds
// it: plain text in process, everything else (the input here, a Word
// document) in a sandboxed worker.
func TestStageContract(t *testing.T) {
	docx := corpus.ReadFile(t, "protokoll-lenkungskreis/protokoll-lenkungskreis.libreoffice.docx")
	streamstest.Run(t, func(t *testing.T) *streamstest.Stage {
		js := streamstest.JetStream(t)
		store := testenv.S3(t)
		pub := streams.NewPublisher(js, "/prism/extractor")
		limits := Limits{}.withDefaults().extract()
		x := &PlainTextInProcess{Next: testSandbox(t, Limits{}), Limits: limits, MaxBytes: 1 << 20}
		stage := NewStage(store, pub, Limits{}, x, WithJetStream(js))
		return &streamstest.Stage{
			JS:        js,
			Consumer:  streams.ExtractorConsumer,
			Handler:   stage.Handle,
			Publisher: pub,
			Input: func(t *testing.T, doc string) {
				if err := pub.Publish(context.Background(), upload(t, context.Background(), store, doc, docx)); err != nil {
					t.Fatal(err)
				}
			},
			Effects:  func(t *testing.T, doc string) int { return streamstest.CountEvents(t, js, doc, streams.Extracted) },
			Bad:      func(t *testing.T, doc string) { streamstest.PublishBadPayload(t, js, doc, streams.Uploaded) },
			BadClass: streams.ClassBadEvent,
			Break:    func(t *testing.T) func() { return streamstest.RefuseDocs(t, js) },
		}
	})
}
