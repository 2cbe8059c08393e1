package credential

import (
	"errors"
	"fmt"
	"os"

	"github.com/credlink/credlink/pkg/regfile"
)

// ReadFile reads one credential file below root with the one bounded reader (regfile.Read):
// used by the guest's sources (a credentials directory, fw_cfg) and by host-launcher for
// $CREDENTIALS_DIRECTORY. Symlinks and anything that is not a regular file (a FIFO, a device,
// a directory) are refused with an error wrapping ErrNotRegular, without blocking; more than
// MaxSize bytes with ErrTooLarge.
func ReadFile(root *os.Root, name string) ([]byte, error) {
	return sized(regfile.Read(root, name, MaxSize))
}

// ReadPath reads an operator-given credential path (host-launcher --credential NAME=/PATH)
// like ReadFile, after resolving symlinks: secret managers link /run/secrets/NAME into a
// generation directory (regfile.ReadPath).
func ReadPath(path string) ([]byte, error) {
	return sized(regfile.ReadPath(path, MaxSize))
}

// sized words regfile's size error as this package's ErrTooLarge.
func sized(b []byte, err error) ([]byte, error) {
	if errors.Is(err, regfile.ErrTooLarge) {
		return nil, fmt.Errorf("%w (more than %d bytes)", ErrTooLarge, MaxSize)
	}
	return b, err
}
