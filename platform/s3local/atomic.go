package s3local

import (
	"fmt"
	"io"
	"os"

	"github.com/johannesboyne/gofakes3"
)

// spoolBackend makes uploads all-or-nothing. s3afero writes the request
// body straight into the object's file, so a client that disconnects (or a
// malformed aws-chunked body) would leave a truncated object in place of
// the previous one. Spooling to a temporary file first means the backend
// only ever copies a complete local file.
type spoolBackend struct {
	gofakes3.Backend
	tmpDir string
}

func (b *spoolBackend) PutObject(bucket, key string, meta map[string]string, input io.Reader, size int64, cond *gofakes3.PutConditions) (gofakes3.PutObjectResult, error) {
	f, err := os.CreateTemp(b.tmpDir, "upload-*")
	if err != nil {
		return gofakes3.PutObjectResult{}, fmt.Errorf("s3local: spool upload: %w", err)
	}
	defer func() {
		_ = f.Close()
		_ = os.Remove(f.Name())
	}()
	n, err := io.Copy(f, input)
	if err != nil {
		return gofakes3.PutObjectResult{}, fmt.Errorf("s3local: receive %s/%s: %w", bucket, key, err)
	}
	if n != size {
		return gofakes3.PutObjectResult{}, fmt.Errorf("s3local: receive %s/%s: got %d bytes, Content-Length %d", bucket, key, n, size)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return gofakes3.PutObjectResult{}, fmt.Errorf("s3local: spool upload: %w", err)
	}
	return b.Backend.PutObject(bucket, key, meta, f, size, cond)
}
