package bedrock

import (
	"errors"
	"net/http"
	"testing"
	"time"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

func TestRetryHintReadsRetryAfter(t *testing.T) {
	withHeader := func(v string) error {
		h := http.Header{}
		if v != "" {
			h.Set("Retry-After", v)
		}
		return &awshttp.ResponseError{ResponseError: &smithyhttp.ResponseError{
			Response: &smithyhttp.Response{Response: &http.Response{StatusCode: 429, Header: h}},
			Err:      errors.New("ThrottlingException"),
		}}
	}
	for _, c := range []struct {
		header string
		want   time.Duration
	}{{"12", 12 * time.Second}, {"", 0}, {"soon", 0}, {"-3", 0}, {"999999", time.Hour}} {
		if got := RetryHint(withHeader(c.header)); got != c.want {
			t.Errorf("Retry-After %q: %v, want %v", c.header, got, c.want)
		}
	}
	if RetryHint(errors.New("plain")) != 0 {
		t.Error("a plain error has no hint")
	}
}
