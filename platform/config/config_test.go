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

// TestLoaderNeverRepeatsASecret: a bad value of a variable that holds a
// credential is named but not repeated, whatever reader read it; a URL in
// any other variable is repeated without its userinfo.
func TestLoaderNeverRepeatsASecret(t *testing.T) {
	const secret = "hunter2-s3cr3t"
	env := map[string]string{
		"NOTIFIER_WEBHOOK_SECRET": secret, "API_METRICS_TOKEN": secret, "PRISM_ADMIN_PASSWORD": secret,
		"S3_SECRET_ACCESS_KEY": secret, "DATABASE_URL": secret, "REPLICA_DSN": secret,
		"NATS_URL":     "nats://prism:" + secret + "@nats.internal:4222",
		"WEBHOOK_URL":  "ftp://" + secret + "@hooks.example",
		"BEDROCK_HOST": "https://u:" + secret + "@bedrock.example/?token=" + secret,
	}
	l := New(MapEnv(env))
	l.Int("NOTIFIER_WEBHOOK_SECRET", 0, 0, 1)
	l.Duration("API_METRICS_TOKEN", time.Second, 0, time.Minute)
	l.Bool("PRISM_ADMIN_PASSWORD", false)
	l.Float("S3_SECRET_ACCESS_KEY", 0, 0, 1)
	l.URL("DATABASE_URL", "", "postgres")
	l.OneOf("REPLICA_DSN", "", "a", "b")
	l.URL("NATS_URL", "", "tls")
	l.URL("WEBHOOK_URL", "", "https")
	l.Int64("BEDROCK_HOST", 0, 0, 1)
	err := l.Err()
	if err == nil {
		t.Fatal("expected errors")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 9 {
		t.Fatalf("want 9 problems, got %d: %v", len(lines), err)
	}
	if strings.Contains(err.Error(), secret) {
		t.Fatalf("the errors repeat the secret:\n%v", err)
	}
	// What is not secret is still shown, so a typo can be seen.
	for _, want := range []string{`"nats://prism:xxxxx@nats.internal:4222"`, `"ftp://xxxxx@hooks.example"`, "bedrock.example"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the errors do not show %s:\n%v", want, err)
		}
	}
}

func TestRedact(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"postgres://prism:pw@db:5432/prism?sslmode=require", "postgres://prism:xxxxx@db:5432/prism?sslmode=require"},
		{"nats://s3cr3ttoken@nats:4222", "nats://xxxxx@nats:4222"},
		{"nats://u:p@ss@host:4222,nats://a:b@other", "nats://u:xxxxx@host:4222,nats://a:xxxxx@other"},
		{`{"level":"error","error":"dial \"postgres://u:pw@h/db\": refused"}`, `{"level":"error","error":"dial \"postgres://u:xxxxx@h/db\": refused"}`},
		{"host=db user=prism password='a b c' dbname=prism", "host=db user=prism password=xxxxx dbname=prism"},
		{"host=db password=plain sslpassword=x", "host=db password=xxxxx sslpassword=xxxxx"},
		{"https://hooks.example/in?token=abc&x=1", "https://hooks.example/in?token=xxxxx&x=1"},
		{"S3_SECRET_ACCESS_KEY=abc NATS_TOKEN=def", "S3_SECRET_ACCESS_KEY=xxxxx NATS_TOKEN=xxxxx"},
		{"http://127.0.0.1:9000/bucket/key", "http://127.0.0.1:9000/bucket/key"},
		{"mail bob@example.com about a=b", "mail bob@example.com about a=b"},
		{"https://example.com/path@at", "https://example.com/path@at"},
	} {
		if got := Redact(c.in); got != c.want {
			t.Errorf("Redact(%q)\n = %q\nwant %q", c.in, got, c.want)
		}
	}
}
