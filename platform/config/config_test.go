package config

import (
	"strings"
	"testing"
	"time"
)

func TestLoaderCollectsEveryProblemNamingTheVariable(t *testing.T) {
	l := New(MapEnv(map[string]string{
		"A_INT": "12x", "A_DUR": "5", "A_BOOL": "maybe", "A_URL": "ftp://x", "A_SIZE": "2MiB",
	}))
	l.Int("A_INT", 1, 0, 10)
	l.Duration("A_DUR", time.Second, 0, time.Minute)
	l.Bool("A_BOOL", false)
	l.URL("A_URL", "", "nats")
	l.Required("A_MISSING", "a bucket name")
	if got := l.Int64("A_SIZE", 0, 0, 1<<40); got != 2<<20 {
		t.Fatalf("size = %d", got)
	}
	err := l.Err()
	if err == nil {
		t.Fatal("expected errors")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 5 {
		t.Fatalf("want 5 problems, got %d: %v", len(lines), err)
	}
	for i, name := range []string{"A_INT", "A_DUR", "A_BOOL", "A_URL", "A_MISSING"} {
		if !strings.HasPrefix(lines[i], name+": ") {
			t.Errorf("line %d = %q, want it to name %s", i, lines[i], name)
		}
	}
}

func TestDefaultsWhenUnset(t *testing.T) {
	l := New(MapEnv(nil))
	if l.String("X", "d") != "d" || l.Int("X", 3, 0, 5) != 3 || !l.Bool("X", true) {
		t.Fatal("defaults not applied")
	}
	if l.Err() != nil {
		t.Fatal(l.Err())
	}
}
