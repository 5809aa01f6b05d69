package blob_test

import (
	"strings"
	"testing"

	"github.com/aiprism/prism/platform/blob"
)

func TestConfigFromEnv(t *testing.T) {
	for _, tc := range []struct {
		name    string
		env     map[string]string
		want    blob.Config
		wantErr []string // substrings of the error
	}{
		{
			name: "defaults",
			env:  map[string]string{"S3_BUCKET": "docs"},
			want: blob.Config{Region: "us-east-1", Bucket: "docs", SSE: "AES256"},
		},
		{
			name: "local endpoint implies path style",
			env: map[string]string{
				"S3_BUCKET": "docs", "S3_ENDPOINT": "http://127.0.0.1:9000",
				"S3_ACCESS_KEY_ID": "k", "S3_SECRET_ACCESS_KEY": "s",
			},
			want: blob.Config{
				Endpoint: "http://127.0.0.1:9000", Region: "us-east-1", Bucket: "docs",
				AccessKeyID: "k", SecretAccessKey: "s", UsePathStyle: true, SSE: "AES256",
			},
		},
		{
			name: "kms",
			env: map[string]string{
				"S3_BUCKET": "docs", "S3_REGION": "eu-west-1", "S3_SSE": "aws:kms",
				"S3_KMS_KEY_ID": "arn:aws:kms:eu-west-1:1:key/x", "S3_USE_PATH_STYLE": "false",
			},
			want: blob.Config{Region: "eu-west-1", Bucket: "docs", SSE: "aws:kms", KMSKeyID: "arn:aws:kms:eu-west-1:1:key/x"},
		},
		{name: "missing bucket", env: map[string]string{}, wantErr: []string{"S3_BUCKET is not set"}},
		{name: "bad bucket", env: map[string]string{"S3_BUCKET": "Docs_1"}, wantErr: []string{"S3_BUCKET=\"Docs_1\"", "bucket name"}},
		{
			name:    "bad path style",
			env:     map[string]string{"S3_BUCKET": "docs", "S3_USE_PATH_STYLE": "yes please"},
			wantErr: []string{"S3_USE_PATH_STYLE", "true or false"},
		},
		{
			name:    "bad sse",
			env:     map[string]string{"S3_BUCKET": "docs", "S3_SSE": "none"},
			wantErr: []string{"S3_SSE=\"none\"", "AES256 or aws:kms"},
		},
		{
			name:    "kms key without kms",
			env:     map[string]string{"S3_BUCKET": "docs", "S3_KMS_KEY_ID": "k"},
			wantErr: []string{"S3_KMS_KEY_ID is set", "S3_SSE=aws:kms"},
		},
		{
			name:    "half credentials",
			env:     map[string]string{"S3_BUCKET": "docs", "S3_ACCESS_KEY_ID": "k"},
			wantErr: []string{"S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY must be set together"},
		},
		{
			name:    "bad endpoint",
			env:     map[string]string{"S3_BUCKET": "docs", "S3_ENDPOINT": "localhost:9000"},
			wantErr: []string{"S3_ENDPOINT=\"localhost:9000\"", "http://"},
		},
		{
			name:    "bad endpoint, its credentials hidden",
			env:     map[string]string{"S3_BUCKET": "docs", "S3_ENDPOINT": "ftp://ak:sk-secret@minio:9000"},
			wantErr: []string{"S3_ENDPOINT=\"ftp://ak:xxxxx@minio:9000\""},
		},
		{
			name:    "several problems reported together",
			env:     map[string]string{"S3_SSE": "x"},
			wantErr: []string{"S3_BUCKET", "S3_SSE"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := blob.ConfigFromEnv(func(k string) string { return tc.env[k] })
			if len(tc.wantErr) > 0 {
				if err == nil {
					t.Fatalf("no error, config %+v", got)
				}
				for _, s := range tc.wantErr {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not mention %q", err, s)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("error: %v", err)
			}
			if got != tc.want {
				t.Errorf("config = %+v\nwant     %+v", got, tc.want)
			}
		})
	}
}

func TestNewValidates(t *testing.T) {
	_, err := blob.New(t.Context(), blob.Config{Region: "us-east-1"})
	if err == nil || !strings.Contains(err.Error(), "Config.Bucket") {
		t.Fatalf("New without bucket: err = %v, want it to name Config.Bucket", err)
	}
}
