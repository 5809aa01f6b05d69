package sandbox

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// A worker that serves several documents is measured and limited per
// document through /proc while it lives: CPU time from /proc/<pid>/stat,
// memory from /proc/<pid>/status, whose peak (VmHWM) is reset before
// each document through /proc/<pid>/clear_refs.

// userHZ is the unit of the CPU times in /proc/<pid>/stat: USER_HZ, 100
// on every Linux ABI.
const userHZ = 100

// begin prepares a worker for its next document and returns what it has
// used so far. A fresh worker carries the limits of spawn; a reused one
// gets one document's CPU allowance beyond what it has used, and its
// peak memory is reset so that the document's own peak is measured.
func (s *Sandbox) begin(p *proc) (Usage, error) {
	if p.served == 1 {
		return Usage{}, nil
	}
	user, system, err := p.cpu()
	if err != nil {
		return Usage{}, fmt.Errorf("sandbox: worker %d: %w", p.pid, err)
	}
	hard := s.cpuHard()
	soft := min(seconds(user+system+s.cfg.CPUTime), hard)
	if err := unix.Prlimit(p.pid, unix.RLIMIT_CPU, &unix.Rlimit{Cur: soft, Max: hard}, nil); err != nil {
		return Usage{}, fmt.Errorf("sandbox: worker %d: cpu limit: %w", p.pid, err)
	}
	_ = os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", p.pid), []byte("5"), 0) // best effort: the peak then covers more
	return Usage{User: user, System: system}, nil
}

// since is what the worker used since before, for a worker still alive,
// and its resident memory now (-1 when unreadable).
func (p *proc) since(before Usage, start time.Time) (Usage, int64) {
	u := Usage{PID: p.pid, Wall: time.Since(start)}
	if user, system, err := p.cpu(); err == nil {
		u.User, u.System = user-before.User, system-before.System
	}
	rss := int64(-1)
	if raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.pid)); err == nil {
		u.MaxRSS, rss = statusBytes(raw, "VmHWM:"), statusBytes(raw, "VmRSS:")
	}
	return u, rss
}

// cpu reads the worker's user and system CPU time.
func (p *proc) cpu() (user, system time.Duration, err error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.pid))
	if err != nil {
		return 0, 0, err
	}
	// The command name (field 2) may hold spaces: count from its end.
	i := bytes.LastIndexByte(raw, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("unreadable /proc/%d/stat", p.pid)
	}
	fields := bytes.Fields(raw[i+1:]) // fields[0] is field 3 (state)
	if len(fields) < 13 {
		return 0, 0, fmt.Errorf("unreadable /proc/%d/stat", p.pid)
	}
	utime, err1 := strconv.ParseInt(string(fields[11]), 10, 64) // field 14
	stime, err2 := strconv.ParseInt(string(fields[12]), 10, 64) // field 15
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("unreadable /proc/%d/stat", p.pid)
	}
	tick := time.Second / userHZ
	return time.Duration(utime) * tick, time.Duration(stime) * tick, nil
}

// statusBytes is a "Key:  N kB" line of /proc/<pid>/status in bytes, -1
// when missing or unreadable.
func statusBytes(raw []byte, key string) int64 {
	i := bytes.Index(raw, []byte(key))
	if i < 0 {
		return -1
	}
	fields := bytes.Fields(raw[i+len(key):])
	if len(fields) == 0 {
		return -1
	}
	kb, err := strconv.ParseInt(string(fields[0]), 10, 64)
	if err != nil {
		return -1
	}
	return kb << 10
}

// cpuHard is the hard RLIMIT_CPU of a worker, in seconds: every document
// it may serve (only the soft limit can be raised later without
// privileges).
func (s *Sandbox) cpuHard() uint64 { return seconds(s.cfg.CPUTime)*uint64(s.cfg.MaxDocs) + 1 }

// seconds rounds d up to whole seconds, as rlimits count.
func seconds(d time.Duration) uint64 { return uint64((d + time.Second - 1) / time.Second) }
