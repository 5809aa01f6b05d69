package router_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aiprism/prism/analyzer/router"
)

func TestDefaultChainIsTheOriginalSevenAndValid(t *testing.T) {
	c := router.DefaultChain()
	if len(c) != 7 || c[0].ID != "us.anthropic.claude-sonnet-4-5-20250929-v1:0" {
		t.Fatalf("default chain: %d models, first %s", len(c), c[0].ID)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

// A bad chain file stops the analyzer with every problem named by model.
func TestBadChainIsRefusedWithClearMessages(t *testing.T) {
	path := filepath.Join(t.TempDir(), "chain.json")
	bad := `[{"id":"a","requests_per_minute":0,"tokens_per_minute":100,"context_tokens":1000,"max_output_tokens":10},
	         {"id":"a","requests_per_minute":10,"tokens_per_minute":100,"context_tokens":1000,"max_output_tokens":10,"cooldown_seconds":-1}]`
	if err := os.WriteFile(path, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := router.LoadChain(path)
	if err == nil {
		t.Fatal("a bad chain was accepted")
	}
	for _, want := range []string{"model 1 (a): requests_per_minute must be positive", "model 2 (a): listed twice", "model 2 (a): cooldown"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if err := os.WriteFile(path, []byte(`[{"id":"a","rpm":5}]`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := router.LoadChain(path); err == nil || !strings.Contains(err.Error(), "unknown field") {
		t.Errorf("a misspelt field must be refused, got %v", err)
	}
	if err := (router.Chain{}).Validate(); err == nil {
		t.Error("an empty chain was accepted")
	}
}
