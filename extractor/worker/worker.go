// Package worker is the child side of sandboxed extraction: the
// `prism extract-worker` subcommand runs Main, which reads a request from
// stdin, extracts, writes one response to stdout, and waits for the next
// request until stdin ends.
//
// Why a separate process: parsers of hostile input fail in ways Go
// cannot recover from (stack overflow, out of memory, a runaway loop in a
// dependency). In a throw-away process those end this process only; the
// parent (extractor/sandbox) applies memory, CPU and wall-clock limits
// from outside and turns each kind of death into a clear reason. A
// process serves a few documents in turn (as Apache Tika's forked server
// does) because starting PDFium costs far more than a document: it is
// retired after its quota of documents, after any document that failed,
// and whenever it dies or is killed.
//
// Protocol (all integers decimal, JSON objects on one line):
//
//	parent -> child:  {"op":"extract","size":N,"limits":{...}}\n  then N bytes of the document
//	                  {"op":"warm"}\n                              (compile PDFium into the cache)
//	child -> parent:  {"ok":true,"result":{...},"text_bytes":M}\n  then M bytes of UTF-8 text
//	                  {"ok":false,"class":"zip-bomb","error":"..."}\n
//
// Requests follow one another on the same pipes; the parent closes stdin
// to end the worker. Nothing else may write to stdout in the worker
// process.
package worker

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/aiprism/prism/extractor/extract"
	"github.com/aiprism/prism/extractor/pdf"
	"github.com/aiprism/prism/extractor/reason"
)

// Environment variables the worker reads (through Main's env).
const (
	// EnvWASMCache is the directory of the compiled PDFium module.
	EnvWASMCache = "EXTRACTOR_WASM_CACHE_DIR"
	// EnvWASMMemory caps PDFium's linear memory in bytes.
	EnvWASMMemory = "EXTRACTOR_WASM_MEMORY_BYTES"
	// EnvPDFAtStart=1 starts PDFium before the first request, while the
	// worker waits (set by the parent for workers that serve several
	// documents once PDFs are coming).
	EnvPDFAtStart = "EXTRACTOR_PDF_AT_START"
)

// Ops of a request.
const (
	OpExtract = "extract"
	OpWarm    = "warm"
)

// Request is the first line the parent writes.
type Request struct {
	Op     string         `json:"op"`
	Size   int64          `json:"size,omitempty"`
	Limits extract.Limits `json:"limits"`
	// Last: the worker's last request; it ends after answering, without
	// readying itself for another.
	Last bool `json:"last,omitempty"`
}

// Response is the first line the child writes.
type Response struct {
	OK        bool            `json:"ok"`
	Class     string          `json:"class,omitempty"`
	Error     string          `json:"error,omitempty"`
	Result    *extract.Result `json:"result,omitempty"`
	TextBytes int             `json:"text_bytes,omitempty"`
}

// MaxRequestLine bounds the request header.
const MaxRequestLine = 64 << 10

// ExitCPULimit is the worker's exit status when its soft CPU limit
// (RLIMIT_CPU) is reached: 128 + SIGXCPU, as a shell reports a process
// that signal ended. The parent reads it as the CPU limit having fired.
const ExitCPULimit = 128 + int(syscall.SIGXCPU)

// ExitOnCPULimit makes the process exit with ExitCPULimit when SIGXCPU
// arrives, until stop is called. Go ignores SIGXCPU by default, so
// without this the soft limit, which the parent raises by one document's
// allowance before each document, would do nothing and only the hard
// limit (every document's allowance at once) would stop a runaway parser.
// A parser looping in Go is preempted for this; one looping inside
// PDFium's WebAssembly may not be, and the hard limit's SIGKILL ends it.
func ExitOnCPULimit() (stop func()) {
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGXCPU)
	done := make(chan struct{})
	go func() {
		select {
		case <-c:
			fmt.Fprintln(os.Stderr, "extract-worker: CPU time limit (RLIMIT_CPU) reached")
			os.Exit(ExitCPULimit)
		case <-done:
		}
	}()
	return func() {
		signal.Stop(c)
		close(done)
	}
}

// Main serves requests, one at a time, until stdin ends. It returns an
// error only when the protocol itself fails (bad request, broken pipe); a
// document that cannot be extracted is a normal response with ok=false.
// Each document starts clean: new limits, a fresh PDFium instance, an
// emptied temporary directory. The parent decides how many documents one
// process serves (sandbox.Config.MaxDocs) and ends it by closing stdin.
// When the soft CPU limit fires, the process exits (ExitOnCPULimit).
func Main(ctx context.Context, stdin io.Reader, stdout io.Writer, env func(string) string) error {
	defer ExitOnCPULimit()()
	cfg := pdf.EngineConfig{CacheDir: env(EnvWASMCache)}
	if v := env(EnvWASMMemory); v != "" {
		if _, err := fmt.Sscan(v, &cfg.MaxMemoryBytes); err != nil {
			return fmt.Errorf("extract-worker: %s=%q: %w", EnvWASMMemory, v, err)
		}
	}
	in := bufio.NewReaderSize(stdin, 64<<10)
	out := bufio.NewWriterSize(stdout, 64<<10)
	x := extract.New(ctx, extract.Limits{}, cfg)
	defer x.Close()
	if env(EnvPDFAtStart) == "1" {
		if err := x.WarmPDF(); err != nil {
			return fmt.Errorf("extract-worker: %w", err)
		}
	}
	for {
		if _, err := in.Peek(1); errors.Is(err, io.EOF) {
			return nil // the parent is done with this worker
		}
		line, err := readLine(in, MaxRequestLine)
		if err != nil {
			return fmt.Errorf("extract-worker: read request: %w", err)
		}
		var req Request
		if err := json.Unmarshal(line, &req); err != nil {
			return fmt.Errorf("extract-worker: parse request: %w", err)
		}
		x.Reset(req.Limits)
		if err := serve(x, req, in, out); errors.Is(err, errOutOfStep) {
			return nil // the parent knows: it had the answer
		} else if err != nil {
			return err
		}
		if req.Last {
			return nil
		}
		emptyDir(env("TMPDIR"))
		// A failure here is not the next document's: PDFium then starts
		// afresh with the next PDF, which reports its own failure if any.
		_ = x.Renew()
	}
}

// errOutOfStep: a request's document was left unread, so the input no
// longer starts at a request.
var errOutOfStep = errors.New("extract-worker: input out of step")

// serve answers one request.
func serve(x *extract.Extractor, req Request, in *bufio.Reader, out *bufio.Writer) error {
	switch req.Op {
	case OpWarm:
		if err := x.WarmPDF(); err != nil {
			return respond(out, Response{Class: reason.Internal, Error: err.Error()}, "")
		}
		return respond(out, Response{OK: true}, "")
	case OpExtract:
	default:
		return fmt.Errorf("extract-worker: unknown op %q", req.Op)
	}
	lim := req.Limits.WithDefaults()
	if req.Size < 0 || req.Size > lim.MaxInputBytes {
		// The document is not read, so the next request cannot be found:
		// answer, and end.
		return errors.Join(errOutOfStep, respond(out, Response{Class: reason.TooLarge, Error: fmt.Sprintf("the document is %d bytes; the limit is %d", req.Size, lim.MaxInputBytes)}, ""))
	}
	raw := make([]byte, req.Size)
	if _, err := io.ReadFull(in, raw); err != nil {
		return fmt.Errorf("extract-worker: read document: %w", err)
	}
	res, err := x.Extract(raw)
	if err != nil {
		return respond(out, Response{Class: reason.ClassOf(err, reason.Internal), Error: err.Error()}, "")
	}
	return respond(out, Response{OK: true, Result: &res, TextBytes: len(res.Text)}, res.Text)
}

// emptyDir removes what a document left in dir (excelize spills large
// sheets to temporary files), keeping dir.
func emptyDir(dir string) {
	if dir == "" {
		return
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		os.RemoveAll(filepath.Join(dir, e.Name()))
	}
}

func respond(w *bufio.Writer, r Response, text string) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	w.Write(b)
	w.WriteByte('\n')
	w.WriteString(text)
	if err := w.Flush(); err != nil {
		return fmt.Errorf("extract-worker: write response: %w", err)
	}
	return nil
}

// readLine reads up to and without '\n', at most max bytes.
func readLine(r *bufio.Reader, max int) ([]byte, error) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > max {
			return nil, fmt.Errorf("line longer than %d bytes", max)
		}
		if err == nil {
			return line[:len(line)-1], nil
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return nil, err
		}
	}
}

// ReadLine is readLine for the parent side of the protocol.
func ReadLine(r *bufio.Reader, max int) ([]byte, error) { return readLine(r, max) }
