package api_test

import (
	"net/http"
	"strings"
	"testing"
)

func TestTextWholeByteRangeAndCharacterWindow(t *testing.T) {
	e := newEnv(t)
	const text = "Haftung: unbeschränkt. 責任は無制限です。 Liability: unlimited."
	d := e.analyzed(alice, "vertrag.txt", text, 70, "high")
	base := "/api/v1/documents/" + d.id + "/text"

	r := e.get(base, alice)
	expect(t, r, http.StatusOK)
	if string(r.body) != text || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/plain") || r.Header.Get("Accept-Ranges") != "bytes" {
		t.Fatalf("whole text: %q %v", r.body, r.Header)
	}

	// Byte ranges, as HTTP defines them.
	r = e.get(base, alice, "Range", "bytes=0-7")
	expect(t, r, http.StatusPartialContent)
	if string(r.body) != "Haftung:" || r.Header.Get("Content-Range") != "bytes 0-7/"+itoa(len(text)) {
		t.Fatalf("range: %q %q", r.body, r.Header.Get("Content-Range"))
	}
	r = e.get(base, alice, "Range", "bytes=-10")
	expect(t, r, http.StatusPartialContent)
	if string(r.body) != text[len(text)-10:] {
		t.Fatalf("suffix range: %q", r.body)
	}
	r = e.get(base, alice, "Range", "bytes=9999-")
	r.problem(t, http.StatusRequestedRangeNotSatisfiable, "range-not-satisfiable")
	if r.Header.Get("Content-Range") != "bytes */"+itoa(len(text)) {
		t.Fatalf("416 Content-Range %q", r.Header.Get("Content-Range"))
	}
	// Several ranges: the whole text (a server may ignore Range).
	expect(t, e.get(base, alice, "Range", "bytes=0-1,4-5"), http.StatusOK)

	// Character windows page without splitting a character.
	runes := []rune(text)
	var paged strings.Builder
	offset, windows := "0", 0
	for offset != "" {
		r = e.get(base+"?limit=7&offset="+offset, alice)
		expect(t, r, http.StatusOK)
		windows++
		paged.Write(r.body)
		if r.Header.Get("X-Text-Total-Chars") != itoa(len(runes)) {
			t.Fatalf("total chars %q", r.Header.Get("X-Text-Total-Chars"))
		}
		offset = r.Header.Get("X-Text-Next-Offset")
	}
	if paged.String() != text || windows != (len(runes)+6)/7 {
		t.Fatalf("paged %d windows: %q", windows, paged.String())
	}
	r = e.get(base+"?offset=23&limit=8", alice)
	if string(r.body) != string(runes[23:31]) || r.Header.Get("X-Text-Chars") != "8" {
		t.Fatalf("window: %q", r.body)
	}

	e.get(base+"?offset=1000", alice).problem(t, http.StatusBadRequest, "bad-parameter")
	e.get(base+"?limit=0", alice).problem(t, http.StatusBadRequest, "bad-parameter")
	e.get(base+"?limit=1000001", alice).problem(t, http.StatusBadRequest, "bad-parameter")
	e.get(base+"?offset=0", alice, "Range", "bytes=0-1").problem(t, http.StatusBadRequest, "bad-parameter")

	// No text yet.
	pending := e.newDoc(alice, "new.txt", []byte("x"))
	pending.waitProjected() // before, the answer is 409 not-ready
	e.get("/api/v1/documents/"+pending.id+"/text", alice).problem(t, http.StatusNotFound, "no-text")
	if count(e.historyTypes(d.id), "audit.viewed") != 1 {
		t.Fatalf("history %v: want one coalesced audit.viewed", e.historyTypes(d.id))
	}
}
