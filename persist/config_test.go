package persist_test

import (
	"strings"
	"testing"

	"github.com/aiprism/prism/persist"
	"github.com/aiprism/prism/platform/config"
)

func TestConfigFromEnv(t *testing.T) {
	l := config.New(config.MapEnv(map[string]string{"DATABASE_URL": "postgres://prism@db:5432/prism"}))
	c := persist.ConfigFromEnv(l)
	if err := l.Err(); err != nil {
		t.Fatal(err)
	}
	if c.Concurrency != 8 || c.MaxConns != 10 || !c.Migrate {
		t.Fatalf("defaults: %+v", c)
	}

	l = config.New(config.MapEnv(map[string]string{"PERSIST_CONCURRENCY": "0"}))
	persist.ConfigFromEnv(l)
	err := l.Err()
	if err == nil || !strings.Contains(err.Error(), "DATABASE_URL") || !strings.Contains(err.Error(), "PERSIST_CONCURRENCY") {
		t.Fatalf("err = %v, want DATABASE_URL and PERSIST_CONCURRENCY named", err)
	}
}
