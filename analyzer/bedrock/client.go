// Package bedrock builds the Bedrock Runtime client and classifies its
// errors. The analyzer is the one retry layer: the SDK's own retries are off,
// or they would stack under ours and hammer a shared quota.
package bedrock

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/aiprism/prism/platform/config"
	"github.com/aiprism/prism/platform/sdkhttp"
	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"
	"github.com/aws/smithy-go"
)

// Config says where Bedrock is and who we are.
type Config struct {
	Region          string
	Endpoint        string // empty = AWS; set for the simulator
	AccessKeyID     string // empty = the default AWS credential chain
	SecretAccessKey string
	SessionToken    string
	Timeout         time.Duration // per call
}

// ConfigFromEnv reads AWS_REGION, BEDROCK_ENDPOINT_URL, BEDROCK_TIMEOUT and
// AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN. Without keys
// the SDK's default chain (profile, instance role, ...) applies.
func ConfigFromEnv(l *config.Loader) Config {
	c := Config{
		Region:          l.String("AWS_REGION", "us-east-1"),
		Endpoint:        l.URL("BEDROCK_ENDPOINT_URL", "", "http", "https"),
		Timeout:         l.Duration("BEDROCK_TIMEOUT", 120*time.Second, time.Second, 15*time.Minute),
		AccessKeyID:     l.String("AWS_ACCESS_KEY_ID", ""),
		SecretAccessKey: l.String("AWS_SECRET_ACCESS_KEY", ""),
		SessionToken:    l.String("AWS_SESSION_TOKEN", ""),
	}
	l.Check(c.AccessKeyID == "" || c.SecretAccessKey != "", "AWS_SECRET_ACCESS_KEY", "a secret key when AWS_ACCESS_KEY_ID is set")
	return c
}

// NewClient returns a Bedrock Runtime client with SDK retries off.
func NewClient(ctx context.Context, c Config) (*bedrockruntime.Client, error) {
	opts := []func(*awsconfig.LoadOptions) error{
		awsconfig.WithRegion(c.Region),
		awsconfig.WithRetryer(func() aws.Retryer { return aws.NopRetryer{} }),
		awsconfig.WithHTTPClient(awshttp.NewBuildableClient().WithTimeout(c.Timeout).WithTransportOptions(func(t *http.Transport) {
			// Enough idle connections for the analyzer's concurrency; the
			// default of two per host would reconnect on most calls.
			t.MaxIdleConns = 512
			t.MaxIdleConnsPerHost = 256
		})),
	}
	if c.AccessKeyID != "" {
		opts = append(opts, awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(c.AccessKeyID, c.SecretAccessKey, c.SessionToken)))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("load AWS configuration: %w", err)
	}
	cfg.HTTPClient = sdkhttp.Wrap(cfg.HTTPClient)
	return bedrockruntime.NewFromConfig(cfg, func(o *bedrockruntime.Options) {
		if c.Endpoint != "" {
			o.BaseEndpoint = aws.String(c.Endpoint)
		}
	}), nil
}

// Class is what an error means for routing.
type Class int

// Error classes.
const (
	ClassNone      Class = iota
	ClassThrottled       // 429: the model is busy; cool down, try another
	ClassNotReady        // the model is not ready to serve (429 ModelNotReady): cool down, try another; not a quota signal
	ClassTransient       // 5xx, timeouts, network: retry later
	ClassPermanent       // validation, access: retrying cannot help
)

// Classify maps a Bedrock error to a class.
func Classify(err error) Class {
	if err == nil {
		return ClassNone
	}
	var (
		throttle *types.ThrottlingException
		notReady *types.ModelNotReadyException
		valid    *types.ValidationException
		denied   *types.AccessDeniedException
		notFound *types.ResourceNotFoundException
		quota    *types.ServiceQuotaExceededException
	)
	switch {
	case errors.As(err, &throttle):
		return ClassThrottled
	case errors.As(err, &notReady):
		return ClassNotReady
	case errors.As(err, &valid), errors.As(err, &denied), errors.As(err, &notFound):
		return ClassPermanent
	case errors.As(err, &quota):
		// A quota that is exceeded for the account, not the minute: another
		// model may still serve, so route around it like a throttle.
		return ClassThrottled
	}
	var api smithy.APIError
	if errors.As(err, &api) && api.ErrorCode() == "UnrecognizedClientException" {
		return ClassPermanent
	}
	return ClassTransient
}

// RetryHint is how long the service asked us to wait (a Retry-After
// header in seconds on the error response), or 0 when it did not say.
// Bedrock rarely sends one; when it does, the cooldown honours it.
func RetryHint(err error) time.Duration {
	var re *awshttp.ResponseError
	if !errors.As(err, &re) || re.Response == nil {
		return 0
	}
	secs, perr := strconv.Atoi(strings.TrimSpace(re.Response.Header.Get("Retry-After")))
	if perr != nil || secs <= 0 {
		return 0
	}
	return time.Duration(min(secs, 3600)) * time.Second
}
