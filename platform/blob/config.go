package blob

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/aiprism/prism/platform/config"
)

// Server-side encryption modes accepted in Config.SSE.
const (
	SSEAES256 = "AES256"  // SSE-S3: keys managed by S3.
	SSEKMS    = "aws:kms" // SSE-KMS: keys in AWS KMS (Config.KMSKeyID or the AWS managed key).
)

// Config says where blobs live and how they are protected.
type Config struct {
	// Endpoint overrides the S3 endpoint (s3local, MinIO, a VPC endpoint);
	// empty means the AWS default for Region.
	Endpoint string
	// Region of the bucket; ConfigFromEnv defaults it to us-east-1.
	Region string
	// Bucket holding every object. Required.
	Bucket string
	// AccessKeyID and SecretAccessKey are static credentials; leave both
	// empty to use the default AWS credential chain (env, profile, IRSA,
	// instance role).
	AccessKeyID, SecretAccessKey string
	// UsePathStyle addresses objects as endpoint/bucket/key, which local S3
	// implementations need.
	UsePathStyle bool
	// SSE is the server-side encryption requested on every write: SSEAES256
	// (the default when empty) or SSEKMS.
	SSE string
	// KMSKeyID selects the KMS key for SSEKMS; empty uses the AWS managed
	// key. Not allowed with SSEAES256.
	KMSKeyID string
}

// ConfigFromEnv reads the S3_* variables (see the package documentation)
// through getenv, so callers and tests can pass os.Getenv or a map lookup.
// Each error names the variable and what it expects.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	c := Config{
		Endpoint:        strings.TrimSpace(getenv("S3_ENDPOINT")),
		Region:          strings.TrimSpace(getenv("S3_REGION")),
		Bucket:          strings.TrimSpace(getenv("S3_BUCKET")),
		AccessKeyID:     strings.TrimSpace(getenv("S3_ACCESS_KEY_ID")),
		SecretAccessKey: strings.TrimSpace(getenv("S3_SECRET_ACCESS_KEY")),
		SSE:             strings.TrimSpace(getenv("S3_SSE")),
		KMSKeyID:        strings.TrimSpace(getenv("S3_KMS_KEY_ID")),
	}
	if c.Region == "" {
		c.Region = "us-east-1"
	}
	if c.SSE == "" {
		c.SSE = SSEAES256
	}
	if v := strings.TrimSpace(getenv("S3_USE_PATH_STYLE")); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return Config{}, fmt.Errorf("S3_USE_PATH_STYLE=%q: want true or false", v)
		}
		c.UsePathStyle = b
	} else {
		// S3-compatible servers reached through S3_ENDPOINT rarely
		// support virtual-hosted buckets; AWS itself prefers them.
		c.UsePathStyle = c.Endpoint != ""
	}
	if err := c.validate(envNames); err != nil {
		return Config{}, err
	}
	return c, nil
}

// fieldNames maps Config fields to the names used in error messages, so
// validation reports env variables to operators and fields to programmers.
type fieldNames struct {
	endpoint, region, bucket, accessKey, secretKey, sse, kmsKey string
}

var (
	envNames = fieldNames{
		endpoint: "S3_ENDPOINT", region: "S3_REGION", bucket: "S3_BUCKET",
		accessKey: "S3_ACCESS_KEY_ID", secretKey: "S3_SECRET_ACCESS_KEY",
		sse: "S3_SSE", kmsKey: "S3_KMS_KEY_ID",
	}
	goNames = fieldNames{
		endpoint: "Config.Endpoint", region: "Config.Region", bucket: "Config.Bucket",
		accessKey: "Config.AccessKeyID", secretKey: "Config.SecretAccessKey",
		sse: "Config.SSE", kmsKey: "Config.KMSKeyID",
	}
)

// bucketName is the S3 general-purpose bucket naming rule (lower-case
// letters, digits, dots and hyphens, 3-63 characters, alphanumeric ends).
var bucketName = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

func (c Config) validate(n fieldNames) error {
	var errs []error
	if c.Endpoint != "" {
		u, err := url.Parse(c.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("%s=%q: want an http:// or https:// URL such as http://127.0.0.1:9000", n.endpoint, config.Redact(c.Endpoint)))
		}
	}
	if c.Region == "" {
		errs = append(errs, fmt.Errorf("%s is empty: want an AWS region such as us-east-1", n.region))
	}
	switch {
	case c.Bucket == "":
		errs = append(errs, fmt.Errorf("%s is not set: want the name of the document bucket", n.bucket))
	case !bucketName.MatchString(c.Bucket) || strings.Contains(c.Bucket, ".."):
		errs = append(errs, fmt.Errorf("%s=%q: want a valid S3 bucket name (3-63 lower-case letters, digits, dots, hyphens)", n.bucket, c.Bucket))
	}
	if (c.AccessKeyID == "") != (c.SecretAccessKey == "") {
		errs = append(errs, fmt.Errorf("%s and %s must be set together (or both left empty to use the default AWS credential chain)", n.accessKey, n.secretKey))
	}
	switch c.SSE {
	case SSEAES256, "":
		if c.KMSKeyID != "" {
			errs = append(errs, fmt.Errorf("%s is set but %s is %q: want %s=%s to use a KMS key", n.kmsKey, n.sse, SSEAES256, n.sse, SSEKMS))
		}
	case SSEKMS:
	default:
		errs = append(errs, fmt.Errorf("%s=%q: want %s or %s", n.sse, c.SSE, SSEAES256, SSEKMS))
	}
	return errors.Join(errs...)
}
