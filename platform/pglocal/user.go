package pglocal

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
)

// runAs is the account initdb and postgres run under; nil means the
// current user.
type runAs struct {
	uid, gid uint32
	home     string // the account's home directory, owned by it
}

// serverUser returns the account to run the server as. PostgreSQL refuses
// to run as root, so as root we switch to the "postgres" system user that
// Debian's postgresql package creates.
func serverUser() (*runAs, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("pglocal: running as root, which PostgreSQL refuses, and there is no \"postgres\" system user to run it as (%v); install the postgresql package (apt-get install -y postgresql) or run as a non-root user", err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("pglocal: user postgres has non-numeric uid %q / gid %q", u.Uid, u.Gid)
	}
	return &runAs{uid: uint32(uid), gid: uint32(gid), home: u.HomeDir}, nil
}

func (r *runAs) credential() *syscall.Credential {
	if r == nil {
		return nil
	}
	return &syscall.Credential{Uid: r.uid, Gid: r.gid}
}

// chownTree hands dir and everything below it to the server user.
func (r *runAs) chownTree(dir string) error {
	if r == nil {
		return nil
	}
	return filepath.WalkDir(dir, func(path string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, int(r.uid), int(r.gid))
	})
}

// checkReachable fails early, with a useful message, when the server user
// cannot traverse to dir: private temp directories (mode 0700, owned by
// root) are the usual cause, and PostgreSQL's own error is obscure.
func (r *runAs) checkReachable(dir string) error {
	if r == nil {
		return nil
	}
	for p := filepath.Dir(dir); ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("pglocal: stat %s: %w", p, err)
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		mode := fi.Mode().Perm()
		searchable := mode&0o001 != 0 ||
			(ok && st.Uid == r.uid && mode&0o100 != 0) ||
			(ok && st.Gid == r.gid && mode&0o010 != 0)
		if !searchable {
			return fmt.Errorf("pglocal: the postgres user (uid %d) cannot enter %s (mode %v), so it cannot reach %s; choose a directory under a world-searchable path (e.g. os.MkdirTemp(\"\", ...) rather than t.TempDir()) or chmod o+x %s", r.uid, p, mode, dir, p)
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}

// place returns the directory the cluster of dir lives in. As root the
// server runs as the postgres user, and a checkout under a private
// directory (/root is 0700) is out of its reach. Then the cluster lives
// under that user's home instead, in a directory named after dir, and dir
// becomes a symbolic link to it: the next start finds the same data, and
// the user sees where it is.
func (r *runAs) place(dir string) (string, error) {
	if r == nil {
		return dir, nil
	}
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		dir = real // placed before, or a link of the user's own
	}
	unreachable := r.checkReachable(dir)
	if unreachable == nil {
		return dir, nil
	}
	if r.home == "" {
		return "", unreachable
	}
	if entries, err := os.ReadDir(dir); err == nil {
		if len(entries) > 0 {
			return "", fmt.Errorf("%w (it already holds files, so it is not moved)", unreachable)
		}
		if err := os.Remove(dir); err != nil {
			return "", fmt.Errorf("pglocal: replace empty %s by a link: %w", dir, err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("pglocal: inspect %s: %w", dir, err)
	}
	sum := sha256.Sum256([]byte(dir))
	target := filepath.Join(r.home, "prism-dev", filepath.Base(dir)+"-"+hex.EncodeToString(sum[:6]))
	if err := r.checkReachable(filepath.Dir(target)); err != nil {
		return "", fmt.Errorf("%w; nor can it reach its home: %v", unreachable, err)
	}
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return "", fmt.Errorf("pglocal: create %s: %w", filepath.Dir(target), err)
	}
	if err := os.MkdirAll(target, 0o700); err != nil {
		return "", fmt.Errorf("pglocal: create %s: %w", target, err)
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", fmt.Errorf("pglocal: create %s: %w", filepath.Dir(dir), err)
	}
	if err := os.Symlink(target, dir); err != nil {
		return "", fmt.Errorf("pglocal: link %s to %s: %w", dir, target, err)
	}
	return target, nil
}
