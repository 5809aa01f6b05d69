package worker

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/aiprism/prism/extractor/extract"
)

func roundTrip(t *testing.T, req Request, doc string) (Response, string) {
	t.Helper()
	hdr, _ := json.Marshal(req)
	in := strings.NewReader(string(hdr) + "\n" + doc)
	var out bytes.Buffer
	if err := Main(context.Background(), in, &out, func(string) string { return "" }); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(&out)
	line, err := ReadLine(br, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	var resp Response
	if err := json.Unmarshal(line, &resp); err != nil {
		t.Fatal(err)
	}
	text, _ := io.ReadAll(br)
	if len(text) != resp.TextBytes {
		t.Fatalf("text is %d bytes, header says %d", len(text), resp.TextBytes)
	}
	return resp, string(text)
}

func TestMainExtracts(t *testing.T) {
	doc := "Ref,Issue\nR1,Cap equal to three months of fees\n"
	resp, text := roundTrip(t, Request{Op: OpExtract, Size: int64(len(doc))}, doc)
	if !resp.OK || resp.Result.Format != "csv" || text != "Ref | Issue\nR1 | Cap equal to three months of fees\n" {
		t.Fatalf("resp = %+v text = %q", resp, text)
	}
}

func TestMainReportsDocumentFailures(t *testing.T) {
	doc := "\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00>\x00"
	resp, _ := roundTrip(t, Request{Op: OpExtract, Size: int64(len(doc))}, doc)
	if resp.OK || resp.Class != "unsupported-type" || resp.Error == "" {
		t.Fatalf("resp = %+v", resp)
	}
	resp, _ = roundTrip(t, Request{Op: OpExtract, Size: 100, Limits: extract.Limits{MaxInputBytes: 10}}, strings.Repeat("x", 100))
	if resp.OK || resp.Class != "too-large" {
		t.Fatalf("resp = %+v", resp)
	}
}

// One worker answers requests in turn until its input ends.
func TestMainServesRequestsInTurn(t *testing.T) {
	var in bytes.Buffer
	docs := []string{"first document\n", "Ref,Issue\nR1,Cap\n", "third document\n"}
	for _, d := range docs {
		hdr, _ := json.Marshal(Request{Op: OpExtract, Size: int64(len(d))})
		in.Write(append(hdr, '\n'))
		in.WriteString(d)
	}
	var out bytes.Buffer
	if err := Main(context.Background(), &in, &out, func(string) string { return "" }); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(&out)
	for i, want := range []string{"first document\n", "Ref | Issue\nR1 | Cap\n", "third document\n"} {
		line, err := ReadLine(br, 1<<20)
		if err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		var resp Response
		if err := json.Unmarshal(line, &resp); err != nil || !resp.OK {
			t.Fatalf("response %d: %s (%v)", i, line, err)
		}
		text := make([]byte, resp.TextBytes)
		if _, err := io.ReadFull(br, text); err != nil || string(text) != want {
			t.Fatalf("response %d: %q (%v), want %q", i, text, err, want)
		}
	}
	if rest, _ := io.ReadAll(br); len(rest) != 0 {
		t.Fatalf("%d bytes after the last response", len(rest))
	}
	// No request at all: the parent had nothing for it, a clean end.
	if err := Main(context.Background(), strings.NewReader(""), io.Discard, func(string) string { return "" }); err != nil {
		t.Fatalf("empty input: %v", err)
	}
}

func TestMainRejectsBadRequests(t *testing.T) {
	for _, in := range []string{"not json\n", `{"op":"dance"}` + "\n", `{"op":"extract","size":10}` + "\nshort"} {
		if err := Main(context.Background(), strings.NewReader(in), io.Discard, func(string) string { return "" }); err == nil {
			t.Errorf("%q: no error", in)
		}
	}
}
