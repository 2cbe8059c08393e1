package credential

import (
	"errors"
	"fmt"

	"github.com/credlink/credlink/pkg/regfile"
)

// Limits systemd 252+ enforces when it imports credentials (creds-util.h).
const (
	MaxNameLen = 255     // NAME_MAX and FDNAME_MAX
	MaxSize    = 1 << 20 // CREDENTIAL_SIZE_MAX: one credential, decoded
	MaxTotal   = 1 << 20 // CREDENTIALS_TOTAL_SIZE_MAX: all imported credentials, decoded
)

// Sentinel errors; every error this package returns about a credential wraps one of them.
var (
	ErrInvalidName   = errors.New("invalid credential name")
	ErrNoEquals      = errors.New("OEM string lacks '='")
	ErrBadBase64     = errors.New("invalid base64")
	ErrTooLarge      = errors.New("credential larger than 1 MiB")
	ErrTotalTooLarge = errors.New("credentials exceed 1 MiB in total")
	ErrDuplicate     = errors.New("duplicate credential")
	ErrBudget        = errors.New("SMBIOS budget exceeded")
	ErrNotRegular    = regfile.ErrNotRegular // a credential file that is a symlink, FIFO, device or directory
	ErrCutOff        = errors.New("not imported by the guest's systemd")
)

// ValidName checks a credential name the way systemd's credential_name_valid does: a valid file
// name (non-empty, not "." or "..", no '/', at most 255 bytes) that is also a valid fd name
// (every byte printable ASCII 0x20..0x7E, no ':'). The error names the first offending byte
// position but never echoes the name, which callers may not trust.
func ValidName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty", ErrInvalidName)
	case name == "." || name == "..":
		return fmt.Errorf("%w: %q is reserved", ErrInvalidName, name)
	case len(name) > MaxNameLen:
		return fmt.Errorf("%w: %d bytes, limit %d", ErrInvalidName, len(name), MaxNameLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '/':
			return fmt.Errorf("%w: '/' at byte %d", ErrInvalidName, i)
		case c == ':':
			return fmt.Errorf("%w: ':' at byte %d", ErrInvalidName, i)
		case c < 0x20 || c > 0x7e:
			return fmt.Errorf("%w: byte %#02x at %d is not printable ASCII", ErrInvalidName, c, i)
		}
	}
	return nil
}

// DisplayName returns name quoted when it is safe to show (a valid name), else a description
// that carries no bytes of it.
func DisplayName(name string) string {
	if ValidName(name) == nil {
		return fmt.Sprintf("%q", name)
	}
	return fmt.Sprintf("<invalid name, %d bytes>", len(name))
}
