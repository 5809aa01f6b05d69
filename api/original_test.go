package api_test

import (
	"bytes"
	"net/http"
	"testing"
)

func TestOriginalDownload(t *testing.T) {
	e := newEnv(t)
	content := append([]byte("%PDF-1.7 <script>alert(1)</script>"), bytes.Repeat([]byte{0, 1, 2, 3}, 1000)...)
	d := e.newDoc(alice, "Vertrag über Haftung.pdf", content)
	d.waitSeq(d.extract("text").Seq)
	path := "/api/v1/documents/" + d.id + "/original"

	r := e.get(path, alice)
	expect(t, r, http.StatusOK)
	if !bytes.Equal(r.body, content) {
		t.Fatalf("downloaded %d bytes, uploaded %d", len(r.body), len(content))
	}
	// Untrusted bytes: never rendered, always downloaded, under a safe name.
	if ct := r.Header.Get("Content-Type"); ct != "application/octet-stream" || r.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("content type %q, nosniff %q", ct, r.Header.Get("X-Content-Type-Options"))
	}
	want := `attachment; filename="Vertrag__ber_Haftung.pdf"; filename*=UTF-8''Vertrag_%C3%BCber_Haftung.pdf`
	if cd := r.Header.Get("Content-Disposition"); cd != want {
		t.Fatalf("Content-Disposition %q, want %q", cd, want)
	}

	// A resumed download.
	r = e.get(path, alice, "Range", "bytes=100-")
	expect(t, r, http.StatusPartialContent)
	if !bytes.Equal(r.body, content[100:]) {
		t.Fatal("range of the original differs")
	}
	if types := e.historyTypes(d.id); count(types, "audit.downloaded") != 1 {
		t.Fatalf("history %v: want one audit.downloaded", types)
	}
}
