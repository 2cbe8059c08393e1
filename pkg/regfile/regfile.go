package regfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// Errors; every error of Read and ReadPath about the file itself wraps one of them or an
// fs.ErrNotExist / fs.ErrPermission from the system.
var (
	ErrNotRegular = errors.New("not a regular file")
	ErrTooLarge   = errors.New("file too large")
)

// Read reads name below root: a symlink, FIFO, device or directory is refused with
// ErrNotRegular, without blocking; more than limit bytes with ErrTooLarge. name cannot leave
// root (os.Root). Errors carry the failing step ("stat:", "open:", "read:") but not name,
// which the caller words better.
func Read(root *os.Root, name string, limit int64) ([]byte, error) {
	fi, err := root.Lstat(name)
	if err != nil {
		return nil, fmt.Errorf("stat: %w", bare(err))
	}
	if !fi.Mode().IsRegular() {
		return nil, NotRegular(fi.Mode())
	}
	f, err := open(root, name)
	if err != nil {
		return nil, fmt.Errorf("open: %w", bare(err))
	}
	defer f.Close()
	return readOpen(f, limit)
}

// open opens name for reading without blocking: a FIFO swapped in after Read's Lstat would
// otherwise block open(2) until a writer appears. O_NONBLOCK does not change reads of a
// regular file, and readOpen refuses anything else.
func open(root *os.Root, name string) (*os.File, error) {
	return root.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
}

// ReadPath reads an operator-given path: symlinks are resolved first, and what they resolve
// to is read like Read does.
func ReadPath(path string, limit int64) ([]byte, error) {
	target, err := filepath.EvalSymlinks(path)
	if err != nil {
		return nil, fmt.Errorf("stat: %w", bare(err))
	}
	r, err := os.OpenRoot(filepath.Dir(target))
	if err != nil {
		return nil, fmt.Errorf("open: %w", bare(err))
	}
	defer r.Close()
	return Read(r, filepath.Base(target), limit)
}

// readOpen checks the open file again and reads it: a FIFO swapped in after Read's Lstat was
// opened without blocking (see open) and is refused here.
func readOpen(f *os.File, limit int64) ([]byte, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat: %w", bare(err))
	}
	if !fi.Mode().IsRegular() {
		return nil, NotRegular(fi.Mode())
	}
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read: %w", bare(err))
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%w (more than %d bytes)", ErrTooLarge, limit)
	}
	return b, nil
}

// NotRegular is the ErrNotRegular error for a file of mode m, naming what it is instead:
// "not a regular file (a directory)".
func NotRegular(m fs.FileMode) error {
	what := "of mode " + m.Type().String()
	switch m.Type() {
	case fs.ModeDir:
		what = "a directory"
	case fs.ModeSymlink:
		what = "a symlink"
	case fs.ModeNamedPipe:
		what = "a FIFO"
	case fs.ModeSocket:
		what = "a socket"
	case fs.ModeDevice:
		what = "a block device"
	case fs.ModeDevice | fs.ModeCharDevice:
		what = "a character device"
	}
	return fmt.Errorf("%w (%s)", ErrNotRegular, what)
}

// bare drops a PathError's operation and path, which the caller names better.
func bare(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
