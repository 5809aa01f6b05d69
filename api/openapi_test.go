package api_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/aiprism/prism/api"
	"github.com/aiprism/prism/persist/store"
	"github.com/aiprism/prism/platform/obs"
	"github.com/aiprism/prism/platform/testenv"
	"github.com/rs/zerolog"
)

// TestOpenAPIMatchesTheRoutes checks the published description against
// the router both ways: every documented operation answers (not the
// router's 404 or 405), and every registered route is documented.
func TestOpenAPIMatchesTheRoutes(t *testing.T) {
	e := newEnv(t)
	r := e.get("/api/v1/openapi.json", "") // public
	expect(t, r, http.StatusOK)
	var spec struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	r.json(t, &spec)
	if spec.OpenAPI != "3.1.0" {
		t.Fatalf("openapi %q", spec.OpenAPI)
	}

	documented := map[string]bool{}
	for path, ops := range spec.Paths {
		for method, op := range ops {
			if method == "parameters" {
				continue
			}
			documented[strings.ToUpper(method)+" "+path] = true
			var o struct {
				OperationID string                     `json:"operationId"`
				Responses   map[string]json.RawMessage `json:"responses"`
			}
			if err := json.Unmarshal(op, &o); err != nil || o.OperationID == "" || len(o.Responses) == 0 {
				t.Errorf("%s %s: operation without id or responses (%v)", method, path, err)
			}
		}
	}

	param := regexp.MustCompile(`:(\w+)`)
	registered := map[string]bool{}
	for _, route := range e.srv.App().GetRoutes(true) {
		if route.Method == http.MethodHead || route.Method == http.MethodOptions ||
			route.Method == http.MethodConnect || route.Method == http.MethodTrace {
			continue
		}
		registered[route.Method+" "+param.ReplaceAllString(route.Path, "{$1}")] = true
	}
	for op := range registered {
		if !documented[op] {
			t.Errorf("registered but not documented: %s", op)
		}
	}
	var ops []string
	for op := range documented {
		if !registered[op] {
			t.Errorf("documented but not registered: %s", op)
		}
		ops = append(ops, op)
	}
	slices.Sort(ops)

	// Call every documented operation; an unknown id is fine, the router
	// not knowing the route is not.
	for _, op := range ops {
		method, path, _ := strings.Cut(op, " ")
		path = strings.ReplaceAll(path, "{id}", "NOSUCHID")
		resp := e.do(method, path, alice, nil)
		var p struct{ Class string }
		_ = json.Unmarshal(resp.body, &p)
		if resp.StatusCode == http.StatusMethodNotAllowed || p.Class == "no-route" || p.Class == "method-not-allowed" || resp.StatusCode >= 500 {
			t.Errorf("%s: %d %s", op, resp.StatusCode, resp.body)
		}
	}
	// The checks above can tell: an unknown route and a wrong method.
	e.get("/api/v1/nowhere", alice).problem(t, http.StatusNotFound, "no-route")
	e.do(http.MethodPut, "/api/v1/documents", alice, nil).problem(t, http.StatusMethodNotAllowed, "method-not-allowed")
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
	if r := e.get("/metrics", ""); !strings.Contains(string(r.body), "prism_http_requests_total") {
		t.Fatalf("metrics lack the HTTP counter:\n%.500s", r.body)
	}
}

// TestReadyzNamesTheFailingCheck: with NATS gone, /readyz answers 503 and
// says which dependency failed while the others are fine.
func TestReadyzNamesTheFailingCheck(t *testing.T) {
	e := newEnv(t)
	_, nc, js := testenv.NATS(t)
	nc.Close()
	srv := api.New(api.Config{Auth: api.AuthToken}, api.Deps{
		NC: nc, JS: js, Pool: e.pool, Documents: store.New(e.pool), Blobs: e.blobs,
		Registry: obs.NewRegistry(), Log: zerolog.Nop(),
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
		!strings.HasPrefix(ready.Checks["nats"], "fail") || ready.Checks["postgres"] != "ok" || ready.Checks["s3"] != "ok" {
		t.Fatalf("readyz with NATS down: %d %+v", resp.StatusCode, ready)
	}
}
