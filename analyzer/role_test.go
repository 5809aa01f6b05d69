package analyzer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aiprism/prism/platform/config"
)

// A bad model chain stops the analyzer's configuration with a message that
// names the variable and the model's problem.
func TestBadModelsFileStopsTheAnalyzer(t *testing.T) {
	path := filepath.Join(t.TempDir(), "models.json")
	if err := os.WriteFile(path, []byte(`[{"id":"m1","requests_per_minute":0,"tokens_per_minute":1000,"context_tokens":1000,"max_output_tokens":100}]`), 0o600); err != nil {
		t.Fatal(err)
	}
	l := config.New(config.MapEnv(map[string]string{"ANALYZER_MODELS_FILE": path}))
	ConfigFromEnv(l)
	err := l.Err()
	if err == nil || !strings.Contains(err.Error(), "ANALYZER_MODELS_FILE") || !strings.Contains(err.Error(), "requests_per_minute") {
		t.Fatalf("err = %v, want ANALYZER_MODELS_FILE and the bad field named", err)
	}
}
