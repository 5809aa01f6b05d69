// Package blob is the S3 claim-check store shared by every role: ingest
// puts uploaded originals, extractor puts extracted text, api streams them
// back. Messages on NATS carry only keys; the bytes live here.
//
// Every write requests server-side encryption (Config.SSE), uploads stream
// with bounded memory, and each Put reports the SHA-256 of what was
// stored so callers can record it alongside the key.
//
// # Environment
//
// ConfigFromEnv reads:
//
//	S3_BUCKET             bucket name (required)
//	S3_REGION             AWS region (default us-east-1)
//	S3_ENDPOINT           custom endpoint URL, e.g. s3local or MinIO (default: AWS)
//	S3_ACCESS_KEY_ID      static credentials, together with S3_SECRET_ACCESS_KEY
//	S3_SECRET_ACCESS_KEY  (default: the AWS credential chain)
//	S3_USE_PATH_STYLE     true/false (default: true when S3_ENDPOINT is set)
//	S3_SSE                AES256 (default) or aws:kms
//	S3_KMS_KEY_ID         KMS key for aws:kms (default: the AWS managed key)
//
// # Checksums
//
// The client keeps the SDK's default checksum behaviour in every
// environment (CRC32 on requests, validation of responses). Over HTTPS the
// SDK may send aws-chunked bodies with trailing checksums; package s3local
// decodes those rather than having this package switch checksums off for
// local endpoints, so dev and production run the same client code.
package blob

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/aiprism/prism/platform/sdkhttp"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// ErrNotFound is returned (wrapped) by Get, GetRange and Head when the key
// does not exist. Test with errors.Is.
var ErrNotFound = errors.New("object not found")

// Upload sizing. Objects up to partSize are sent with one PutObject from
// memory; larger or unknown-size bodies go through multipart upload, one
// part in memory at a time.
const (
	partSize     = 8 << 20
	maxParts     = 10_000
	maxKeyBytes  = 1024
	abortTimeout = 30 * time.Second
)

// Store reads and writes objects in one bucket.
type Store struct {
	client *s3.Client
	bucket string
	sse    types.ServerSideEncryption
	kmsKey *string
}

// PutResult describes a stored object.
type PutResult struct {
	Key    string
	Size   int64
	SHA256 string // hex SHA-256 of the bytes read from the caller
	ETag   string // without quotes; not a content hash for multipart uploads
}

// Info is object metadata.
type Info struct {
	Key          string
	Size         int64 // size of the whole object, also for GetRange
	ContentType  string
	ETag         string // without quotes
	LastModified time.Time
	SSE          string // server-side encryption reported by S3, e.g. AES256
}

// New builds a Store. It does not contact S3; use Ping for readiness.
func New(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.SSE == "" {
		cfg.SSE = SSEAES256
	}
	if err := cfg.validate(goNames); err != nil {
		return nil, fmt.Errorf("blob: invalid config: %w", err)
	}
	loadOpts := []func(*awsconfig.LoadOptions) error{awsconfig.WithRegion(cfg.Region)}
	if cfg.AccessKeyID != "" {
		loadOpts = append(loadOpts, awsconfig.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(cfg.AccessKeyID, cfg.SecretAccessKey, "")))
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx, loadOpts...)
	if err != nil {
		return nil, fmt.Errorf("blob: load AWS configuration: %w", err)
	}
	awsCfg.HTTPClient = sdkhttp.Wrap(awsCfg.HTTPClient)
	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		o.UsePathStyle = cfg.UsePathStyle
		// Objects without a full-object checksum (multipart uploads, or
		// any object on s3local) are normal here; do not log each GET.
		o.DisableLogOutputChecksumValidationSkipped = true
	})
	s := &Store{client: client, bucket: cfg.Bucket, sse: types.ServerSideEncryption(cfg.SSE)}
	if cfg.KMSKeyID != "" {
		s.kmsKey = aws.String(cfg.KMSKeyID)
	}
	return s, nil
}

// Bucket returns the bucket name, for logs and error messages.
func (s *Store) Bucket() string { return s.bucket }

// Ping checks that the bucket is reachable with the configured
// credentials (HeadBucket); meant for /readyz.
func (s *Store) Ping(ctx context.Context) error {
	if _, err := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: &s.bucket}); err != nil {
		return fmt.Errorf("blob: bucket %s not reachable: %w", s.bucket, err)
	}
	return nil
}

// EnsureBucket creates the bucket if it does not exist. Only dev and tests
// call it; production buckets are provisioned with their policies.
func (s *Store) EnsureBucket(ctx context.Context) error {
	_, err := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: &s.bucket})
	if err == nil {
		return nil
	}
	if !isNotFound(err) {
		return fmt.Errorf("blob: check bucket %s: %w", s.bucket, err)
	}
	in := &s3.CreateBucketInput{Bucket: &s.bucket}
	if region := s.client.Options().Region; region != "us-east-1" {
		// us-east-1 is the one region that rejects an explicit constraint.
		in.CreateBucketConfiguration = &types.CreateBucketConfiguration{
			LocationConstraint: types.BucketLocationConstraint(region),
		}
	}
	if _, err := s.client.CreateBucket(ctx, in); err != nil {
		var owned *types.BucketAlreadyOwnedByYou
		if errors.As(err, &owned) {
			return nil // created concurrently
		}
		return fmt.Errorf("blob: create bucket %s: %w", s.bucket, err)
	}
	return nil
}

// Put stores r under key with server-side encryption. size is the exact
// body length, or -1 if unknown; a body shorter or longer than a known size
// is an error and nothing is stored. Bodies up to 8 MiB are sent with one
// PutObject, carrying our SHA-256 so S3 verifies what it stored; larger or
// unknown-size bodies use a multipart upload that holds one part (8 MiB,
// more only beyond 80 GB) in memory at a time. contentType defaults to
// application/octet-stream.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) (PutResult, error) {
	if err := checkKey(key); err != nil {
		return PutResult{}, fmt.Errorf("blob: put: %w", err)
	}
	if contentType == "" {
		contentType = "application/octet-stream"
	}
	if size >= 0 {
		r = &exactReader{r: r, remain: size}
	}
	h := &countingHash{Hash: sha256.New()}
	body := io.TeeReader(r, h)

	part := int64(partSize)
	if size/maxParts >= part {
		part = size/maxParts + 1
	}
	// The first part decides: a body that ends within it is small.
	first := part
	if size >= 0 && size < part {
		first = size
	}
	var buf partBuffer
	n, err := buf.fill(body, first)
	if err != nil {
		return PutResult{}, fmt.Errorf("blob: put %s: read body: %w", key, err)
	}
	var etag string
	if n < part || n == size {
		if err := expectEOF(body); err != nil {
			return PutResult{}, fmt.Errorf("blob: put %s: read body: %w", key, err)
		}
		etag, err = s.putObject(ctx, key, buf.reader(), h.Sum(nil), contentType)
	} else {
		etag, err = s.putMultipart(ctx, key, &buf, body, part, contentType)
	}
	if err != nil {
		return PutResult{}, fmt.Errorf("blob: put %s: %w", key, err)
	}
	return PutResult{Key: key, Size: h.n, SHA256: hex.EncodeToString(h.Sum(nil)), ETag: etag}, nil
}

func (s *Store) putObject(ctx context.Context, key string, body *io.SectionReader, sum []byte, contentType string) (string, error) {
	out, err := s.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket:               &s.bucket,
		Key:                  &key,
		Body:                 body,
		ContentLength:        aws.Int64(body.Size()),
		ContentType:          &contentType,
		ChecksumSHA256:       aws.String(base64.StdEncoding.EncodeToString(sum)),
		ServerSideEncryption: s.sse,
		SSEKMSKeyId:          s.kmsKey,
	})
	if err != nil {
		return "", err
	}
	return unquote(out.ETag), nil
}

// putMultipart uploads the part buf holds and then the rest of body in
// parts of size part, one at a time through buf, aborting the upload on
// any failure so no orphaned parts accrue storage charges.
func (s *Store) putMultipart(ctx context.Context, key string, buf *partBuffer, body io.Reader, part int64, contentType string) (etag string, err error) {
	created, err := s.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket:               &s.bucket,
		Key:                  &key,
		ContentType:          &contentType,
		ChecksumAlgorithm:    types.ChecksumAlgorithmCrc32,
		ServerSideEncryption: s.sse,
		SSEKMSKeyId:          s.kmsKey,
	})
	if err != nil {
		return "", fmt.Errorf("start multipart upload: %w", err)
	}
	defer func() {
		if err == nil {
			return
		}
		// Abort even if ctx was cancelled, but not forever.
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), abortTimeout)
		defer cancel()
		if _, aerr := s.client.AbortMultipartUpload(actx, &s3.AbortMultipartUploadInput{
			Bucket: &s.bucket, Key: &key, UploadId: created.UploadId,
		}); aerr != nil {
			err = errors.Join(err, fmt.Errorf("abort multipart upload: %w", aerr))
		}
	}()

	var parts []types.CompletedPart
	for num := int32(1); buf.n > 0; num++ {
		if num > maxParts {
			return "", fmt.Errorf("body exceeds %d parts of %d bytes; pass the size to Put", maxParts, part)
		}
		out, err := s.client.UploadPart(ctx, &s3.UploadPartInput{
			Bucket:            &s.bucket,
			Key:               &key,
			UploadId:          created.UploadId,
			PartNumber:        aws.Int32(num),
			Body:              buf.reader(),
			ContentLength:     aws.Int64(buf.n),
			ChecksumAlgorithm: types.ChecksumAlgorithmCrc32,
		})
		if err != nil {
			return "", fmt.Errorf("upload part %d: %w", num, err)
		}
		parts = append(parts, types.CompletedPart{
			PartNumber:    aws.Int32(num),
			ETag:          out.ETag,
			ChecksumCRC32: out.ChecksumCRC32,
		})
		if _, err := buf.fill(body, part); err != nil {
			return "", fmt.Errorf("read body: %w", err)
		}
	}
	done, err := s.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket:          &s.bucket,
		Key:             &key,
		UploadId:        created.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
	})
	if err != nil {
		return "", fmt.Errorf("complete multipart upload: %w", err)
	}
	return unquote(done.ETag), nil
}

// Get streams the object. The caller must close the reader. A missing key
// yields an error matching ErrNotFound.
func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, Info, error) {
	return s.get(ctx, "get", key, nil)
}

// GetRange streams length bytes starting at offset (fewer if the object
// ends first), e.g. for resumable downloads or paging through text.
// Info.Size is the size of the whole object. An offset at or past the end
// is an error from S3 (InvalidRange).
func (s *Store) GetRange(ctx context.Context, key string, offset, length int64) (io.ReadCloser, Info, error) {
	if offset < 0 || length <= 0 {
		return nil, Info{}, fmt.Errorf("blob: get %s: invalid range offset %d length %d", key, offset, length)
	}
	rng := "bytes=" + strconv.FormatInt(offset, 10) + "-" + strconv.FormatInt(offset+length-1, 10)
	return s.get(ctx, "get range of", key, &rng)
}

func (s *Store) get(ctx context.Context, op, key string, rng *string) (io.ReadCloser, Info, error) {
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.bucket, Key: &key, Range: rng})
	if err != nil {
		return nil, Info{}, s.wrapErr(op, key, err)
	}
	size := aws.ToInt64(out.ContentLength)
	if total, ok := totalFromContentRange(aws.ToString(out.ContentRange)); ok {
		size = total
	}
	return out.Body, objectInfo(key, size, out.ContentType, out.ETag, out.LastModified, out.ServerSideEncryption), nil
}

// Head returns metadata without the body. A missing key yields an error
// matching ErrNotFound.
func (s *Store) Head(ctx context.Context, key string) (Info, error) {
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.bucket, Key: &key})
	if err != nil {
		return Info{}, s.wrapErr("head", key, err)
	}
	return objectInfo(key, aws.ToInt64(out.ContentLength), out.ContentType, out.ETag, out.LastModified, out.ServerSideEncryption), nil
}

func objectInfo(key string, size int64, contentType, etag *string, modified *time.Time, sse types.ServerSideEncryption) Info {
	return Info{
		Key:          key,
		Size:         size,
		ContentType:  aws.ToString(contentType),
		ETag:         unquote(etag),
		LastModified: aws.ToTime(modified),
		SSE:          string(sse),
	}
}

// Delete removes the object. Deleting a missing key succeeds, so retries
// and cleanup jobs need no special cases.
func (s *Store) Delete(ctx context.Context, key string) error {
	_, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &s.bucket, Key: &key})
	if err != nil && !isNotFound(err) {
		return s.wrapErr("delete", key, err)
	}
	return nil
}

func (s *Store) wrapErr(op, key string, err error) error {
	if isNotFound(err) {
		return fmt.Errorf("blob: %s %s/%s: %w", op, s.bucket, key, ErrNotFound)
	}
	return fmt.Errorf("blob: %s %s/%s: %w", op, s.bucket, key, err)
}

// isNotFound recognises a missing key: NoSuchKey from GET, a bodiless 404
// from HEAD. NoSuchBucket is deliberately not included: it is a
// configuration error, not a missing document.
func isNotFound(err error) bool {
	var noKey *types.NoSuchKey
	var notFound *types.NotFound
	if errors.As(err, &noKey) || errors.As(err, &notFound) {
		return true
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode() {
		case "NoSuchKey", "NotFound":
			return true
		case "NoSuchBucket":
			return false
		}
	}
	var respErr *smithyhttp.ResponseError
	return errors.As(err, &respErr) && respErr.HTTPStatusCode() == 404 && apiErr == nil
}

func checkKey(key string) error {
	switch {
	case key == "":
		return errors.New("empty key")
	case len(key) > maxKeyBytes:
		return fmt.Errorf("key is %d bytes, S3 allows %d", len(key), maxKeyBytes)
	case !utf8.ValidString(key):
		return fmt.Errorf("key %q is not valid UTF-8", key)
	}
	return nil
}

func unquote(etag *string) string { return strings.Trim(aws.ToString(etag), `"`) }

// totalFromContentRange parses the size from "bytes 0-9/1234".
func totalFromContentRange(v string) (int64, bool) {
	_, total, ok := strings.Cut(v, "/")
	if !ok || total == "*" {
		return 0, false
	}
	n, err := strconv.ParseInt(total, 10, 64)
	return n, err == nil
}

// countingHash is a hash that also counts the bytes written to it.
type countingHash struct {
	hash.Hash
	n int64
}

func (c *countingHash) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return c.Hash.Write(p)
}

var errTooLong = errors.New("body is longer than the declared size")

// exactReader enforces a declared body size: it fails if the body ends
// early or has bytes beyond the size, so a truncated or mismatched upload
// is never stored as complete.
type exactReader struct {
	r      io.Reader
	remain int64
}

func (e *exactReader) Read(p []byte) (int, error) {
	if e.remain == 0 {
		var one [1]byte
		n, err := io.ReadFull(e.r, one[:])
		switch {
		case n > 0:
			return 0, errTooLong
		case errors.Is(err, io.EOF):
			return 0, io.EOF
		default:
			return 0, err
		}
	}
	if int64(len(p)) > e.remain {
		p = p[:e.remain]
	}
	n, err := e.r.Read(p)
	e.remain -= int64(n)
	if errors.Is(err, io.EOF) {
		if e.remain > 0 {
			return n, fmt.Errorf("body ended %d bytes short of the declared size: %w", e.remain, io.ErrUnexpectedEOF)
		}
		err = nil // the next Read confirms there is nothing more
	}
	return n, err
}

// expectEOF confirms r has no more data.
func expectEOF(r io.Reader) error {
	var one [1]byte
	n, err := io.ReadFull(r, one[:])
	switch {
	case n > 0:
		return errTooLong
	case errors.Is(err, io.EOF):
		return nil
	default:
		return err
	}
}
