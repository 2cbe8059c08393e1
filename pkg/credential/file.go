package credential

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// ReadFile reads one credential file below root: the one bounded reader for credential files,
// used by the guest's sources (a credentials directory, fw_cfg) and by host-launcher for
// $CREDENTIALS_DIRECTORY. It refuses symlinks and anything that is not a regular file (a FIFO,
// a device, a directory) with an error wrapping ErrNotRegular, without blocking, and reads at
// most MaxSize+1 bytes whatever the file claims its size is (sysfs files report 4096 or 0),
// refusing more with ErrTooLarge. name is relative to root and cannot leave it (os.Root).
// Errors carry the failing step ("stat:", "open:", "read:") but not name or value.
func ReadFile(root *os.Root, name string) ([]byte, error) {
	fi, err := root.Lstat(name)
	if err != nil {
		return nil, fmt.Errorf("stat: %w", bare(err))
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%w (%s)", ErrNotRegular, fi.Mode().Type())
	}
	return readRegular(root, name)
}

// readRegular opens name without blocking and checks the open file again: a FIFO swapped in
// after ReadFile's Lstat would otherwise block open(2) until a writer appears, and a file
// swapped for a symlink is followed only inside root. O_NONBLOCK does not change reads of a
// regular file.
func readRegular(root *os.Root, name string) ([]byte, error) {
	f, err := root.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, fmt.Errorf("open: %w", bare(err))
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat: %w", bare(err))
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%w (%s)", ErrNotRegular, fi.Mode().Type())
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("read: %w", bare(err))
	}
	if len(b) > MaxSize {
		return nil, fmt.Errorf("%w (more than %d bytes)", ErrTooLarge, MaxSize)
	}
	return b, nil
}

// bare drops a PathError's operation and path, which the caller names better.
func bare(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
