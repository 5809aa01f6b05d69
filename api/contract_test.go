package api_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// contract holds the API to its published description, openapi.json:
// every exchange of a test's HTTP client is validated with kin-openapi's
// openapi3filter, so a handler that drifts from the document fails the
// test that called it, and the document cannot describe what the API
// does not do.
type contract struct {
	doc     *openapi3.T
	router  routers.Router
	problem *openapi3.Schema

	mu   sync.Mutex
	seen map[string]map[int]bool // operation ("GET /api/v1/documents/{id}") -> statuses answered
}

func loadContract(t testing.TB) *contract {
	t.Helper()
	ctx := context.Background()
	doc, err := openapi3.NewLoader().LoadFromFile("openapi.json")
	if err != nil {
		t.Fatalf("load openapi.json: %v", err)
	}
	if err := doc.Validate(ctx); err != nil {
		t.Fatalf("openapi.json is not a valid OpenAPI document: %v", err)
	}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatalf("route openapi.json: %v", err)
	}
	problem := doc.Components.Schemas["Problem"]
	if problem == nil || problem.Value == nil {
		t.Fatal("openapi.json has no Problem schema")
	}
	return &contract{doc: doc, router: router, problem: problem.Value, seen: map[string]map[int]bool{}}
}

// operations lists the document's operations as "METHOD /path".
func (c *contract) operations() []string {
	var ops []string
	for path, item := range c.doc.Paths.Map() {
		for method := range item.Operations() {
			ops = append(ops, method+" "+path)
		}
	}
	slices.Sort(ops)
	return ops
}

// exercised lists the operations that answered so far, with the statuses
// they answered.
func (c *contract) exercised() map[string][]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string][]int{}
	for op, statuses := range c.seen {
		for s := range statuses {
			out[op] = append(out[op], s)
		}
		slices.Sort(out[op])
	}
	return out
}

func (c *contract) record(op string, status int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seen[op] == nil {
		c.seen[op] = map[int]bool{}
	}
	c.seen[op][status] = true
}

// exchange is a request and its answer as the client saw them.
type exchange struct {
	req      *http.Request
	reqBody  []byte
	status   int
	header   http.Header
	body     []byte
	complete bool // the client read the body to its end
}

// check validates ex against the document. A request the document
// refuses must be refused by the server (4xx); every answer, refusals
// included, must be one the operation documents, status, headers and body.
func (c *contract) check(ex exchange) error {
	ctx := context.Background()
	req := ex.req.Clone(ctx)
	req.Body = io.NopCloser(bytes.NewReader(ex.reqBody))
	route, params, err := c.router.FindRoute(req)
	if err != nil {
		// Not in the document: the server must not serve it either.
		if ex.status != http.StatusNotFound && ex.status != http.StatusMethodNotAllowed {
			return fmt.Errorf("not in the document (%v), answered %d", err, ex.status)
		}
		return c.checkProblem(ex)
	}
	op := route.Method + " " + route.Path
	c.record(op, ex.status)
	opts := &openapi3filter.Options{AuthenticationFunc: bearerPresent, IncludeResponseStatus: true}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: opts}
	if err := openapi3filter.ValidateRequest(ctx, in); err != nil && (ex.status < 400 || ex.status >= 500) {
		return fmt.Errorf("%s: the document refuses the request (%v), the server answered %d", op, err, ex.status)
	}
	respOpts := *opts
	// A body the client stopped reading cannot be judged; its status and
	// headers still are.
	respOpts.ExcludeResponseBody = !ex.complete
	if err := openapi3filter.ValidateResponse(ctx, &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in, Status: ex.status, Header: ex.header,
		Body: io.NopCloser(bytes.NewReader(ex.body)), Options: &respOpts,
	}); err != nil {
		return fmt.Errorf("%s: %d answer: %w", op, ex.status, err)
	}
	return nil
}

// checkProblem validates an answer outside the document's operations (no
// such route or method) against its Problem schema.
func (c *contract) checkProblem(ex exchange) error {
	if mt, _, _ := mime.ParseMediaType(ex.header.Get("Content-Type")); mt != "application/problem+json" {
		return fmt.Errorf("%d answer of type %q, want application/problem+json", ex.status, mt)
	}
	var v any
	if err := json.Unmarshal(ex.body, &v); err != nil {
		return fmt.Errorf("%d answer: %w", ex.status, err)
	}
	if err := c.problem.VisitJSON(v, openapi3.EnableJSONSchema2020()); err != nil {
		return fmt.Errorf("%d answer is not a Problem: %w", ex.status, err)
	}
	return nil
}

// bearerPresent passes a request that carries the credential of the
// scheme, a bearer token or a session cookie: whether it is valid is the
// server's to say (401, which the document lists).
func bearerPresent(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	s := in.SecurityScheme
	req := in.RequestValidationInput.Request
	switch {
	case s.Type == "http" && s.Scheme == "bearer":
		if tok, ok := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer "); !ok || tok == "" {
			return in.NewError(errors.New("no bearer token"))
		}
	case s.Type == "apiKey" && s.In == "cookie":
		// Named with the __Host- prefix when the cookie is Secure.
		if _, err := req.Cookie(s.Name); err != nil {
			if _, err := req.Cookie("__Host-" + s.Name); err != nil {
				return in.NewError(errors.New("no session cookie"))
			}
		}
	default:
		return in.NewError(fmt.Errorf("security scheme %s of type %s %s is not known to the test", in.SecuritySchemeName, s.Type, s.Scheme))
	}
	return nil
}

// checkedTransport validates each exchange against the contract once the
// client closes the response body, reporting a mismatch as a test error.
type checkedTransport struct {
	t    testing.TB
	c    *contract
	next http.RoundTripper
}

func (ct *checkedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		var err error
		body, err = io.ReadAll(req.Body)
		_ = req.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("read the request body: %w", err)
		}
		req = req.Clone(req.Context()) // a RoundTripper must not change the caller's request
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	resp, err := ct.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	ex := exchange{req: req, reqBody: body, status: resp.StatusCode, header: resp.Header}
	resp.Body = &checkedBody{ReadCloser: resp.Body, done: func(got []byte, complete bool) {
		ex.body, ex.complete = got, complete
		if err := ct.c.check(ex); err != nil {
			ct.t.Errorf("%s %s: does not match openapi.json: %v", req.Method, req.URL.RequestURI(), err)
		}
	}}
	return resp, nil
}

// checkedBody keeps what the client reads and hands it to done on Close.
type checkedBody struct {
	io.ReadCloser
	buf  bytes.Buffer
	eof  bool
	once sync.Once
	done func(body []byte, complete bool)
}

func (b *checkedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.buf.Write(p[:n])
	if err == io.EOF {
		b.eof = true
	}
	return n, err
}

func (b *checkedBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(func() { b.done(b.buf.Bytes(), b.eof) })
	return err
}

// registerBodyDecoders teaches openapi3filter the API's streaming types
// (its registry is process-wide, hence once, from TestMain). Each is
// decoded into the list of its items, which is how openapi.json describes
// them: an OpenAPI 3.1 schema describes a value, not a sequence.
func registerBodyDecoders() {
	openapi3filter.RegisterBodyDecoder("text/event-stream", decodeEventStream)
	openapi3filter.RegisterBodyDecoder("application/x-ndjson", decodeNDJSON)
}

// decodeEventStream reads server-sent events (WHATWG HTML 9.2) into their
// frames: id, event and retry as sent, data decoded from the JSON this API
// sends in it. Comments (heartbeats) are not frames. A field the API does
// not send, or a frame cut short, is an error rather than ignored.
func decodeEventStream(body io.Reader, _ http.Header, _ *openapi3.SchemaRef, _ openapi3filter.EncodingFn) (any, error) {
	frames := []any{}
	frame := map[string]any{}
	var data []string
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			if len(data) > 0 {
				var v any
				if err := json.Unmarshal([]byte(strings.Join(data, "\n")), &v); err != nil {
					return nil, fmt.Errorf("event data is not JSON: %w", err)
				}
				frame["data"] = v
			}
			if len(frame) > 0 {
				frames = append(frames, frame)
			}
			frame, data = map[string]any{}, nil
			continue
		}
		if strings.HasPrefix(line, ":") {
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "data":
			data = append(data, value)
		case "id", "event":
			frame[field] = value
		case "retry":
			n, err := strconv.Atoi(value)
			if err != nil {
				return nil, fmt.Errorf("retry %q: %w", value, err)
			}
			frame[field] = n
		default:
			return nil, fmt.Errorf("unknown event stream field %q", field)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(frame) > 0 || len(data) > 0 {
		return nil, errors.New("the stream ends inside a frame")
	}
	return frames, nil
}

// decodeNDJSON reads newline-delimited JSON, one value a line, into the
// list of its values.
func decodeNDJSON(body io.Reader, _ http.Header, _ *openapi3.SchemaRef, _ openapi3filter.EncodingFn) (any, error) {
	values := []any{}
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		var v any
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			return nil, fmt.Errorf("ndjson line %d: %w", len(values)+1, err)
		}
		values = append(values, v)
	}
	return values, sc.Err()
}

// TestContractCatchesDrift: the check refuses real answers changed the way
// a handler could drift from the document: a field renamed, a CSV column
// renamed, an event type the stream does not document, an undocumented
// status. Unchanged, the same answers pass.
func TestContractCatchesDrift(t *testing.T) {
	e := newEnv(t)
	d := e.analyzed(alice, "drift.txt", "text", 40, "medium")
	doc := e.get("/api/v1/documents/"+d.id, alice)
	csv := e.get("/api/v1/assessments/export?format=csv", alice)
	stream := e.get("/api/v1/documents/"+d.id+"/events", alice) // ends after the outcome
	for _, c := range []struct {
		name     string
		r        response
		old, new string
		status   int
	}{
		{"document field renamed", doc, `"filename":`, `"file_name":`, 0},
		{"csv column renamed", csv, "risk_level", "risk", 0},
		{"unknown event type", stream, "event: analyzed", "event: assessed", 0},
		{"undocumented status", doc, "", "", http.StatusTeapot},
	} {
		ex := exchange{req: c.r.Request, status: c.r.StatusCode, header: c.r.Header, body: c.r.body, complete: true}
		if err := e.contract.check(ex); err != nil {
			t.Fatalf("%s: the unchanged answer fails: %v", c.name, err)
		}
		if c.old != "" {
			if !bytes.Contains(ex.body, []byte(c.old)) {
				t.Fatalf("%s: %q not in the answer", c.name, c.old)
			}
			ex.body = bytes.Replace(ex.body, []byte(c.old), []byte(c.new), 1)
		}
		if c.status != 0 {
			ex.status = c.status
		}
		if err := e.contract.check(ex); err == nil {
			t.Errorf("%s: the changed answer passes", c.name)
		} else {
			t.Logf("%s: %.200v", c.name, err)
		}
	}
}
