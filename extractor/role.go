package extractor

import (
	"context"
	"time"

	"github.com/aiprism/prism/extractor/extract"
	"github.com/aiprism/prism/extractor/ooxml"
	"github.com/aiprism/prism/extractor/pdf"
	"github.com/aiprism/prism/extractor/sandbox"
	"github.com/aiprism/prism/extractor/xlsx"
	"github.com/aiprism/prism/platform/config"
	"github.com/aiprism/prism/streams"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Config is the extractor role's configuration.
type Config struct {
	Concurrency int // documents extracted at once, each in its own worker process
	Limits      Limits

	// WorkerCommand runs a worker (default: this executable with
	// "extract-worker").
	WorkerCommand []string
	// WASMCacheDir caches the compiled PDFium module.
	WASMCacheDir string
	// TmpDir is the workers' temporary directory.
	TmpDir string
	// WorkerGOMAXPROCS is GOMAXPROCS inside each worker.
	WorkerGOMAXPROCS int
	// WorkersReady is how many workers wait started for their document.
	WorkersReady int
	// WorkerDocs is how many documents one worker serves in turn.
	WorkerDocs int
	// InProcessTextBytes: plain text up to this size is decoded in this
	// process instead of a worker (EXTRACTOR_INPROCESS_TEXT_BYTES).
	InProcessTextBytes int64
}

// Limits bound what one document may cost. Zero fields take defaults.
type Limits struct {
	MaxInputBytes int64 // originals larger than this are rejected
	MaxChars      int   // extracted text is cut here and flagged truncated

	Timeout     time.Duration // wall clock per document (the worker is killed)
	MemoryBytes int64         // the worker's RLIMIT_DATA

	MaxZipEntries    int   // entries in a DOCX/XLSX archive
	MaxEntryBytes    int64 // inflated size of one entry
	MaxInflatedBytes int64 // inflated size of all entries
	MaxZipRatio      int64 // inflated:compressed ratio of an entry over 1 MiB
	MaxXMLDepth      int   // element nesting in OOXML parts
	MaxPDFPages      int
	MaxPDFObjects    int
	MaxSheets        int
}

func (l Limits) withDefaults() Limits {
	d := extract.DefaultLimits()
	if l.MaxInputBytes <= 0 {
		l.MaxInputBytes = d.MaxInputBytes
	}
	if l.MaxChars <= 0 {
		l.MaxChars = d.MaxChars
	}
	return l
}

func (l Limits) extract() extract.Limits {
	return extract.Limits{
		MaxInputBytes: l.MaxInputBytes,
		MaxChars:      l.MaxChars,
		Zip: ooxml.Limits{
			MaxEntries:    l.MaxZipEntries,
			MaxEntryBytes: l.MaxEntryBytes,
			MaxTotalBytes: l.MaxInflatedBytes,
			MaxRatio:      l.MaxZipRatio,
			MaxDepth:      l.MaxXMLDepth,
		},
		PDF:  pdf.Limits{MaxPages: l.MaxPDFPages, MaxObjects: l.MaxPDFObjects},
		XLSX: xlsx.Limits{MaxSheets: l.MaxSheets},
	}.WithDefaults()
}

// ConfigFromEnv reads the EXTRACTOR_* variables:
//
//	EXTRACTOR_CONCURRENCY          documents at once (worker processes), default 4
//	EXTRACTOR_MAX_INPUT_BYTES      largest original, default 100MiB
//	EXTRACTOR_MAX_CHARS            output cap in characters, default 2000000
//	EXTRACTOR_TIMEOUT              wall clock per document, default 60s
//	EXTRACTOR_MEMORY_BYTES         worker memory (RLIMIT_DATA), default 1GiB
//	EXTRACTOR_MAX_ZIP_ENTRIES      default 5000
//	EXTRACTOR_MAX_ENTRY_BYTES      inflated size of one entry, default 256MiB
//	EXTRACTOR_MAX_INFLATED_BYTES   inflated size of a package, default 512MiB
//	EXTRACTOR_MAX_ZIP_RATIO        inflated:compressed per entry, default 200
//	EXTRACTOR_MAX_XML_DEPTH        default 256
//	EXTRACTOR_MAX_PDF_PAGES        default 2000
//	EXTRACTOR_MAX_PDF_OBJECTS      default 2000000
//	EXTRACTOR_MAX_SHEETS           default 500
//	EXTRACTOR_WASM_CACHE_DIR       compiled PDFium, default <user cache>/prism/pdfium-wazero
//	EXTRACTOR_TMPDIR               workers' temporary files, default the system's
//	EXTRACTOR_WORKER_GOMAXPROCS    default 1
//	EXTRACTOR_WORKERS_READY        workers started ahead of their document, default 2
//	EXTRACTOR_WORKER_DOCS          documents one worker serves in turn, default 32
//	                               (1: a process per document; each document gets
//	                               a fresh PDFium instance either way)
func ConfigFromEnv(l *config.Loader) Config {
	d := extract.DefaultLimits()
	return Config{
		Concurrency: l.Int("EXTRACTOR_CONCURRENCY", 4, 1, 256),
		Limits: Limits{
			MaxInputBytes:    l.Int64("EXTRACTOR_MAX_INPUT_BYTES", d.MaxInputBytes, 1, 4<<30),
			MaxChars:         l.Int("EXTRACTOR_MAX_CHARS", d.MaxChars, 1000, 100_000_000),
			Timeout:          l.Duration("EXTRACTOR_TIMEOUT", 60*time.Second, time.Second, time.Hour),
			MemoryBytes:      l.Int64("EXTRACTOR_MEMORY_BYTES", 1<<30, 128<<20, 64<<30),
			MaxZipEntries:    l.Int("EXTRACTOR_MAX_ZIP_ENTRIES", d.Zip.MaxEntries, 10, 1_000_000),
			MaxEntryBytes:    l.Int64("EXTRACTOR_MAX_ENTRY_BYTES", d.Zip.MaxEntryBytes, 1<<20, 16<<30),
			MaxInflatedBytes: l.Int64("EXTRACTOR_MAX_INFLATED_BYTES", d.Zip.MaxTotalBytes, 1<<20, 64<<30),
			MaxZipRatio:      l.Int64("EXTRACTOR_MAX_ZIP_RATIO", d.Zip.MaxRatio, 10, 100_000),
			MaxXMLDepth:      l.Int("EXTRACTOR_MAX_XML_DEPTH", d.Zip.MaxDepth, 16, 10_000),
			MaxPDFPages:      l.Int("EXTRACTOR_MAX_PDF_PAGES", d.PDF.MaxPages, 1, 1_000_000),
			MaxPDFObjects:    l.Int("EXTRACTOR_MAX_PDF_OBJECTS", d.PDF.MaxObjects, 100, 100_000_000),
			MaxSheets:        l.Int("EXTRACTOR_MAX_SHEETS", d.XLSX.MaxSheets, 1, 100_000),
		},
		WASMCacheDir:     l.String("EXTRACTOR_WASM_CACHE_DIR", ""),
		TmpDir:           l.String("EXTRACTOR_TMPDIR", ""),
		WorkerGOMAXPROCS: l.Int("EXTRACTOR_WORKER_GOMAXPROCS", 1, 1, 64),
		WorkersReady:     l.Int("EXTRACTOR_WORKERS_READY", 2, 0, 64),
		// A worker's start (process and PDFium: ~0.2 s of CPU) costs more
		// than most documents; a worker is retired after its quota, after
		// any failed document and when it holds much memory.
		WorkerDocs: l.Int("EXTRACTOR_WORKER_DOCS", 32, 1, 10_000),
		// Plain text up to this size is decoded in process (see
		// PlainTextInProcess); 0 sends every document to the sandbox.
		InProcessTextBytes: l.Int64("EXTRACTOR_INPROCESS_TEXT_BYTES", 1<<20, 0, 64<<20),
	}
}

// sandboxConfig maps the role configuration onto the sandbox.
func sandboxConfig(cfg Config) sandbox.Config {
	return sandbox.Config{
		Command:      cfg.WorkerCommand,
		Workers:      max(cfg.Concurrency, 1),
		Timeout:      cfg.Limits.Timeout,
		MemoryBytes:  cfg.Limits.MemoryBytes,
		WASMCacheDir: cfg.WASMCacheDir,
		TmpDir:       cfg.TmpDir,
		GOMAXPROCS:   cfg.WorkerGOMAXPROCS,
		Ready:        cfg.WorkersReady,
		MaxDocs:      cfg.WorkerDocs,
		Limits:       cfg.Limits.withDefaults().extract(),
	}
}

// NewSandbox builds the sandbox the role runs documents in.
func NewSandbox(cfg Config) (*sandbox.Sandbox, error) { return sandbox.New(sandboxConfig(cfg)) }

// Deps are what the extractor role works with, opened by its caller.
type Deps struct {
	JS       jetstream.JetStream
	Objects  Objects
	Registry prometheus.Registerer
	Log      zerolog.Logger
}

// Role is the extractor role: configured, wired, and started by Run.
type Role struct {
	cfg Config
	d   Deps
}

// NewRole returns the extractor role. It starts nothing: Run owns every
// process and subscription it opens.
func NewRole(cfg Config, d Deps) *Role { return &Role{cfg: cfg, d: d} }

// Run consumes document.uploaded until ctx ends. It compiles PDFium into
// the cache in the background first, so the first PDF does not pay for it
// under its deadline.
func (r *Role) Run(ctx context.Context) error {
	cfg, js, log := r.cfg, r.d.JS, r.d.Log
	sb, err := NewSandbox(cfg)
	if err != nil {
		return err
	}
	defer sb.Close()
	go func() {
		if err := sb.Warm(ctx); err != nil && ctx.Err() == nil {
			log.Warn().Err(err).Msg("could not pre-compile PDFium; the first PDF will compile it")
		}
	}()
	pub := streams.NewPublisher(js, "/prism/extractor")
	x := &PlainTextInProcess{Next: sb, Limits: cfg.Limits.withDefaults().extract(), MaxBytes: cfg.InProcessTextBytes}
	stage := NewStage(r.d.Objects, pub, cfg.Limits, x, WithJetStream(js))
	return streams.Run(ctx, js, streams.ExtractorConsumer, stage.Handle, streams.RunnerOptions{
		Concurrency: cfg.Concurrency,
		Log:         log,
		Publisher:   pub,
		Metrics:     streams.NewRunnerMetrics(r.d.Registry),
	})
}
