package sdkhttp_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/aiprism/prism/platform/sdkhttp"
)

// sdkBody behaves like smithy-go's request body: once closed, WriteTo and
// Read answer io.EOF. Its final read (the one net/http makes past
// Content-Length) waits until the caller has closed it, which is the
// interleaving that breaks connections in production.
type sdkBody struct {
	data   *bytes.Reader
	closed chan struct{}
	once   sync.Once
}

func newSDKBody(b []byte) *sdkBody {
	return &sdkBody{data: bytes.NewReader(b), closed: make(chan struct{})}
}

func (b *sdkBody) Read(p []byte) (int, error) {
	if b.data.Len() == 0 {
		<-b.closed
		return 0, io.EOF
	}
	return b.data.Read(p)
}

func (b *sdkBody) WriteTo(w io.Writer) (int64, error) {
	if b.data.Len() == 0 {
		<-b.closed
		return 0, io.EOF
	}
	return b.data.WriteTo(w)
}

func (b *sdkBody) Close() error {
	b.once.Do(func() { close(b.closed) })
	return nil
}

// TestEarlyCloseKeepsResponse sends a request whose body the caller closes
// as soon as the response headers arrive, as the SDK does, while the server
// is still streaming the response body.
func TestEarlyCloseKeepsResponse(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		time.Sleep(50 * time.Millisecond)
		io.WriteString(w, "rest of the stream")
	}))
	defer srv.Close()

	do := func(c aws.HTTPClient) (string, error) {
		payload := []byte(`{"messages":[]}`)
		body := newSDKBody(payload)
		req, _ := http.NewRequest(http.MethodPost, srv.URL, body)
		req.ContentLength = int64(len(payload))
		resp, err := c.Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		body.Close() // what smithy-go's ClientHandler does after Do
		got, err := io.ReadAll(resp.Body)
		return string(got), err
	}

	// The unwrapped client shows the defect, so the wrapper is what
	// prevents it.
	if _, err := do(&http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}); err == nil {
		t.Fatal("plain net/http client kept the connection: the defect this package works around is gone; retire the package")
	}
	for i := 0; i < 20; i++ {
		got, err := do(sdkhttp.Wrap(nil))
		if err != nil || got != "rest of the stream" {
			t.Fatalf("attempt %d: %q, %v", i, got, err)
		}
	}
}
