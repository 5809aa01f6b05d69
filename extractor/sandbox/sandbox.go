// Package sandbox runs each extraction in a child process (the worker,
// extractor/worker) under hard limits, and turns the ways a child can die
// into reasons. A child serves up to Config.MaxDocs documents in turn, each
// with fresh limits, a fresh PDFium instance and an empty temporary
// directory, and is retired after any document that failed.
//
// Limits, and why these:
//   - memory: RLIMIT_DATA, set with prlimit(2) right after the child
//     starts and before it is sent the document. Go reserves about 1.2 GB
//     of address space at start (wazero more), so RLIMIT_AS would have to
//     be so large that it bounds nothing; RLIMIT_DATA (Linux >= 4.7)
//     counts only the private writable memory the child actually maps:
//     its heap, PDFium's linear memory. RLIMIT_AS is still set, generously,
//     as a backstop; cgroups are not assumed. The child's GOMEMLIMIT is
//     set below the hard limit so its GC works hard before the wall.
//   - time: a wall-clock deadline per document (the child is killed:
//     reason.Timeout) and RLIMIT_CPU as a backstop (reason.CPULimit). Its
//     soft limit is raised before each document to the CPU the child has
//     used so far plus one document's allowance; the child exits when it
//     fires (worker.ExitOnCPULimit). The hard limit, every document's
//     allowance at once, kills a child that cannot.
//   - output: the child's response is read through a cap; a child that
//     writes more is killed.
//   - environment: the child gets a minimal environment, not the parent's
//     (which holds database and cloud credentials).
//
// Extraction runs in parallel up to Config.Workers children.
package sandbox

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/aiprism/prism/extractor/detect"
	"github.com/aiprism/prism/extractor/extract"
	"github.com/aiprism/prism/extractor/reason"
	"github.com/aiprism/prism/extractor/worker"
	"golang.org/x/sys/unix"
)

// WorkerSubcommand is the argument that makes the prism binary a worker.
const WorkerSubcommand = "extract-worker"

// Config configures the sandbox. Zero fields take defaults.
type Config struct {
	// Command runs the worker: executable and arguments. Default: this
	// executable (os.Executable) with WorkerSubcommand. Tests point it at
	// the test binary.
	Command []string
	// Env is extra KEY=VALUE environment for the worker. The worker does
	// not inherit the parent's environment.
	Env []string
	// Workers is the number of concurrent worker processes (default 4).
	Workers int
	// Timeout is the wall-clock limit per document (default 60s; the
	// first PDF on a machine compiles PDFium, ~7 s on a loaded core).
	Timeout time.Duration
	// CPUTime is RLIMIT_CPU (default: Timeout, rounded up to seconds).
	CPUTime time.Duration
	// MemoryBytes is the child's RLIMIT_DATA (default 1 GiB).
	MemoryBytes int64
	// AddressSpaceBytes is the child's RLIMIT_AS backstop (default
	// MemoryBytes + 4 GiB: Go and wazero reserve address space they
	// never touch).
	AddressSpaceBytes int64
	// WASMCacheDir is where compiled PDFium is cached (default
	// <user cache dir>/prism/pdfium-wazero).
	WASMCacheDir string
	// TmpDir is the worker's TMPDIR (excelize spills large sheets there).
	TmpDir string
	// GOMAXPROCS for the worker (default 1: parallelism comes from
	// running several workers).
	GOMAXPROCS int
	// Limits are the extraction limits sent with each document.
	Limits extract.Limits
	// Ready is how many workers are kept started, limited and waiting for
	// their document, so a document does not wait for a process to start
	// (0: each worker starts when its document arrives).
	Ready int
	// MaxDocs is how many documents one worker serves in turn before it is
	// retired (default 1: a process per document). More saves each
	// document the process start and PDFium's start (~0.2 s of CPU).
	MaxDocs int
}

// Sandbox runs extractions in worker processes.
type Sandbox struct {
	cfg  Config
	sem  chan struct{}
	warm sync.Once

	mu sync.Mutex // orders puts into ready against Close
	// sawPDF: a PDF has come through. From then on, a worker that will
	// serve several documents starts PDFium as soon as it starts, before
	// its first document, rather than when a PDF arrives (~0.2 s).
	sawPDF atomic.Bool

	ready     chan *proc    // started or returned workers waiting for a document
	refill    chan struct{} // asks keepReady to top ready up
	done      chan struct{} // closed by Close, under mu
	closeOnce sync.Once
	keeper    sync.WaitGroup
}

// New validates cfg and returns a Sandbox.
func New(cfg Config) (*Sandbox, error) {
	if len(cfg.Command) == 0 {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("sandbox: find own executable: %w", err)
		}
		cfg.Command = []string{exe, WorkerSubcommand}
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 4
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 60 * time.Second
	}
	if cfg.CPUTime <= 0 {
		cfg.CPUTime = cfg.Timeout
	}
	if cfg.MemoryBytes <= 0 {
		cfg.MemoryBytes = 1 << 30
	}
	if cfg.AddressSpaceBytes <= 0 {
		cfg.AddressSpaceBytes = cfg.MemoryBytes + 4<<30
	}
	if cfg.GOMAXPROCS <= 0 {
		cfg.GOMAXPROCS = 1
	}
	if cfg.MaxDocs <= 0 {
		cfg.MaxDocs = 1
	}
	if cfg.TmpDir == "" {
		cfg.TmpDir = os.TempDir()
	}
	if cfg.WASMCacheDir == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			base = os.TempDir()
		}
		cfg.WASMCacheDir = filepath.Join(base, "prism", "pdfium-wazero")
	}
	if err := os.MkdirAll(cfg.WASMCacheDir, 0o700); err != nil {
		return nil, fmt.Errorf("sandbox: wasm cache dir: %w", err)
	}
	cfg.Limits = cfg.Limits.WithDefaults()
	s := &Sandbox{cfg: cfg, sem: make(chan struct{}, cfg.Workers), done: make(chan struct{})}
	idle := cfg.Ready
	if cfg.MaxDocs > 1 {
		idle += cfg.Workers // room for every worker coming back from a document
	}
	if idle > 0 {
		s.ready = make(chan *proc, idle)
	}
	if cfg.Ready > 0 {
		s.refill = make(chan struct{}, 1)
		s.keeper.Add(1)
		go s.keepReady()
		s.kick()
	}
	return s, nil
}

// Close stops the workers waiting for a document. Extractions in
// progress finish; their workers are retired.
func (s *Sandbox) Close() {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		close(s.done)
		s.mu.Unlock()
	})
	s.keeper.Wait()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case p := <-s.ready:
			wg.Add(1)
			go func() { defer wg.Done(); p.retire() }()
		default:
			return
		}
	}
}

// keepReady tops the ready workers up whenever one is taken.
func (s *Sandbox) keepReady() {
	defer s.keeper.Done()
	for {
		select {
		case <-s.done:
			return
		case <-s.refill:
		}
		// Once closed, put retires what is started instead of keeping it
		// ready, so the count would never rise: stop starting workers.
		for len(s.ready) < s.cfg.Ready && !isClosed(s.done) {
			p, err := s.spawn()
			if err != nil {
				break // the next take starts its own and asks again
			}
			s.put(p)
		}
	}
}

// put makes p wait for a document, or retires it when the sandbox is
// closed or enough workers wait already.
func (s *Sandbox) put(p *proc) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !isClosed(s.done) {
		select {
		case s.ready <- p:
			return
		default:
		}
	}
	go p.retire()
}

func (s *Sandbox) kick() {
	select {
	case s.refill <- struct{}{}:
	default:
	}
}

// take returns a ready worker that is still alive, or starts one.
func (s *Sandbox) take() (*proc, error) {
	if s.ready == nil {
		return s.spawn()
	}
	defer s.kick()
	for {
		select {
		case p := <-s.ready:
			if p.hasExited() {
				p.discard() // died while waiting (killed from outside): never blame a document
				continue
			}
			return p, nil
		default:
			return s.spawn()
		}
	}
}

// Config returns the effective configuration.
func (s *Sandbox) Config() Config { return s.cfg }

// Usage is what one document cost its worker.
type Usage struct {
	PID    int // the worker process
	Wall   time.Duration
	User   time.Duration
	System time.Duration
	MaxRSS int64 // peak resident set size in bytes while it ran (the worker's whole life for its last document)
}

// Warm has one worker compile PDFium into the cache, so the first PDF
// does not pay for it under a document's deadline. Safe to call many
// times; only the first call works.
func (s *Sandbox) Warm(ctx context.Context) error {
	var err error
	s.warm.Do(func() {
		_, _, err = s.run(ctx, worker.Request{Op: worker.OpWarm, Limits: s.cfg.Limits}, nil, 5*time.Minute)
	})
	return err
}

// Extract runs one document (size bytes from doc) in a worker. Document
// failures are *reason.Error (class and message for the user); other
// errors are infrastructure problems worth a retry, including ctx ending.
func (s *Sandbox) Extract(ctx context.Context, doc io.Reader, size int64) (extract.Result, Usage, error) {
	if size > s.cfg.Limits.MaxInputBytes {
		return extract.Result{}, Usage{}, reason.New(reason.TooLarge, "the document is %d bytes; the limit is %d", size, s.cfg.Limits.MaxInputBytes)
	}
	if size == 0 {
		return extract.Result{}, Usage{}, reason.New(reason.Empty, "the document is empty")
	}
	return s.run(ctx, worker.Request{Op: worker.OpExtract, Size: size, Limits: s.cfg.Limits}, doc, s.cfg.Timeout)
}

// proc is a started, limited worker waiting for a request.
type proc struct {
	cmd     *exec.Cmd
	pid     int
	tmp     string
	stdin   io.WriteCloser
	stdout  *os.File      // our end of the worker's stdout; Wait does not close it
	out     *bufio.Reader // responses, one after another, from stdout
	stderr  *headBuffer
	exited  chan struct{} // closed once the process has been waited for
	waitErr error         // set before exited closes
	served  int           // documents sent to it
	cleaned sync.Once
}

// spawn starts a worker and limits it before it can be sent anything.
func (s *Sandbox) spawn() (*proc, error) {
	// A private temporary directory per worker: whatever a killed worker
	// leaves behind (excelize's spilled sheets) is removed with it.
	tmp, err := os.MkdirTemp(s.cfg.TmpDir, "prism-extract-")
	if err != nil {
		return nil, fmt.Errorf("sandbox: worker temp dir: %w", err)
	}
	cmd := exec.Command(s.cfg.Command[0], s.cfg.Command[1:]...)
	cmd.Env = s.env(tmp)
	cmd.Dir = tmp
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid:   true,            // kill takes the whole group
		Pdeathsig: syscall.SIGKILL, // a dying parent takes its workers along
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		os.RemoveAll(tmp)
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	// Our own pipe, not StdoutPipe: Wait may then run as soon as the
	// process ends (to notice a ready worker that died) without closing
	// what is still to be read.
	stdout, childOut, err := os.Pipe()
	if err != nil {
		os.RemoveAll(tmp)
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	cmd.Stdout = childOut
	stderr := &headBuffer{max: 16 << 10}
	cmd.Stderr = stderr
	cmd.WaitDelay = 5 * time.Second
	err = cmd.Start()
	childOut.Close()
	if err != nil {
		stdout.Close()
		os.RemoveAll(tmp)
		return nil, fmt.Errorf("sandbox: start worker: %w", err)
	}
	p := &proc{cmd: cmd, pid: cmd.Process.Pid, tmp: tmp, stdin: stdin, stdout: stdout, out: bufio.NewReaderSize(stdout, 64<<10),
		stderr: stderr, exited: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	if err := s.limit(p.pid); err != nil {
		p.discard()
		return nil, fmt.Errorf("sandbox: limit worker: %w", err)
	}
	return p, nil
}

// retire ends an idle worker: its input ends, so it finishes as it would
// after its last document (and writes its profile, if it keeps one);
// killed if it does not exit promptly.
func (p *proc) retire() {
	p.stdin.Close()
	select {
	case <-p.exited:
	case <-time.After(2 * time.Second):
	}
	p.discard()
}

// hasExited reports whether the worker has ended and been reaped.
func (p *proc) hasExited() bool { return isClosed(p.exited) }

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// discard kills a worker and removes what it leaves.
func (p *proc) discard() {
	if !p.hasExited() { // once reaped, its pid may belong to someone else
		kill(p.pid)
	}
	<-p.exited
	p.cleanup()
}

// cleanup removes what an exited worker leaves.
func (p *proc) cleanup() {
	p.cleaned.Do(func() {
		p.stdout.Close()
		os.RemoveAll(p.tmp)
	})
}

func (s *Sandbox) run(ctx context.Context, req worker.Request, doc io.Reader, timeout time.Duration) (extract.Result, Usage, error) {
	var res extract.Result
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return res, Usage{}, ctx.Err()
	}
	defer func() { <-s.sem }()

	start := time.Now()
	p, err := s.take()
	if err != nil {
		return res, Usage{}, err
	}
	p.served++
	last := p.served >= s.cfg.MaxDocs // its stdin closes after this document
	req.Last = last
	before, err := s.begin(p)
	if err != nil {
		p.discard()
		return res, Usage{}, err
	}

	// Kill on deadline or cancellation; record which.
	var (
		mu     sync.Mutex
		killed string // "timeout", "canceled" or "output"
	)
	killFor := func(why string) {
		mu.Lock()
		if killed == "" {
			killed = why
		}
		mu.Unlock()
		kill(p.pid)
	}
	timer := time.AfterFunc(timeout, func() { killFor("timeout") })
	defer timer.Stop()
	stopWatch := context.AfterFunc(ctx, func() { killFor("canceled") })
	defer stopWatch()

	// Feed the request. A child that dies early breaks the pipe, which is
	// reported through its exit; a source that fails or ends early is an
	// infrastructure problem, reported as such (not as the document's),
	// and ends the worker's input so it does not wait for the rest.
	src := &sourceReader{r: doc}
	fed := make(chan struct{})
	var gone error // the worker was gone before the request reached it
	go func() {
		defer close(fed)
		hdr, _ := json.Marshal(req)
		_, err := p.stdin.Write(append(hdr, '\n'))
		gone = err
		if err == nil && doc != nil {
			if _, err = io.CopyN(p.stdin, src, req.Size); err != nil && src.err == nil && errors.Is(err, io.EOF) {
				src.err = io.ErrUnexpectedEOF
			}
		}
		if err != nil || last {
			p.stdin.Close()
		}
	}()

	resp, text, readErr := s.read(p.out)
	switch {
	case errors.Is(readErr, errOutputCap):
		killFor("output")
	case errors.Is(readErr, errProtocol):
		// A worker with documents to go would otherwise keep running
		// until the wall clock, and the document wait for it.
		killFor("protocol")
	}
	if readErr == nil && resp.OK && !last && timer.Stop() && stopWatch() {
		// A good answer from a worker with documents to go: it read the
		// whole document (it answered), so the feed is done, and it waits
		// for the next one.
		<-fed
		if src.err == nil {
			usage, rss := p.since(before, start)
			s.keep(p, rss)
			return s.result(resp, text), usage, nil
		}
	}

	var usage Usage
	if readErr == nil && !last {
		// An answer, but the worker is done: it failed a document (or the
		// source did). Measure it, then end it.
		usage, _ = p.since(before, start)
		p.discard()
	} else {
		io.Copy(io.Discard, p.out) // until it exits (or is killed)
		<-p.exited
		usage = usageOf(p, before, time.Since(start))
		p.cleanup()
	}
	<-fed
	if src.err != nil && killedFor(&mu, &killed) != "canceled" {
		return res, usage, fmt.Errorf("sandbox: read document: %w", src.err)
	}
	if gone != nil && readErr != nil && killedFor(&mu, &killed) == "" {
		// A waiting worker that died (its input closed) never saw the
		// document: not the document's failure.
		return res, usage, fmt.Errorf("sandbox: worker %d was gone before the document reached it: %w", p.pid, gone)
	}
	switch killedFor(&mu, &killed) {
	case "canceled":
		return res, usage, ctx.Err()
	case "timeout":
		return res, usage, reason.New(reason.Timeout, "extraction took longer than %s and was stopped; the document may be too large or malformed", timeout)
	case "output":
		return res, usage, reason.New(reason.OutputTooLarge, "the extraction produced more text than allowed")
	case "protocol":
		return res, usage, reason.New(reason.WorkerCrashed, "the extraction worker crashed on this document (%v)", readErr)
	}
	if readErr == nil && (!last || p.waitErr == nil) {
		if !resp.OK {
			return res, usage, &reason.Error{Class: nonEmpty(resp.Class, reason.Internal), Err: errors.New(resp.Error)}
		}
		return s.result(resp, text), usage, nil
	}
	return res, usage, s.classifyDeath(p.cmd.ProcessState, usage, p.stderr.String(), readErr, p.waitErr)
}

// keep puts a worker that served a document well back to wait for the
// next, unless it has grown: a document that left it holding much memory
// should not shrink the next one's allowance.
func (s *Sandbox) keep(p *proc, rss int64) {
	if rss < 0 || rss > s.cfg.MemoryBytes/4 {
		go p.retire()
		return
	}
	s.put(p)
}

func (s *Sandbox) result(resp worker.Response, text string) extract.Result {
	var res extract.Result
	if resp.Result != nil {
		res = *resp.Result
	}
	if res.Format == detect.PDF {
		s.sawPDF.Store(true)
	}
	res.Text = text
	return res
}

var errOutputCap = errors.New("worker output over the cap")

// errProtocol is an answer that is not a response line: the worker is
// broken, and may still be running.
var errProtocol = errors.New("worker answered outside the protocol")

func killedFor(mu *sync.Mutex, why *string) string {
	mu.Lock()
	defer mu.Unlock()
	return *why
}

// sourceReader remembers the first error of the document's source.
type sourceReader struct {
	r   io.Reader
	err error
}

func (s *sourceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) && s.err == nil {
		s.err = err
	}
	return n, err
}

// read parses one response: a JSON line, then the text.
func (s *Sandbox) read(br *bufio.Reader) (worker.Response, string, error) {
	var resp worker.Response
	line, err := worker.ReadLine(br, 1<<20)
	if err != nil {
		return resp, "", fmt.Errorf("read response: %w", err)
	}
	if err := json.Unmarshal(line, &resp); err != nil {
		return resp, "", fmt.Errorf("%w: %w", errProtocol, err)
	}
	maxBytes := s.cfg.Limits.MaxChars*4 + 1024
	if resp.TextBytes < 0 || resp.TextBytes > maxBytes {
		return resp, "", errOutputCap
	}
	buf := make([]byte, resp.TextBytes)
	if _, err := io.ReadFull(br, buf); err != nil {
		return resp, "", fmt.Errorf("read text: %w", err)
	}
	return resp, string(buf), nil
}

// classifyDeath explains a worker that did not answer properly; u is
// what the document cost it.
func (s *Sandbox) classifyDeath(ps *os.ProcessState, u Usage, stderr string, readErr, waitErr error) error {
	cpuLimit := func() error {
		return reason.New(reason.CPULimit, "extraction used more than %s of CPU time and was stopped", s.cfg.CPUTime)
	}
	ws, ok := waitStatus(ps)
	if ok && ws.Exited() && ws.ExitStatus() == worker.ExitCPULimit {
		return cpuLimit() // the soft limit (worker.ExitOnCPULimit)
	}
	if ok && ws.Signaled() {
		switch ws.Signal() {
		case syscall.SIGXCPU: // the soft limit, in a worker that does not handle it
			return cpuLimit()
		case syscall.SIGKILL:
			// Not ours (ours are recorded): the hard CPU limit, or the
			// kernel's OOM killer. A reused worker may reach the hard
			// limit with less than an allowance spent on this document.
			hard := time.Duration(s.cpuHard()) * time.Second
			if u.User+u.System >= s.cfg.CPUTime || ps.UserTime()+ps.SystemTime() >= hard {
				return cpuLimit()
			}
			return reason.New(reason.OutOfMemory, "the extraction worker was killed (signal %s), most likely for memory", ws.Signal())
		case syscall.SIGSEGV, syscall.SIGBUS, syscall.SIGABRT:
			return reason.New(reason.WorkerCrashed, "the extraction worker crashed (signal %s) on this document", ws.Signal())
		}
		return reason.New(reason.WorkerCrashed, "the extraction worker died (signal %s)", ws.Signal())
	}
	low := strings.ToLower(stderr)
	switch {
	case strings.Contains(low, "out of memory") || strings.Contains(low, "cannot allocate memory"):
		return reason.New(reason.OutOfMemory, "extraction needed more than %d MiB of memory and was stopped", s.cfg.MemoryBytes>>20)
	case strings.Contains(low, "pthread_create failed") || strings.Contains(low, "failed to create new os thread"):
		// A thread's stack counts against RLIMIT_DATA: at the limit a new
		// thread fails (EAGAIN from glibc), not an allocation.
		return reason.New(reason.OutOfMemory, "extraction needed more than %d MiB of memory (for its threads) and was stopped", s.cfg.MemoryBytes>>20)
	case strings.Contains(low, "stack overflow") || strings.Contains(low, "stack exceeds"):
		return reason.New(reason.WorkerCrashed, "the extraction worker crashed on this document (stack overflow)")
	}
	detail := firstLine(stderr, "fatal error:", "panic:", "extract-worker:")
	if detail == "" {
		detail = fmt.Sprint(nonNil(waitErr, readErr))
	}
	return reason.New(reason.WorkerCrashed, "the extraction worker crashed on this document (%s)", detail)
}

// waitStatus is how an exited worker ended, if known.
func waitStatus(ps *os.ProcessState) (syscall.WaitStatus, bool) {
	if ps == nil {
		return 0, false
	}
	ws, ok := ps.Sys().(syscall.WaitStatus)
	return ws, ok
}

// limit applies the resource limits to a started child.
func (s *Sandbox) limit(pid int) error {
	// The soft CPU limit is one document's; begin moves it before each
	// later document, under cpuHard.
	cpu := seconds(s.cfg.CPUTime)
	for _, l := range []struct {
		res  int
		soft uint64
		hard uint64
	}{
		{unix.RLIMIT_DATA, uint64(s.cfg.MemoryBytes), uint64(s.cfg.MemoryBytes)},
		{unix.RLIMIT_AS, uint64(s.cfg.AddressSpaceBytes), uint64(s.cfg.AddressSpaceBytes)},
		{unix.RLIMIT_CPU, cpu, s.cpuHard()},
		{unix.RLIMIT_CORE, 0, 0},
		{unix.RLIMIT_NOFILE, 256, 256},
		// Temporary files (excelize's spilled sheets) stay within the
		// inflated-size budget.
		{unix.RLIMIT_FSIZE, uint64(s.cfg.Limits.Zip.MaxTotalBytes) + 64<<20, uint64(s.cfg.Limits.Zip.MaxTotalBytes) + 64<<20},
	} {
		rl := unix.Rlimit{Cur: l.soft, Max: l.hard}
		if err := unix.Prlimit(pid, l.res, &rl, nil); err != nil {
			return fmt.Errorf("prlimit %d: %w", l.res, err)
		}
	}
	return nil
}

func (s *Sandbox) env(tmp string) []string {
	env := []string{
		"GOMAXPROCS=" + strconv.Itoa(s.cfg.GOMAXPROCS),
		// The soft limit makes the GC work before the hard limit hits.
		"GOMEMLIMIT=" + strconv.FormatInt(s.cfg.MemoryBytes*3/4, 10),
		"GOTRACEBACK=single",
		"TMPDIR=" + tmp,
		"HOME=" + tmp,
		worker.EnvWASMCache + "=" + s.cfg.WASMCacheDir,
		worker.EnvWASMMemory + "=" + strconv.FormatInt(s.cfg.MemoryBytes/2, 10),
	}
	if s.cfg.MaxDocs > 1 && s.sawPDF.Load() {
		env = append(env, worker.EnvPDFAtStart+"=1")
	}
	return append(env, s.cfg.Env...)
}

func kill(pid int) {
	// The negative pid addresses the process group (Setpgid).
	syscall.Kill(-pid, syscall.SIGKILL)
	syscall.Kill(pid, syscall.SIGKILL)
}

// usageOf is what the document cost an exited worker: its CPU since
// before, and its peak memory over its life.
func usageOf(p *proc, before Usage, wall time.Duration) Usage {
	u := Usage{PID: p.pid, Wall: wall}
	ps := p.cmd.ProcessState
	if ps == nil {
		return u
	}
	u.User, u.System = ps.UserTime()-before.User, ps.SystemTime()-before.System
	if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
		u.MaxRSS = ru.Maxrss << 10 // KiB on Linux
	}
	return u
}

// headBuffer keeps the first max bytes written: a Go crash puts its
// reason first and then pages of goroutine stacks.
type headBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

func (h *headBuffer) Write(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if room := h.max - h.buf.Len(); room > 0 {
		h.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (h *headBuffer) String() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.buf.String()
}

func firstLine(s string, prefixes ...string) string {
	for _, line := range strings.Split(s, "\n") {
		for _, p := range prefixes {
			if i := strings.Index(line, p); i >= 0 {
				line = strings.TrimSpace(line[i:])
				if len(line) > 200 {
					line = line[:200]
				}
				return line
			}
		}
	}
	return ""
}

func nonEmpty(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func nonNil(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return errors.New("no response")
}
