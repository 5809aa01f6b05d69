package system_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aiprism/prism/accounts"
	"github.com/aiprism/prism/cmd/prism/internal/system"
	"github.com/aiprism/prism/platform/config"
	"github.com/aiprism/prism/platform/obs"
	"github.com/aiprism/prism/platform/testenv"
	"github.com/aiprism/prism/streams"
	"github.com/jackc/pgx/v5"
	"github.com/rs/zerolog"
)

// closedPort is a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// TestConnectionErrorsHideCredentials: NATS and PostgreSQL out of reach,
// or a connection string with a typo: the errors name what failed, never
// the credentials in NATS_URL or DATABASE_URL.
func TestConnectionErrorsHideCredentials(t *testing.T) {
	const secret = "s3cr3t-in-the-url"
	addr := closedPort(t)
	for _, c := range []struct {
		name  string
		needs system.Needs
		env   map[string]string
		want  string
	}{
		{"NATS out of reach", system.Needs{NATS: true},
			map[string]string{"NATS_URL": "nats://prism:" + secret + "@" + addr}, "connect to NATS at nats://prism:xxxxx@" + addr},
		{"NATS token out of reach", system.Needs{NATS: true},
			map[string]string{"NATS_URL": "nats://" + secret + "@" + addr}, "connect to NATS at nats://xxxxx@" + addr},
		{"NATS user out of reach", system.Needs{NATS: true},
			map[string]string{"NATS_URL": "nats://" + addr, "NATS_USER": "extractor", "NATS_PASSWORD": secret}, `connect to NATS at nats://` + addr + ` as "extractor"`},
		{"PostgreSQL out of reach", system.Needs{Postgres: true},
			map[string]string{"DATABASE_URL": "postgres://prism:" + secret + "@" + addr + "/prism?connect_timeout=2"}, "PostgreSQL"},
		{"DATABASE_URL unparsable", system.Needs{Postgres: true},
			map[string]string{"DATABASE_URL": "postgres://prism:" + secret + "@" + addr + "/prism?sslmode=bogus"}, "DATABASE_URL"},
		{"DATABASE_URL keyword form", system.Needs{Postgres: true},
			map[string]string{"DATABASE_URL": "host=127.0.0.1 port=" + strings.Split(addr, ":")[1] + " user=prism password=" + secret + " connect_timeout=2"}, "PostgreSQL"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			in, err := system.Open(ctx, config.MapEnv(c.env), c.needs, obs.NewRegistry(), zerolog.Nop(), "test")
			if err == nil {
				in.Close()
				t.Fatal("opened a connection to nothing")
			}
			if strings.Contains(err.Error(), secret) {
				t.Fatalf("the error holds the credential: %v", err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("the error %q does not name %q", err, c.want)
			}
		})
	}
}

// syncBuffer collects log lines written from every role's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// bearer authenticates every request with an API token.
type bearer struct {
	token string
	next  http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.next.RoundTrip(r)
}

// TestNoSecretLeaks runs a whole scenario on prism dev with token auth,
// every role logging at trace level, and known secrets: a user's password
// (and a wrong one tried), an API token (and a wrong one tried), a
// PostgreSQL password in DATABASE_URL, the S3 and Bedrock keys prism dev
// made up. Then it reads every log line, every message of every JetStream
// stream (the event log, KV buckets), the metrics and every table, and
// finds none of the secrets there.
func TestNoSecretLeaks(t *testing.T) {
	const (
		email         = "analyst@example.com"
		password      = "known-password-Ok7#zebra"
		wrongPassword = "wrong-password-Xq2#lemur"
		pgPassword    = "pg-password-Vb9#heron"
	)
	dsn, err := url.Parse(testenv.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	dsn.User = url.UserPassword(dsn.User.Username(), pgPassword) // the test cluster trusts local users: any password connects
	var logs syncBuffer
	dev := startDevLogging(t, zerolog.New(&logs).Level(zerolog.TraceLevel), t.TempDir(), dsn.String(), map[string]string{"API_AUTH": "token"})
	ctx := context.Background()

	users := accounts.NewUsers(dev.Infra.Pool, accounts.DefaultParams())
	user, err := users.Add(ctx, accounts.NewUser{Email: email, DisplayName: "Risk Analyst", Role: accounts.RoleUser, Password: password})
	if err != nil {
		t.Fatal(err)
	}
	token, _, err := accounts.NewTokens(dev.Infra.Pool).Create(ctx, accounts.NewToken{UserID: user.ID, Name: "ci",
		Scopes: []accounts.Scope{accounts.ScopeRead, accounts.ScopeWrite}})
	if err != nil {
		t.Fatal(err)
	}
	wrongToken := token[:len(token)-8] + "00000000"
	secrets := map[string]string{
		"password": password, "wrong password": wrongPassword, "API token": token, "wrong API token": wrongToken,
		"PostgreSQL password": pgPassword, "S3 secret key": dev.RoleEnv["S3_SECRET_ACCESS_KEY"],
		"Bedrock secret key": dev.RoleEnv["AWS_SECRET_ACCESS_KEY"],
	}

	// The scenario: a document all the way through, read back and
	// exported, then failed sign-ins and a wrong token.
	client := &http.Client{Transport: bearer{token, http.DefaultTransport}}
	id := uploadWith(t, client, dev.APIURL, "contract.txt", contract)
	if events := followSSEWith(t, client, dev.APIURL, id, ""); len(events) == 0 || events[len(events)-1].event != string(streams.Analyzed) {
		t.Fatalf("events of the upload: %+v", events)
	}
	for _, path := range []string{"/api/v1/documents/" + id, "/api/v1/documents/" + id + "/text", "/api/v1/assessments/export?format=csv"} {
		if resp := send(t, client, http.MethodGet, dev.APIURL+path, ""); resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d", path, resp.StatusCode)
		}
	}
	if _, err := users.Authenticate(ctx, email, wrongPassword); !errors.Is(err, accounts.ErrInvalidCredentials) {
		t.Fatalf("sign-in with a wrong password: %v", err)
	}
	// Through the API too, however it answers (the session routes may
	// not exist): the password travels in the body all the same, and a
	// session cookie it sets is a secret as well.
	for _, pw := range []string{wrongPassword, password} {
		resp := send(t, http.DefaultClient, http.MethodPost, dev.APIURL+"/api/v1/session", `{"email":"`+email+`","password":"`+pw+`"}`)
		t.Logf("POST /api/v1/session: %d", resp.StatusCode)
		for _, c := range resp.Cookies() {
			if len(c.Value) >= 16 {
				secrets["cookie "+c.Name] = c.Value
			}
		}
	}
	if resp := send(t, &http.Client{Transport: bearer{wrongToken, http.DefaultTransport}}, http.MethodGet, dev.APIURL+"/api/v1/documents", ""); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a wrong token: %d", resp.StatusCode)
	}
	places := map[string]string{"the metrics": metricsText(dev)}
	for name, text := range streamsText(t, dev) {
		places["stream "+name] = text
	}
	dev.stop() // every role has logged what it will
	places["the log"], places["the tables"] = logs.String(), tablesText(t, dsn.String())
	// The scan sees the scenario: the document and the user are there.
	for _, want := range []string{id, user.ID} {
		for _, where := range []string{"the log", "stream DOCS", "the tables"} {
			if !strings.Contains(places[where], want) {
				t.Fatalf("%s does not mention %s: the scan would miss leaks", where, want)
			}
		}
	}
	for where, text := range places {
		for what, secret := range secrets {
			if secret == "" {
				t.Fatalf("no %s to look for", what)
			}
			for _, form := range encodings(secret) {
				if i := strings.Index(text, form); i >= 0 {
					t.Errorf("%s holds the %s: ...%s...", where, what, text[max(0, i-200):min(len(text), i+len(form)+50)])
				}
			}
		}
	}
}

// encodings are the forms a secret takes when written out as it is, in a
// URL (a password in a DSN: '#' becomes %23) or in JSON.
func encodings(secret string) []string {
	quoted, _ := json.Marshal(secret)
	userinfo := strings.TrimSuffix(strings.TrimPrefix((&url.URL{User: url.UserPassword("u", secret)}).String(), "//u:"), "@")
	forms := []string{secret, url.QueryEscape(secret), url.PathEscape(secret), userinfo, string(quoted[1 : len(quoted)-1])}
	slices.Sort(forms)
	return slices.Compact(forms)
}

// send makes a request and returns the answer, its body read.
func send(t *testing.T, client *http.Client, method, url, jsonBody string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(jsonBody))
	if err != nil {
		t.Fatal(err)
	}
	if jsonBody != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// metricsText is the process's metrics as /metrics serves them.
func metricsText(dev *devSystem) string {
	rec := httptest.NewRecorder()
	obs.MetricsHandler(dev.Infra.Registry).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	return rec.Body.String()
}

// streamsText is every message (headers and data) of every JetStream
// stream, by stream.
func streamsText(t *testing.T, dev *devSystem) map[string]string {
	t.Helper()
	ctx := context.Background()
	js := dev.Infra.JS
	out := map[string]string{}
	names := js.StreamNames(ctx)
	for name := range names.Name() {
		stream, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		info, err := stream.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
			msg, err := stream.GetMsg(ctx, seq)
			if err != nil {
				continue // deleted
			}
			for k, v := range msg.Header {
				b.WriteString(k + ": " + strings.Join(v, ",") + "\n")
			}
			b.WriteString(msg.Subject + " " + string(msg.Data) + "\n")
		}
		out[name] = b.String()
	}
	if err := names.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// tablesText is every row of every table in the public schema, as JSON.
func tablesText(t *testing.T, dsn string) string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT quote_ident(table_name) FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'`)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, table := range tables {
		var text string
		if err := conn.QueryRow(ctx, `SELECT coalesce(string_agg(row_to_json(t)::text, E'\n'), '') FROM `+table+` t`).Scan(&text); err != nil {
			t.Fatal(err)
		}
		b.WriteString(table + "\n" + text + "\n")
	}
	return b.String()
}
