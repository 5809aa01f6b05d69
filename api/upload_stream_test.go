package api_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"math/rand/v2"
	"mime/multipart"
	"net/http"
	"testing"
	"time"
)

// TestUploadStreamsToTheStore sends a 64 MiB document through POST
// /documents with the object store in another process, so this process's
// heap holds only what the API (and the test's own client) holds. If the
// API buffered the body anywhere (fasthttp, the multipart reader, ingest,
// the S3 client), the heap would grow by at least the upload's size; a
// streaming API holds about one S3 part (8 MiB).
func TestUploadStreamsToTheStore(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 64 MiB through HTTP and S3")
	}
	const size = 64 << 20
	e := newEnv(t, withLargeUploads(size+1<<20), withS3InOwnProcess())

	body, contentType, sum := generatedUpload(t, "large.bin", size)
	// With its length, as browsers send it: the path where a server might
	// read it all first.
	posted, growth := e.streamUpload(t, body, body.Size(), contentType)
	expect(t, posted, http.StatusAccepted)
	var out struct{ ID string }
	posted.json(t, &out)

	t.Logf("upload of %d MiB: peak heap growth %.1f MiB", size>>20, float64(growth)/(1<<20))
	if growth > size/4 {
		t.Errorf("heap grew by %.1f MiB during a %d MiB upload: the body is buffered, not streamed", float64(growth)/(1<<20), size>>20)
	}
	(&doc{e: e, owner: alice, id: out.ID}).waitProjected() // the download reads the read model
	r := e.get("/api/v1/documents/"+out.ID+"/original", alice)
	expect(t, r, http.StatusOK)
	if got := sha256.Sum256(r.body); hex.EncodeToString(got[:]) != sum || int64(len(r.body)) != size {
		t.Fatalf("stored original: %d bytes, sha256 %x; uploaded %d bytes, sha256 %s", len(r.body), got, size, sum)
	}
}

// streamUpload posts body as alice's upload, with Content-Length size, or
// chunked when size is -1, and returns the answer and the growth of the
// heap while it was sent and answered. The body is not kept for checking
// against the contract: it is too large to hold.
func (e *env) streamUpload(t *testing.T, body io.Reader, size int64, contentType string) (response, uint64) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.url+"/api/v1/documents", hideSize{body})
	if err != nil {
		t.Fatal(err)
	}
	if size < 0 {
		req.TransferEncoding = []string{"chunked"}
	} else {
		req.ContentLength = size
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Authorization", "Bearer "+tokenOf(alice))
	heap := watchHeap(2 * time.Millisecond)
	resp, err := e.unchecked.Do(req)
	growth := heap.stop()
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return response{resp, raw}, growth
}

// hideSize hides a body's length from net/http, which would otherwise
// send some readers' length itself.
type hideSize struct{ io.Reader }

// sizedReader is a request body of known length.
type sizedReader struct {
	io.Reader
	size int64
}

func (r sizedReader) Size() int64 { return r.size }

// generatedUpload is a multipart form with one file of size pseudo-random
// bytes, generated as it is read so the test holds none of it, and the
// hex SHA-256 of that file.
func generatedUpload(t *testing.T, filename string, size int64) (sizedReader, string, string) {
	t.Helper()
	var head, tail bytes.Buffer
	mw := multipart.NewWriter(&head)
	if _, err := mw.CreateFormFile("file", filename); err != nil {
		t.Fatal(err)
	}
	prefix := head.Len()
	if err := mw.Close(); err != nil { // writes the closing boundary after the part header
		t.Fatal(err)
	}
	tail.Write(head.Bytes()[prefix:])
	head.Truncate(prefix)

	// The file's bytes are known in advance: a seeded generator read twice.
	seed := [32]byte{'p', 'r', 'i', 's', 'm'}
	h := sha256.New()
	if _, err := io.CopyN(h, rand.NewChaCha8(seed), size); err != nil {
		t.Fatal(err)
	}
	body := io.MultiReader(&head, io.LimitReader(rand.NewChaCha8(seed), size), &tail)
	return sizedReader{body, int64(head.Len()) + size + int64(tail.Len())}, mw.FormDataContentType(), hex.EncodeToString(h.Sum(nil))
}
