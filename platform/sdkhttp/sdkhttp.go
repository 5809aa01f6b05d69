// Package sdkhttp builds the HTTP client that every AWS SDK client in Prism
// (S3, Bedrock Runtime) sends its requests through.
//
// It exists for one defect. smithy-go hands net/http a request body whose
// WriteTo returns io.EOF once the SDK has closed it, and the SDK closes it as
// soon as the response headers arrive. When a server answers before
// net/http's writer has finished its final read of the body (it checks for
// bytes beyond Content-Length), that io.EOF surfaces as a write error and
// net/http closes the connection under the response still being read: the
// caller sees "use of closed network connection" mid-body (the symptom of
// aws/aws-sdk-go-v2#1825 and #2737). Hiding WriteTo makes net/http read the
// body with Read, whose io.EOF it treats as the end it is.
package sdkhttp

import (
	"io"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
)

// Wrap makes an SDK HTTP client safe from the early-close race. Apply it to
// the aws.Config that config.LoadDefaultConfig returns, after loading, so
// the SDK's own settings (AWS_CA_BUNDLE, which needs its buildable client)
// still apply; nil stands for the SDK's default client.
func Wrap(c aws.HTTPClient) aws.HTTPClient {
	if c == nil {
		c = awshttp.NewBuildableClient()
	}
	if w, ok := c.(client); ok {
		return w
	}
	return client{c}
}

type client struct{ next aws.HTTPClient }

func (c client) Do(r *http.Request) (*http.Response, error) {
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = readCloser{r.Body}
	}
	return c.next.Do(r)
}

// readCloser exposes only Read and Close of the body it wraps.
type readCloser struct{ io.ReadCloser }
