package credential

import (
	"encoding/base64"
	"fmt"
)

// Encoding is the OEM string form chosen for a value.
type Encoding int

const (
	Text   Encoding = iota // io.systemd.credential:NAME=VALUE
	Binary                 // io.systemd.credential.binary:NAME=BASE64
)

func (e Encoding) String() string {
	if e == Binary {
		return "binary"
	}
	return "text"
}

// SMBIOS limits that bound what one VM can receive.
const (
	MaxStringsPerStructure = 255   // the Type 11 count byte
	MaxTableBytes          = 65535 // all SMBIOS structures together (x86, 2.x entry point)
	// DefaultReserved is what Encode leaves for the hypervisor's own SMBIOS structures. QEMU
	// 7.2's q35 structures other than Type 11 measure 376 bytes (2.8 entry point) or 382 (3.0)
	// with one socket and grow by 65 bytes per further socket (one Type 4 each; vCPUs within a
	// socket add nothing): 4 KiB covers about 57 sockets.
	DefaultReserved = 4096
)

// Budget is the room the OEM strings must fit in.
type Budget struct {
	MaxStrings    int // strings in the one Type 11 structure QEMU and cloud-hypervisor build
	MaxTableBytes int // whole table
	Reserved      int // bytes of the table taken by the hypervisor's other structures
	// MaxStructureBytes, when not zero, is how much of the Type 11 structure the guest's
	// systemd reads: before v257 PID 1 reads entries/11-N/raw with a single read of one page
	// (systemd PR 33539), so every string must end within the first 4096 bytes or it is
	// silently dropped or, worse, truncated.
	MaxStructureBytes int
}

// SystemdPageLimit is the part of a Type 11 structure systemd before v257 reads.
const SystemdPageLimit = 4096

// DefaultBudget fits QEMU (q35/pc) and cloud-hypervisor guests with up to 64 vCPUs and
// systemd 257 or newer inside.
var DefaultBudget = Budget{MaxStrings: MaxStringsPerStructure, MaxTableBytes: MaxTableBytes, Reserved: DefaultReserved}

// BudgetFor returns the budget for a guest running the given systemd version.
func BudgetFor(systemdVersion int) Budget {
	b := DefaultBudget
	if systemdVersion < 257 {
		b.MaxStructureBytes = SystemdPageLimit
	}
	return b
}

// TextSafe reports whether v can travel in the text form unchanged through every layer between
// the host and the guest: printable ASCII only (no NUL, control or non-ASCII bytes), none of the
// characters that QEMU's option syntax or cloud-hypervisor's list syntax treat specially
// (, [ ] " ' \), and no space at either end where tools trim.
func TextSafe(v []byte) bool {
	for i, c := range v {
		switch {
		case c < 0x20 || c > 0x7e:
			return false
		case c == ',' || c == '[' || c == ']' || c == '"' || c == '\'' || c == '\\':
			return false
		case c == ' ' && (i == 0 || i == len(v)-1):
			return false
		}
	}
	return true
}

// EncodeOEMString returns the OEM string for one credential and the form it chose. It does not
// validate; Encode does.
func EncodeOEMString(name string, v []byte) (string, Encoding) {
	if TextSafe(v) {
		return PrefixText + name + "=" + string(v), Text
	}
	return PrefixBinary + name + "=" + base64.StdEncoding.EncodeToString(v), Binary
}

// StructureSize is the size of a Type 11 structure holding strs: a 5-byte formatted area, each
// string with its NUL, and the NUL that ends the set (two NULs when there are no strings).
func StructureSize(strs []string) int {
	n := 5 + 1
	for _, s := range strs {
		n += len(s) + 1
	}
	if len(strs) == 0 {
		n++
	}
	return n
}

// Encode validates creds for delivery and returns their OEM strings in the same order. It fails,
// naming the credential at fault and never showing a value, when a name is invalid or repeated,
// a value exceeds systemd's limits, or the strings do not fit the SMBIOS budget b.
func Encode(creds []Credential, b Budget) ([]string, error) {
	out := make([]string, 0, len(creds))
	seen := make(map[string]bool, len(creds))
	total := 0
	size := StructureSize(nil) - 1 // header + final NUL; each string adds len+1
	for i, c := range creds {
		if err := ValidName(c.Name); err != nil {
			return nil, fmt.Errorf("credential #%d %s: %w", i+1, displayName(c.Name), err)
		}
		if seen[c.Name] {
			return nil, fmt.Errorf("credential %q: %w", c.Name, ErrDuplicate)
		}
		seen[c.Name] = true
		n := c.Value.Len()
		if n > MaxSize {
			return nil, fmt.Errorf("credential %q: %w (%d bytes)", c.Name, ErrTooLarge, n)
		}
		if total += n; total > MaxTotal {
			return nil, fmt.Errorf("credential %q: %w (%d bytes with the ones before it)", c.Name, ErrTotalTooLarge, total)
		}
		s, _ := EncodeOEMString(c.Name, c.Value.Bytes())
		if len(out)+1 > b.MaxStrings {
			return nil, fmt.Errorf("credential %q: %w: it is OEM string %d, one SMBIOS Type 11 structure holds %d", c.Name, ErrBudget, len(out)+1, b.MaxStrings)
		}
		// size counts the structure so far without its final NUL: 5-byte header + strings.
		if end := size - 1 + len(s) + 1; b.MaxStructureBytes > 0 && end > b.MaxStructureBytes {
			return nil, fmt.Errorf("credential %q: %w: its OEM string ends at byte %d of the Type 11 structure, but systemd before 257 reads only the first %d bytes and would drop or truncate it (fewer or smaller credentials, or a guest with systemd >= 257)",
				c.Name, ErrBudget, end, b.MaxStructureBytes)
		}
		if size += len(s) + 1; size+b.Reserved > b.MaxTableBytes {
			return nil, fmt.Errorf("credential %q: %w: its %d-byte OEM string brings the SMBIOS table to %d bytes, above %d (%d reserved for the hypervisor's own structures)",
				c.Name, ErrBudget, len(s), size+b.Reserved, b.MaxTableBytes, b.Reserved)
		}
		out = append(out, s)
	}
	return out, nil
}
