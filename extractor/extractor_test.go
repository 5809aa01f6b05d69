package extractor

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aiprism/prism/extractor/corpus"
	"github.com/aiprism/prism/extractor/sandbox"
	"github.com/aiprism/prism/extractor/worker"
	"github.com/aiprism/prism/platform/blob"
	"github.com/aiprism/prism/platform/config"
	"github.com/aiprism/prism/platform/testenv"
	"github.com/aiprism/prism/streams"
)

// The test binary is also the worker, as `prism extract-worker` is in
// production.
func TestMain(m *testing.M) {
	if os.Getenv("PRISM_EXTRACT_WORKER") == "1" {
		if err := worker.Main(context.Background(), os.Stdin, os.Stdout, os.Getenv); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func testSandbox(t *testing.T, limits Limits) *sandbox.Sandbox {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cfg := sandboxConfig(Config{Concurrency: 2, Limits: limits, WorkerCommand: []string{exe},
		WASMCacheDir: filepath.Join(os.TempDir(), "prism-extractor-test-wazero"), TmpDir: t.TempDir()})
	cfg.Env = []string{"PRISM_EXTRACT_WORKER=1"}
	sb, err := sandbox.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return sb
}

// upload stores raw as an original and returns its uploaded event.
func upload(t *testing.T, ctx context.Context, store *blob.Store, doc string, raw []byte) *streams.Event {
	t.Helper()
	key := blob.Key("alice", doc, "upload.bin", time.Now())
	put, err := store.Put(ctx, key, bytes.NewReader(raw), int64(len(raw)), "application/octet-stream")
	if err != nil {
		t.Fatal(err)
	}
	ev, err := streams.NewEvent("/test", streams.Meta{Owner: "alice", DocumentID: doc, Run: 1}, streams.Uploaded, "", streams.UploadedData{
		Original: streams.ObjectRef{Key: put.Key, Size: put.Size, SHA256: put.SHA256},
		Filename: "upload.bin", ContentType: "application/pdf", // a lie: the type is decided by content
	})
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func TestStage(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, _, js := testenv.NATS(t)
	if err := streams.Setup(ctx, js, streams.DefaultTopology()); err != nil {
		t.Fatal(err)
	}
	store := testenv.S3(t)
	pub := streams.NewPublisher(js, "/prism/extractor")
	stage := NewStage(store, pub, Limits{}, testSandbox(t, Limits{}))

	t.Run("docx", func(t *testing.T) {
		ev := upload(t, ctx, store, "doc-docx", corpus.ReadFile(t, "protokoll-lenkungskreis/protokoll-lenkungskreis.libreoffice.docx"))
		if err := stage.Handle(ctx, ev); err != nil {
			t.Fatal(err)
		}
		f, err := streams.Follow(ctx, js, streams.DocumentFilter("alice", "doc-docx"), 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		var got streams.ExtractedData
		for {
			e, err := f.Next(ctx, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if e.EventKind() == streams.Extracted {
				if err := e.Decode(&got); err != nil {
					t.Fatal(err)
				}
				break
			}
		}
		if got.Format != "docx" || got.Language != "de" || got.Words < 100 || got.Chars < 500 || got.Truncated || got.Title == "" || got.Author == "" {
			t.Fatalf("extracted = %+v", got)
		}
		rc, _, err := store.Get(ctx, got.Text.Key)
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		text, _ := io.ReadAll(rc)
		sum := sha256.Sum256(text)
		if got.Text.SHA256 != hex.EncodeToString(sum[:]) || !corpus.NewMatcher(string(text)).Contains("Lenkungskreis") {
			t.Fatalf("stored text %.200q", text)
		}
	})

	t.Run("hostile", func(t *testing.T) {
		for file, class := range map[string]string{
			"hostile/zip-bomb-understated-size.docx": "zip-bomb",
			"hostile/scanned-image-only.pdf":         "needs-ocr",
			"hostile/legacy-word97-named.docx":       "legacy-format",
		} {
			ev := upload(t, ctx, store, "doc-hostile", corpus.ReadFile(t, file))
			err := stage.Handle(ctx, ev)
			var pe *streams.PermanentError
			if !errors.As(err, &pe) || pe.Class != class {
				t.Errorf("%s: %v, want permanent %s", file, err, class)
			}
		}
	})

	t.Run("too large", func(t *testing.T) {
		small := NewStage(store, pub, Limits{MaxInputBytes: 10}, testSandbox(t, Limits{MaxInputBytes: 10}))
		ev := upload(t, ctx, store, "doc-big", []byte("more than ten bytes of text"))
		var pe *streams.PermanentError
		if err := small.Handle(ctx, ev); !errors.As(err, &pe) || pe.Class != "too-large" {
			t.Fatalf("got %v", err)
		}
	})
}

func TestConfigFromEnv(t *testing.T) {
	l := config.New(config.MapEnv(map[string]string{
		"EXTRACTOR_CONCURRENCY":    "3",
		"EXTRACTOR_TIMEOUT":        "90s",
		"EXTRACTOR_MEMORY_BYTES":   "512MiB",
		"EXTRACTOR_MAX_ZIP_RATIO":  "50",
		"EXTRACTOR_MAX_PDF_PAGES":  "100",
		"EXTRACTOR_WASM_CACHE_DIR": "/var/cache/prism",
	}))
	cfg := ConfigFromEnv(l)
	if err := l.Err(); err != nil {
		t.Fatal(err)
	}
	sc := sandboxConfig(cfg)
	if sc.Workers != 3 || sc.Timeout != 90*time.Second || sc.MemoryBytes != 512<<20 || sc.Limits.Zip.MaxRatio != 50 ||
		sc.Limits.PDF.MaxPages != 100 || sc.WASMCacheDir != "/var/cache/prism" || sc.Limits.MaxChars != 2_000_000 || sc.Limits.Zip.MaxEntries != 5000 {
		t.Fatalf("sandbox config = %+v", sc)
	}
	bad := config.New(config.MapEnv(map[string]string{"EXTRACTOR_MAX_XML_DEPTH": "1"}))
	ConfigFromEnv(bad)
	if bad.Err() == nil {
		t.Fatal("a depth cap of 1 was accepted")
	}
}
