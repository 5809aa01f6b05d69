package system

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Process is one role running as its own `prism <role>` process.
type Process struct {
	Role    string
	APIAddr string // for the api role
	cmd     *exec.Cmd
	out     *lockedBuffer
	done    chan struct{}
	err     error
}

// Usage is what a stopped process used.
type Usage struct {
	Role       string  `json:"role"`
	CPUSeconds float64 `json:"cpu_seconds"`
	PeakRSSMB  float64 `json:"peak_rss_mb"`
}

// StartProcess runs `bin role` with the process environment plus env, the
// way an operator runs a role on its own machine. A role that listens
// listens where env says (its ListenEnv), or on a free loopback port.
func StartProcess(bin, role string, env map[string]string) (*Process, error) {
	extra := map[string]string{}
	for k, v := range env {
		extra[k] = v
	}
	roles, err := LookupRoles([]string{role})
	if err != nil {
		return nil, err
	}
	addr := ""
	if v := roles[0].ListenEnv; v != "" {
		if addr = extra[v]; addr == "" {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				return nil, err
			}
			addr = ln.Addr().String()
			_ = ln.Close()
			extra[v] = addr
		}
	}
	p, err := StartBinary(role, bin, []string{role}, extra)
	if err != nil {
		return nil, err
	}
	p.APIAddr = addr
	return p, nil
}

// StartBinary runs bin with args and the process environment plus env,
// named name (a role, or another server such as a NATS node). It dies
// with the process that started it.
func StartBinary(name, bin string, args []string, env map[string]string) (*Process, error) {
	p := &Process{Role: name, out: &lockedBuffer{}, done: make(chan struct{})}
	cmd := exec.Command(bin, args...)
	cmd.Env = os.Environ()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p.cmd = cmd
	go func() { p.err = cmd.Wait(); close(p.done) }()
	return p, nil
}

// CPUSeconds is the CPU the running process has used so far, with its
// reaped children's (the extractor's workers).
func (p *Process) CPUSeconds() (float64, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0, fmt.Errorf("cpu of %s: %w", p.Role, err)
	}
	// The fields after the command's name, which is in parentheses and may
	// hold spaces: utime, stime, cutime and cstime are the 14th to 17th.
	f := strings.Fields(string(raw[bytes.LastIndexByte(raw, ')')+1:]))
	if len(f) < 15 {
		return 0, fmt.Errorf("cpu of %s: short /proc stat", p.Role)
	}
	var ticks float64
	for _, v := range f[11:15] {
		n, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return 0, fmt.Errorf("cpu of %s: %w", p.Role, err)
		}
		ticks += n
	}
	return ticks / clockTicks, nil
}

// clockTicks is USER_HZ, the unit of /proc's times: 100 on Linux.
const clockTicks = 100

// Output is what the process has written so far.
func (p *Process) Output() string { return p.out.String() }

// Exited reports whether the process has ended, and its error.
func (p *Process) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// Stop asks the process to shut down (SIGTERM, as Ctrl-C or an
// orchestrator would), waits for it, and returns what it used.
func (p *Process) Stop(timeout time.Duration) (Usage, error) {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(timeout):
		_ = p.cmd.Process.Kill()
		<-p.done
		return Usage{}, fmt.Errorf("%s did not stop within %s", p.Role, timeout)
	}
	u := Usage{Role: p.Role}
	if ru, ok := p.cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
		u.CPUSeconds = tv(ru.Utime) + tv(ru.Stime)
		u.PeakRSSMB = float64(ru.Maxrss) / 1024
	}
	var exit *exec.ExitError
	if p.err != nil && !errors.As(p.err, &exit) {
		return u, p.err
	}
	if p.err != nil {
		return u, fmt.Errorf("%s exited with %v: %s", p.Role, p.err, tail(p.Output(), 2000))
	}
	return u, nil
}

// Kill ends the process at once (SIGKILL), as a crash or an OOM kill
// would: it gets no chance to finish or hand back its work.
func (p *Process) Kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// WaitReady polls the api process's /readyz until it answers.
func (p *Process) WaitReady(ctx context.Context, get func(url string) (int, error)) error {
	for {
		if code, err := get("http://" + p.APIAddr + "/readyz"); err == nil && code == 200 {
			return nil
		}
		if done, err := p.Exited(); done {
			return fmt.Errorf("%s exited: %v: %s", p.Role, err, tail(p.Output(), 2000))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready: %w", p.Role, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
