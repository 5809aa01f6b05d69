package api_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aiprism/prism/api"
	"github.com/aiprism/prism/api/web"
	"github.com/aiprism/prism/persist/store"
	"github.com/aiprism/prism/platform/obs"
	"github.com/aiprism/prism/platform/testenv"
	"github.com/rs/zerolog"
)

// TestOpenAPIMatchesTheRoutes checks the published description against
// the router both ways (every documented operation is registered and
// every registered route documented), then calls every operation, its
// successes and its refusals, through env's client, which validates each
// request and answer against the document (see contract).
func TestOpenAPIMatchesTheRoutes(t *testing.T) {
	e := newEnv(t)
	documented := map[string]bool{}
	for _, op := range e.contract.operations() {
		documented[op] = true
	}
	param := regexp.MustCompile(`:(\w+)`)
	registered := map[string]bool{}
	for _, route := range e.srv.App().GetRoutes(true) {
		if route.Method == http.MethodHead || route.Method == http.MethodOptions ||
			route.Method == http.MethodConnect || route.Method == http.MethodTrace ||
			strings.HasPrefix(route.Path, web.AssetsPath) { // the web application's files (TestWebApplicationAssets)
			continue
		}
		registered[route.Method+" "+param.ReplaceAllString(route.Path, "{$1}")] = true
	}
	for op := range registered {
		if !documented[op] {
			t.Errorf("registered but not documented: %s", op)
		}
	}
	for op := range documented {
		if !registered[op] {
			t.Errorf("documented but not registered: %s", op)
		}
	}

	// What succeeds, in the order a client would go.
	r := e.get("/api/v1/openapi.json", "") // public
	expect(t, r, http.StatusOK)
	var spec struct{ OpenAPI string }
	if r.json(t, &spec); spec.OpenAPI != "3.1.0" {
		t.Fatalf("openapi %q", spec.OpenAPI)
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		expect(t, e.get(path, ""), http.StatusOK)
	}
	expect(t, e.get("/metrics", "", "Authorization", "Bearer "+metricsToken), http.StatusOK)
	d := e.analyzed(alice, "tour.txt", "unlimited liability for everything", 70, "high")
	doc := "/api/v1/documents/" + d.id
	for _, path := range []string{"/api/v1/documents?risk_level=high&sort=-score&limit=5", doc, doc + "/assessment",
		doc + "/history?limit=2", doc + "/text", doc + "/text?offset=2&limit=5", doc + "/original", "/api/v1/stats"} {
		expect(t, e.get(path, alice), http.StatusOK)
	}
	expect(t, e.get(doc+"/text", alice, "Range", "bytes=0-3"), http.StatusPartialContent)
	expect(t, e.get(doc+"/original", alice, "Range", "bytes=4-"), http.StatusPartialContent)
	ids, kinds, err := e.sseEvents(alice, d.id, nil)
	if err != nil || len(kinds) != 3 {
		t.Fatalf("events: %v %v", kinds, err)
	}
	expect(t, e.get(doc+"/events", alice, "Last-Event-ID", strconv.FormatUint(ids[2], 10)), http.StatusNoContent)
	for _, format := range []string{"csv", "json", "ndjson"} {
		expect(t, e.get("/api/v1/assessments/export?format="+format, alice), http.StatusOK)
		r := e.do(http.MethodPost, "/api/v1/assessments/export", alice, strings.NewReader(`{"format":"`+format+`","min_score":50}`),
			"Content-Type", "application/json")
		expect(t, r, http.StatusCreated)
		var stored struct{ Links struct{ Download string } }
		r.json(t, &stored)
		expect(t, e.get(stored.Links.Download, alice), http.StatusOK)
		expect(t, e.get(stored.Links.Download, alice, "Range", "bytes=0-9"), http.StatusPartialContent)
	}
	// A chat about the document, followed from its opening to its
	// deletion, which ends the stream: the whole stream is checked.
	turn := e.startChat(alice, `{"document_id":"`+d.id+`","title":"tour"}`, "What is the biggest risk?")
	chat, chatEvents, q := "/api/v1/chat/sessions/"+turn.s.ID, turn.events, turn.q
	turn.a.write("Unlimited liability [1].")
	chatEvents.expect("delta")
	turn.a.finish()
	chatEvents.expect("answer")
	expect(t, e.get(chat, alice), http.StatusOK)
	expect(t, e.get("/api/v1/chat/sessions?limit=5", alice), http.StatusOK)
	expect(t, e.do(http.MethodPost, chat+"/messages/"+q.AnswerID+"/regenerate", alice, nil), http.StatusAccepted)
	chatEvents.expect("question")
	expect(t, e.do(http.MethodDelete, chat, alice, nil), http.StatusNoContent)
	chatEvents.expect("deleted")
	chatEvents.ends(5 * time.Second)
	// The feed of all the caller's documents never ends: its status and
	// headers are checked, and its first frames.
	f := e.openFeed(t, alice, "?types=analyzed,failed")
	if f.status != http.StatusOK || f.next().retry == "" || f.next().id == "" {
		t.Fatalf("events feed: %d", f.status)
	}
	f.close()
	expect(t, e.get("/api/v1/me/preferences", alice), http.StatusOK)
	expect(t, e.do(http.MethodPut, "/api/v1/me/preferences", alice, strings.NewReader(`{"theme":"dark"}`), "Content-Type", "application/json"), http.StatusOK)
	expect(t, e.do(http.MethodPost, doc+"/reanalyze", alice, nil), http.StatusAccepted)
	expect(t, e.do(http.MethodDelete, doc, alice, nil), http.StatusNoContent)
	// Sessions and tokens: sign in, who am I, make, list and revoke a
	// token, sign out.
	s := e.mustSignIn("alice@example.com", e.withPassword("alice@example.com"))
	expect(t, e.get("/api/v1/me", "", "Cookie", s.cookie), http.StatusOK)
	expect(t, e.get("/api/v1/me", alice), http.StatusOK)
	r = e.do(http.MethodPost, "/api/v1/tokens", "", strings.NewReader(`{"name":"tour","scopes":["read"],"expires_at":"2999-01-01T00:00:00Z"}`),
		e.as(s, "Content-Type", "application/json")...)
	expect(t, r, http.StatusCreated)
	var token struct{ ID string }
	r.json(t, &token)
	expect(t, e.get("/api/v1/tokens", "", "Cookie", s.cookie), http.StatusOK)
	expect(t, e.do(http.MethodDelete, "/api/v1/tokens/"+token.ID, "", nil, e.as(s)...), http.StatusNoContent)
	expect(t, e.do(http.MethodDelete, "/api/v1/session", "", nil, e.as(s)...), http.StatusNoContent)
	// Sign-up is closed unless configured (TestSignUpOnlyWhenOpen opens it).
	e.do(http.MethodPost, "/api/v1/users", "", strings.NewReader(`{"email":"carol@example.com","password":"carol's long passphrase"}`),
		"Content-Type", "application/json").problem(t, http.StatusForbidden, "signup-closed")

	// What is refused: an unknown id (the router must know the route all
	// the same), no token.
	for _, op := range e.contract.operations() {
		method, path, _ := strings.Cut(op, " ")
		path = strings.NewReplacer("{id}", "NOSUCHID", "{answer_id}", "NOSUCHID").Replace(path)
		if op == "GET /api/v1/events" {
			path += "?types=nosuchtype" // refused at once: accepted, the feed would never end
		}
		resp := e.do(method, path, alice, nil)
		var p struct{ Class string }
		_ = json.Unmarshal(resp.body, &p)
		if resp.StatusCode == http.StatusMethodNotAllowed || p.Class == "no-route" || p.Class == "method-not-allowed" || resp.StatusCode >= 500 {
			t.Errorf("%s: %d %s", op, resp.StatusCode, resp.body)
		}
		if strings.HasPrefix(path, "/api/v1/") && path != "/api/v1/openapi.json" && op != "POST /api/v1/session" && op != "POST /api/v1/users" {
			e.do(method, path, "", nil).problem(t, http.StatusUnauthorized, "unauthenticated")
		}
	}
	// The checks above can tell: an unknown route and a wrong method.
	e.get("/api/v1/nowhere", alice).problem(t, http.StatusNotFound, "no-route")
	e.do(http.MethodPut, "/api/v1/documents", alice, nil).problem(t, http.StatusMethodNotAllowed, "method-not-allowed")

	exercised := e.contract.exercised()
	for _, op := range e.contract.operations() {
		if len(exercised[op]) == 0 {
			t.Errorf("%s: never called", op)
		}
		t.Logf("%s answered %v", op, exercised[op])
	}
}

func TestHealth(t *testing.T) {
	e := newEnv(t)
	expect(t, e.get("/healthz", ""), http.StatusOK)
	var ready struct {
		Status string
		Checks map[string]string
	}
	r := e.get("/readyz", "")
	expect(t, r, http.StatusOK)
	r.json(t, &ready)
	if ready.Checks["nats"] != "ok" || ready.Checks["postgres"] != "ok" || ready.Checks["s3"] != "ok" {
		t.Fatalf("readyz %+v", ready)
	}
	if r := e.get("/metrics", "", "Authorization", "Bearer "+metricsToken); !strings.Contains(string(r.body), "prism_http_requests_total") {
		t.Fatalf("metrics lack the HTTP counter:\n%.500s", r.body)
	}
}

// TestReadyzNamesTheFailingCheck: with NATS gone, /readyz answers 503 and
// says which dependency failed while the others are fine; why it failed
// is in the log, not in the public answer.
func TestReadyzNamesTheFailingCheck(t *testing.T) {
	e := newEnv(t)
	_, nc, js := testenv.NATS(t)
	nc.Close()
	var logged bytes.Buffer
	srv := api.New(api.Config{Auth: api.AuthToken}, api.Deps{
		NC: nc, JS: js, Pool: e.pool, Documents: store.New(e.pool), Blobs: e.blobs,
		Registry: obs.NewRegistry(), Log: zerolog.New(&logged),
	})
	resp, err := srv.App().Test(httptest.NewRequest(http.MethodGet, "/readyz", nil), 10_000)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ready struct {
		Status string
		Checks map[string]string
	}
	if err := json.NewDecoder(resp.Body).Decode(&ready); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusServiceUnavailable || ready.Status != "not ready" ||
		ready.Checks["nats"] != "fail" || ready.Checks["postgres"] != "ok" || ready.Checks["s3"] != "ok" {
		t.Fatalf("readyz with NATS down: %d %+v", resp.StatusCode, ready)
	}
	if !strings.Contains(logged.String(), `"check":"nats"`) || !strings.Contains(logged.String(), "not connected") {
		t.Fatalf("the log does not say why the nats check failed:\n%s", logged.String())
	}
}
