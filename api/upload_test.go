package api_test

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
)

func TestUploadIsAcceptedAtOnce(t *testing.T) {
	e := newEnv(t)
	body, ct := multipartBody("file", "contract.txt", []byte("The supplier accepts unlimited liability."))
	r := e.do(http.MethodPost, "/api/v1/documents", alice, body, "Content-Type", ct)
	expect(t, r, http.StatusAccepted)
	var out struct {
		ID     string
		Status string
		Links  struct{ Self, Events string }
	}
	r.json(t, &out)
	if out.ID == "" || out.Status != "uploaded" || r.Header.Get("Location") != "/api/v1/documents/"+out.ID || out.Links.Events != out.Links.Self+"/events" {
		t.Fatalf("202 %+v, Location %q", out, r.Header.Get("Location"))
	}
	// Readable at once, even before the projector has run.
	expect(t, e.get("/api/v1/documents/"+out.ID, alice), http.StatusOK)
}

func TestUploadProblems(t *testing.T) {
	e := newEnv(t, withUploadLimit(1024))
	post := func(body *bytes.Buffer, ct string, owner string) response {
		return e.do(http.MethodPost, "/api/v1/documents", owner, body, "Content-Type", ct)
	}
	t.Run("too large", func(t *testing.T) {
		body, ct := multipartBody("file", "big.txt", bytes.Repeat([]byte("x"), 4096))
		p := post(body.(*bytes.Buffer), ct, alice).problem(t, http.StatusRequestEntityTooLarge, "too-large")
		if !strings.Contains(p.Detail, "1 KiB") {
			t.Fatalf("detail %q does not name the limit", p.Detail)
		}
	})
	t.Run("no file field", func(t *testing.T) {
		body, ct := multipartBody("document", "a.txt", []byte("hello"))
		post(body.(*bytes.Buffer), ct, alice).problem(t, http.StatusBadRequest, "no-file")
	})
	t.Run("empty file", func(t *testing.T) {
		body, ct := multipartBody("file", "a.txt", nil)
		post(body.(*bytes.Buffer), ct, alice).problem(t, http.StatusBadRequest, "empty")
	})
	t.Run("not multipart", func(t *testing.T) {
		post(bytes.NewBufferString(`{"file":"x"}`), "application/json", alice).problem(t, http.StatusUnsupportedMediaType, "not-multipart")
	})
	t.Run("no token", func(t *testing.T) {
		body, ct := multipartBody("file", "a.txt", []byte("hello"))
		post(body.(*bytes.Buffer), ct, "").problem(t, http.StatusUnauthorized, "unauthenticated")
	})
	t.Run("unknown token", func(t *testing.T) {
		r := e.do(http.MethodGet, "/api/v1/documents", "", nil, "Authorization", "Bearer nope")
		r.problem(t, http.StatusUnauthorized, "invalid-token")
	})
}
