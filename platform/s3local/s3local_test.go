package s3local_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/aiprism/prism/platform/s3local"
	"github.com/aiprism/prism/platform/sdkhttp"
)

const bucket = "docs"

func start(t *testing.T, opts s3local.Options) *s3local.Server {
	t.Helper()
	srv, err := s3local.Start(t.Context(), opts)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Close(ctx)
	})
	return srv
}

func client(endpoint string, hc *http.Client) *s3.Client {
	if hc == nil {
		hc = http.DefaultClient
	}
	return s3.New(s3.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
		HTTPClient:   sdkhttp.Wrap(hc),
		// What config.LoadDefaultConfig resolves to; s3.New alone leaves
		// checksums off, which would hide the aws-chunked path.
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenSupported,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenSupported,
	})
}

func put(t *testing.T, c *s3.Client, key string, body io.Reader) {
	t.Helper()
	_, err := c.PutObject(t.Context(), &s3.PutObjectInput{
		Bucket: aws.String(bucket), Key: aws.String(key), Body: body,
		ServerSideEncryption: types.ServerSideEncryptionAes256,
	})
	if err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
}

func get(t *testing.T, c *s3.Client, key string) (*s3.GetObjectOutput, []byte) {
	t.Helper()
	out, err := c.GetObject(t.Context(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	return out, b
}

func TestObjectsSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	srv := start(t, s3local.Options{Dir: dir, Buckets: []string{bucket}})
	put(t, client(srv.URL(), nil), "uploads/a/b.txt", bytes.NewReader([]byte("persisted")))
	if err := srv.Close(t.Context()); err != nil {
		t.Fatalf("close: %v", err)
	}

	srv = start(t, s3local.Options{Dir: dir, Buckets: []string{bucket}}) // existing bucket is fine
	out, body := get(t, client(srv.URL(), nil), "uploads/a/b.txt")
	if string(body) != "persisted" {
		t.Fatalf("after restart body = %q", body)
	}
	if out.ServerSideEncryption != types.ServerSideEncryptionAes256 {
		t.Errorf("after restart SSE = %q, want AES256", out.ServerSideEncryption)
	}
}

func TestMultipartUpload(t *testing.T) {
	srv := start(t, s3local.Options{Dir: t.TempDir(), Buckets: []string{bucket}, RequireSSE: true})
	c := client(srv.URL(), nil)
	ctx := t.Context()
	create, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket: aws.String(bucket), Key: aws.String("big"),
		ServerSideEncryption: types.ServerSideEncryptionAes256,
	})
	if err != nil {
		t.Fatalf("create multipart: %v", err)
	}
	parts := [][]byte{make([]byte, 5<<20), []byte("tail")}
	_, _ = rand.Read(parts[0])
	var done []types.CompletedPart
	for i, p := range parts {
		n := int32(i + 1)
		up, err := c.UploadPart(ctx, &s3.UploadPartInput{
			Bucket: aws.String(bucket), Key: aws.String("big"), UploadId: create.UploadId,
			PartNumber: aws.Int32(n), Body: bytes.NewReader(p),
		})
		if err != nil {
			t.Fatalf("upload part %d: %v", n, err)
		}
		done = append(done, types.CompletedPart{PartNumber: aws.Int32(n), ETag: up.ETag})
	}
	if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket: aws.String(bucket), Key: aws.String("big"), UploadId: create.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: done},
	}); err != nil {
		t.Fatalf("complete multipart: %v", err)
	}
	out, body := get(t, c, "big")
	if !bytes.Equal(body, bytes.Join(parts, nil)) {
		t.Fatalf("multipart object differs: got %d bytes", len(body))
	}
	if out.ServerSideEncryption != types.ServerSideEncryptionAes256 {
		t.Errorf("SSE = %q, want AES256", out.ServerSideEncryption)
	}
}

func TestRequireSSE(t *testing.T) {
	srv := start(t, s3local.Options{Dir: t.TempDir(), Buckets: []string{bucket}, RequireSSE: true})
	c := client(srv.URL(), nil)
	_, err := c.PutObject(t.Context(), &s3.PutObjectInput{
		Bucket: aws.String(bucket), Key: aws.String("plain"), Body: strings.NewReader("x"),
	})
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "AccessDenied" {
		t.Fatalf("put without SSE: err = %v, want AccessDenied", err)
	}
	_, err = c.CreateMultipartUpload(t.Context(), &s3.CreateMultipartUploadInput{
		Bucket: aws.String(bucket), Key: aws.String("plain"),
	})
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "AccessDenied" {
		t.Fatalf("multipart without SSE: err = %v, want AccessDenied", err)
	}
	put(t, c, "encrypted", strings.NewReader("x"))
}

// TestAWSChunkedFromSDK makes the real SDK send an aws-chunked body with a
// trailing checksum: it does so only over HTTPS and for unseekable bodies,
// hence the TLS proxy in front of s3local.
func TestAWSChunkedFromSDK(t *testing.T) {
	srv := start(t, s3local.Options{Dir: t.TempDir(), Buckets: []string{bucket}})
	target, _ := url.Parse(srv.URL())
	var sawChunked bool
	proxy := httputil.NewSingleHostReverseProxy(target)
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut && strings.Contains(r.Header.Get("Content-Encoding"), "aws-chunked") {
			sawChunked = true
		}
		proxy.ServeHTTP(w, r)
	}))
	defer tlsSrv.Close()

	c := client(tlsSrv.URL, tlsSrv.Client())
	payload := bytes.Repeat([]byte("chunked payload "), 10_000)
	_, err := c.PutObject(t.Context(), &s3.PutObjectInput{
		Bucket: aws.String(bucket), Key: aws.String("chunked"),
		Body:                 io.MultiReader(bytes.NewReader(payload)), // hide Seek
		ContentLength:        aws.Int64(int64(len(payload))),
		ServerSideEncryption: types.ServerSideEncryptionAes256,
	})
	if err != nil {
		t.Fatalf("put: %v", err)
	}
	if !sawChunked {
		t.Fatal("SDK did not use aws-chunked; the test no longer covers the decoder")
	}
	out, body := get(t, client(srv.URL(), nil), "chunked")
	if !bytes.Equal(body, payload) {
		t.Fatalf("stored %d bytes, want the %d-byte payload", len(body), len(payload))
	}
	if out.ContentEncoding != nil {
		t.Errorf("Content-Encoding persisted: %q", *out.ContentEncoding)
	}
}

func TestAWSChunkedRaw(t *testing.T) {
	srv := start(t, s3local.Options{Dir: t.TempDir(), Buckets: []string{bucket}})
	sig := ";chunk-signature=" + strings.Repeat("0", 64)
	for _, tc := range []struct {
		name, sha, body, decodedLen, encoding string
		wantStatus                            int
		want                                  string
	}{
		{
			name: "signed with trailer", sha: "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
			body:       "5" + sig + "\r\nhello\r\n6" + sig + "\r\n world\r\n0" + sig + "\r\nx-amz-checksum-crc32:AAAAAA==\r\nx-amz-trailer-signature:abc\r\n\r\n",
			decodedLen: "11", encoding: "aws-chunked", wantStatus: 200, want: "hello world",
		},
		{
			name: "unsigned trailer, other encoding kept", sha: "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
			body:       "3\r\nabc\r\n0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n",
			decodedLen: "3", encoding: "gzip,aws-chunked", wantStatus: 200, want: "abc",
		},
		{
			name: "truncated", sha: "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
			body:       "5\r\nhel",
			decodedLen: "5", encoding: "aws-chunked", wantStatus: 500,
		},
		{
			name: "length mismatch", sha: "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
			body:       "3\r\nabc\r\n0\r\n\r\n",
			decodedLen: "4", encoding: "aws-chunked", wantStatus: 500,
		},
		{
			name: "missing decoded length", sha: "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
			body: "3\r\nabc\r\n0\r\n\r\n", encoding: "aws-chunked", wantStatus: 400,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := strings.ReplaceAll(tc.name, " ", "-")
			c := client(srv.URL(), nil)
			if tc.wantStatus != 200 {
				// A failed upload must leave the previous version intact.
				put(t, c, key, strings.NewReader("previous"))
			}
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodPut, srv.URL()+"/"+bucket+"/"+key, strings.NewReader(tc.body))
			req.Header.Set("X-Amz-Content-Sha256", tc.sha)
			req.Header.Set("Content-Encoding", tc.encoding)
			if tc.decodedLen != "" {
				req.Header.Set("X-Amz-Decoded-Content-Length", tc.decodedLen)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("put: %v", err)
			}
			msg, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, msg, tc.wantStatus)
			}
			out, body := get(t, c, key)
			if tc.wantStatus != 200 {
				if string(body) != "previous" {
					t.Fatalf("after rejected upload body = %q, want the previous version", body)
				}
				return
			}
			if string(body) != tc.want {
				t.Fatalf("body = %q, want %q", body, tc.want)
			}
			if enc := aws.ToString(out.ContentEncoding); strings.Contains(enc, "aws-chunked") {
				t.Errorf("Content-Encoding = %q still names aws-chunked", enc)
			}
		})
	}
}

func TestRejectsKeysTheFilesystemWouldAlias(t *testing.T) {
	srv := start(t, s3local.Options{Dir: t.TempDir(), Buckets: []string{bucket, "other"}})
	for _, key := range []string{"a/../b", "../other/x", "a//b", "dir/", "./a"} {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPut, srv.URL()+"/"+bucket+"/"+key, strings.NewReader("x"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("put %q: %v", key, err)
		}
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(msg), "InvalidArgument") {
			t.Errorf("put %q: status %d (%s), want 400 InvalidArgument", key, resp.StatusCode, msg)
		}
	}
}

func TestMemoryModeServesTheSameAPI(t *testing.T) {
	srv, err := s3local.Start(context.Background(), s3local.Options{Dir: t.TempDir(), Buckets: []string{"mem"}, RequireSSE: true, Memory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close(context.Background())
	client := s3.NewFromConfig(aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("k", "s", "")}, func(o *s3.Options) {
		o.BaseEndpoint = aws.String(srv.URL())
		o.UsePathStyle = true
		o.HTTPClient = sdkhttp.Wrap(nil)
	})
	_, err = client.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String("mem"), Key: aws.String("a/b.txt"),
		Body: strings.NewReader("hello"), ServerSideEncryption: types.ServerSideEncryptionAes256})
	if err != nil {
		t.Fatal(err)
	}
	out, err := client.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String("mem"), Key: aws.String("a/b.txt")})
	if err != nil {
		t.Fatal(err)
	}
	defer out.Body.Close()
	if b, _ := io.ReadAll(out.Body); string(b) != "hello" {
		t.Fatalf("got %q", b)
	}
}
