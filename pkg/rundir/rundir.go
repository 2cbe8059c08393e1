package rundir

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Prefix starts the name of every directory Create makes and Sweep considers.
const Prefix = "credlink-"

// LockFile is the file inside a run directory that its owner holds locked.
const LockFile = ".credlink-lock"

// maxNameInPath is how much of the name goes into the directory's name.
const maxNameInPath = 32

// Dir is one run's private directory.
type Dir struct {
	Path string
	lock *os.File
}

// Create sweeps leftovers in base (see Sweep), then makes a new 0700 directory
// base/credlink-<name>-<random> and locks it for the life of this process (or until Remove).
// name is sanitised to printable ASCII without '/' and cut to its first 32 bytes.
func Create(base, name string) (*Dir, error) {
	if base == "" {
		base = os.TempDir()
	}
	_, _ = Sweep(base) // best effort: a leftover that cannot be removed must not block this run
	p, err := os.MkdirTemp(base, Prefix+sanitize(name)+"-")
	if err != nil {
		return nil, err
	}
	lock, err := takeLock(p)
	if err != nil {
		os.RemoveAll(p)
		return nil, err
	}
	return &Dir{Path: p, lock: lock}, nil
}

// takeLock creates the lock file under a temporary name, locks it, and only then renames it
// into place, so that a concurrent Sweep never finds an unlocked LockFile in a live directory.
func takeLock(dir string) (*os.File, error) {
	tmp := filepath.Join(dir, ".lock-new")
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, LockFile)); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// Remove deletes the directory and releases its lock.
func (d *Dir) Remove() error {
	if d == nil {
		return nil
	}
	err := os.RemoveAll(d.Path)
	if d.lock != nil {
		d.lock.Close()
		d.lock = nil
	}
	return err
}

// Sweep removes every credlink-* directory in base that belongs to this user, carries a
// LockFile, and whose lock nobody holds: what a run killed without a chance to clean up left.
// It returns the directories removed.
func Sweep(base string) ([]string, error) {
	ents, err := os.ReadDir(base)
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	uid := os.Geteuid()
	for _, e := range ents {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), Prefix) {
			continue
		}
		p := filepath.Join(base, e.Name())
		fi, err := os.Lstat(p)
		if err != nil || !fi.IsDir() {
			continue
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); !ok || int(st.Uid) != uid {
			continue
		}
		f, err := os.OpenFile(filepath.Join(p, LockFile), os.O_RDONLY|unix.O_NOFOLLOW, 0)
		if err != nil {
			continue // no lock file: not ours to judge
		}
		if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) != nil {
			f.Close() // held: a live run
			continue
		}
		// Holding the lock now, no other sweeper removes it twice; the owner is gone.
		if err := os.RemoveAll(p); err != nil {
			errs = append(errs, err)
		} else {
			removed = append(removed, p)
		}
		f.Close()
	}
	return removed, errors.Join(errs...)
}

func sanitize(s string) string {
	// The name is for people reading ls; socket paths in the directory must fit sun_path.
	if len(s) > maxNameInPath {
		s = s[:maxNameInPath]
	}
	return strings.Map(func(r rune) rune {
		if r == '/' || r < 0x20 || r > 0x7e {
			return '_'
		}
		return r
	}, s)
}
