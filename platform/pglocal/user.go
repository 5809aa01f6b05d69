package pglocal

import (
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
	return &runAs{uid: uint32(uid), gid: uint32(gid)}, nil
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
