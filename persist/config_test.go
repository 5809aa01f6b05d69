package persist_test

import (
	"strings"
	"testing"

	"github.com/aiprism/prism/persist"
	"github.com/aiprism/prism/platform/config"
)

func TestConfigFromEnv(t *testing.T) {
	l := config.New(config.MapEnv(map[string]string{}))
	c := persist.ConfigFromEnv(l)
	if err := l.Err(); err != nil {
		t.Fatal(err)
	}
	if c.Concurrency != 8 {
		t.Fatalf("defaults: %+v", c)
	}

	l = config.New(config.MapEnv(map[string]string{"PERSIST_CONCURRENCY": "0"}))
	persist.ConfigFromEnv(l)
	if err := l.Err(); err == nil || !strings.Contains(err.Error(), "PERSIST_CONCURRENCY") {
		t.Fatalf("err = %v, want PERSIST_CONCURRENCY named", err)
	}
}
