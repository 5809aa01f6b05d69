package api_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/aiprism/prism/api"
	"github.com/aiprism/prism/platform/blob"
	"github.com/aiprism/prism/platform/config"
	"github.com/aiprism/prism/platform/testenv"
	"github.com/aiprism/prism/streams"
)

// withS3 runs the env's object store behind w, so a test sees every
// request the API makes of it.
func withS3(w *testenv.S3Watch) envOption {
	return func(c *envConfig) { c.s3 = func(testing.TB) blob.Config { return w.Config } }
}

// Bob forges events on his own subjects that name alice's original and
// text as his document's. The projector records the keys on bob's row;
// the API still serves bob none of alice's bytes (not the whole object,
// not a range, not a window of text), never even asks S3 for them, and
// bob's delete of his forged document leaves alice's objects in place.
func TestForgedKeysReadAndRemoveNothingOfAnotherOwner(t *testing.T) {
	w := testenv.S3Watched(t)
	e := newEnv(t, withS3(w))
	a := e.analyzed(alice, "secret.txt", "Alice's confidential terms.", 10, "low")
	var original, text string
	if err := e.pool.QueryRow(context.Background(), `SELECT original_key, text_key FROM documents WHERE id = $1`, a.id).Scan(&original, &text); err != nil {
		t.Fatal(err)
	}

	forged := &doc{e: e, owner: bob, id: "forged-1", run: 1}
	forged.emit(streams.Uploaded, streams.UploadedData{Original: streams.ObjectRef{Key: original, Size: 27}, Filename: "secret.txt"})
	forged.waitSeq(forged.emit(streams.Extracted, streams.ExtractedData{Text: streams.ObjectRef{Key: text, Size: 27}, Format: "txt", Chars: 27}).Seq)
	var recorded string
	if err := e.pool.QueryRow(context.Background(), `SELECT original_key FROM documents WHERE id = 'forged-1' AND owner = $1`, bob).Scan(&recorded); err != nil || recorded != original {
		t.Fatalf("the forged document does not name alice's original (%q, %v): the test proves nothing", recorded, err)
	}
	reads := func() int {
		return w.Count(http.MethodGet, original) + w.Count(http.MethodHead, original) + w.Count(http.MethodGet, text) + w.Count(http.MethodHead, text)
	}
	before := reads()

	base := "/api/v1/documents/" + forged.id
	for _, req := range []struct {
		path   string
		header []string
	}{
		{"/original", nil},
		{"/original", []string{"Range", "bytes=0-5"}},
		{"/text", nil},
		{"/text", []string{"Range", "bytes=0-5"}},
		{"/text?offset=0&limit=5", nil},
	} {
		r := e.get(base+req.path, bob, req.header...)
		r.problem(t, http.StatusNotFound, "object-missing")
		if strings.Contains(string(r.body), "confidential") {
			t.Fatalf("GET %s %v: alice's bytes served to bob", req.path, req.header)
		}
	}
	if n := reads() - before; n != 0 {
		t.Fatalf("S3 was asked %d times for alice's objects on bob's requests", n)
	}

	expect(t, e.do(http.MethodDelete, base, bob, nil), http.StatusNoContent)
	if n := w.Count(http.MethodDelete, original) + w.Count(http.MethodDelete, text); n != 0 {
		t.Fatalf("bob's delete removed alice's objects (%d DELETEs)", n)
	}
	for _, path := range []string{"/original", "/text"} {
		expect(t, e.get("/api/v1/documents/"+a.id+path, alice), http.StatusOK)
	}
}

// The event stream authorizes with the read model (is the document
// deleted?). When the database cannot answer, the stream is refused with
// 503, and never opened on the chance that the document may be read.
func TestSSERefusesWhenTheAccessCheckCannotBeMade(t *testing.T) {
	e := newEnv(t)
	d := e.analyzed(alice, "contract.txt", "Some terms.", 10, "low")
	ctx := context.Background()
	// The documents table goes away (tokens still resolve): the check's
	// query fails as on a lost or broken database.
	if _, err := e.pool.Exec(ctx, `ALTER TABLE documents RENAME TO documents_away`); err != nil {
		t.Fatal(err)
	}
	r := e.get("/api/v1/documents/"+d.id+"/events", alice)
	r.problem(t, http.StatusServiceUnavailable, "unavailable")
	if r.Header.Get("Retry-After") == "" || strings.Contains(string(r.body), "documents_away") || strings.Contains(string(r.body), "event:") {
		t.Fatalf("refusal: Retry-After %q, body %s", r.Header.Get("Retry-After"), r.body)
	}
	if _, err := e.pool.Exec(ctx, `ALTER TABLE documents_away RENAME TO documents`); err != nil {
		t.Fatal(err)
	}
	if _, kinds, err := e.sseEvents(alice, d.id, nil); err != nil || len(kinds) == 0 || kinds[len(kinds)-1] != string(streams.Analyzed) {
		t.Fatalf("with the database back: %v %v", kinds, err)
	}
}

// The dev owner is an owner id like any other: one with a subject
// wildcard, a dot or whitespace stops the API's configuration.
func TestDevOwnerMustBeAnOwnerID(t *testing.T) {
	for _, owner := range []string{"a.b", "*", ">", "dev team", "a\tb", "ålice"} {
		l := config.New(config.MapEnv(map[string]string{"API_DEV_OWNER": owner}))
		api.ConfigFromEnv(l)
		if err := l.Err(); err == nil || !strings.Contains(err.Error(), "API_DEV_OWNER") {
			t.Errorf("API_DEV_OWNER=%q: %v, want refused", owner, err)
		}
	}
	l := config.New(config.MapEnv(map[string]string{"API_DEV_OWNER": "dev-1"}))
	if cfg := api.ConfigFromEnv(l); l.Err() != nil || cfg.DevOwner != "dev-1" {
		t.Fatalf("API_DEV_OWNER=dev-1: %+v, %v", cfg, l.Err())
	}
}
