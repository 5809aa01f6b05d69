package system_test

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aiprism/prism/analyzer/router"
	"github.com/aiprism/prism/platform/testenv"
	"github.com/aiprism/prism/streams"
	"github.com/rs/zerolog"
)

// The analyzer's only model is one Bedrock does not know: Bedrock answers
// in its own words (ResourceNotFoundException, "The provided model
// identifier is invalid."). The document fails as model-rejected; neither
// the document's view (failure, timeline) nor its event stream shows
// Bedrock's words, which are in the log with the document's id.
func TestBedrockWordsReachTheLogNotTheDocumentView(t *testing.T) {
	unknown := router.DefaultChain()[0]
	unknown.ID = "anthropic.claude-unheard-of-v9:0"
	chain, err := json.Marshal(router.Chain{unknown})
	if err != nil {
		t.Fatal(err)
	}
	models := filepath.Join(t.TempDir(), "models.json")
	if err := os.WriteFile(models, chain, 0o600); err != nil {
		t.Fatal(err)
	}
	logs := &testenv.Logs{}
	dev := startDevLogging(t, zerolog.New(io.MultiWriter(logs, zerolog.NewTestWriter(t))).Level(zerolog.WarnLevel), t.TempDir(), testenv.Postgres(t), map[string]string{"ANALYZER_MODELS_FILE": models})
	id := upload(t, dev.APIURL, "contract.txt", contract)

	var view []byte
	deadline := time.Now().Add(30 * time.Second)
	for {
		var d struct {
			Status  string                  `json:"status"`
			Failure *struct{ Class string } `json:"failure"`
		}
		resp, err := http.Get(dev.APIURL + "/api/v1/documents/" + id)
		if err != nil {
			t.Fatal(err)
		}
		view, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if json.Unmarshal(view, &d) == nil && d.Status == streams.StatusFailed && d.Failure != nil {
			if d.Failure.Class != streams.ClassModelRejected {
				t.Fatalf("failed as %s, want %s: %s", d.Failure.Class, streams.ClassModelRejected, view)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("document %s did not fail: %s", id, view)
		}
		time.Sleep(20 * time.Millisecond)
	}
	var stream strings.Builder
	for _, e := range followSSE(t, dev.APIURL, id, "") {
		raw, _ := json.Marshal(e.data)
		stream.Write(raw)
	}
	const bedrocks = "The provided model identifier is invalid"
	for what, shown := range map[string]string{"document view": string(view), "event stream": stream.String()} {
		if strings.Contains(shown, bedrocks) || strings.Contains(shown, "ResourceNotFound") {
			t.Errorf("the %s shows Bedrock's words: %s", what, shown)
		}
	}
	if !strings.Contains(stream.String(), streams.ClassReason(streams.ClassModelRejected)) {
		t.Errorf("the event stream does not tell our reason: %s", stream.String())
	}
	if !logs.Has(bedrocks, `"document_id":"`+id+`"`) {
		t.Fatalf("Bedrock's words are not in the log with the document's id:\n%s", logs.String())
	}
}
