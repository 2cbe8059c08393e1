package credential

import (
	"encoding/base64"
	"fmt"
	"slices"

	"github.com/credlink/credlink/pkg/smbios"
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

// DefaultReserved is what Encode leaves for the hypervisor's own SMBIOS structures. QEMU 7.2's
// q35 structures other than Type 11 measure 376 bytes (2.8 entry point) or 382 (3.0) with one
// socket and grow by 65 bytes per further socket (one Type 4 each; vCPUs within a socket add
// nothing): 4 KiB covers about 57 sockets.
const DefaultReserved = 4096

// Budget is the room the OEM strings must fit in. The limits themselves are package smbios'.
type Budget struct {
	MaxStrings int // strings per Type 11 structure: smbios.MaxStrings
	// MaxStructures is how many Type 11 structures the delivery can build; 0 means as many as
	// needed (QEMU -smbios file=, local mode), 1 where the hypervisor builds the one structure
	// itself (QEMU -smbios type=11,path=, cloud-hypervisor).
	MaxStructures int
	MaxTableBytes int // whole table: smbios.MaxTable32
	Reserved      int // bytes of the table taken by the hypervisor's other structures
	// MaxStructureBytes, when not zero, is how much of each Type 11 structure the guest's
	// systemd reads: before 257 one page (smbios.EntryReadPage); a string past it would be
	// dropped or, worse, cut short.
	MaxStructureBytes int
	// Via names the delivery in errors ("QEMU -smbios type=11,path=", "cloud-hypervisor").
	Via string
}

// BudgetFor returns the budget for a guest running systemd v, delivered by a mechanism that
// builds at most structures Type 11 structures (0: any number).
func BudgetFor(v Systemd, structures int, via string) Budget {
	b := Budget{MaxStrings: smbios.MaxStrings, MaxStructures: structures, MaxTableBytes: smbios.MaxTable32, Reserved: DefaultReserved, Via: via}
	if v.EntryReadLimit() < smbios.EntryReadFull {
		b.MaxStructureBytes = v.EntryReadLimit()
	}
	return b
}

// DefaultBudget fits QEMU (q35/pc) and cloud-hypervisor guests with up to 64 vCPUs and
// systemd 257 or newer inside, delivered in one Type 11 structure.
var DefaultBudget = BudgetFor(SystemdLatest, 1, "")

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

// Encode validates creds for delivery and returns their OEM strings in the same order, grouped
// into Type 11 structures: a new structure starts when the current one holds b.MaxStrings
// strings or would exceed b.MaxStructureBytes. It fails, naming the credential at fault and
// never showing a value, when a name is invalid or repeated, a value exceeds systemd's limits,
// or the strings do not fit the SMBIOS budget b.
func Encode(creds []Credential, b Budget) ([][]string, error) {
	var groups [][]string
	var cur []string
	seen := make(map[string]bool, len(creds))
	total := 0
	empty := smbios.StructureSize(nil) - 1 // header + the set's final NUL; each string adds len+1
	curBytes, table := 0, 0
	via := ""
	if b.Via != "" {
		via = " (" + b.Via + ")"
	}
	for i, c := range creds {
		if err := ValidName(c.Name); err != nil {
			return nil, fmt.Errorf("credential #%d %s: %w", i+1, DisplayName(c.Name), err)
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
		if b.MaxStructureBytes > 0 && empty+len(s)+1 > b.MaxStructureBytes {
			return nil, fmt.Errorf("credential %q: %w: its %d-byte OEM string does not fit in the first %d bytes of a Type 11 entry, all that systemd before 257 reads; it would be cut short (a smaller credential, or a guest with systemd >= 257)",
				c.Name, ErrBudget, len(s), b.MaxStructureBytes)
		}
		full := len(cur) == b.MaxStrings
		long := b.MaxStructureBytes > 0 && curBytes+len(s)+1 > b.MaxStructureBytes
		if cur == nil || full || long {
			if cur != nil && b.MaxStructures > 0 && len(groups)+1 >= b.MaxStructures {
				if full {
					return nil, fmt.Errorf("credential %q: %w: it is OEM string %d, but one Type 11 structure holds %d and this delivery%s builds only %d",
						c.Name, ErrBudget, i+1, b.MaxStrings, via, b.MaxStructures)
				}
				return nil, fmt.Errorf("credential %q: %w: its OEM string would end at byte %d of the Type 11 structure, but systemd before 257 reads only the first %d bytes and would drop or cut it, and this delivery%s builds only %d structure(s) (fewer or smaller credentials, QEMU -smbios file= delivery, or a guest with systemd >= 257)",
					c.Name, ErrBudget, curBytes+len(s)+1, b.MaxStructureBytes, via, b.MaxStructures)
			}
			if cur != nil {
				groups = append(groups, cur)
			}
			cur, curBytes = []string{}, empty
			table += empty
		}
		cur = append(cur, s)
		curBytes += len(s) + 1
		if table += len(s) + 1; table+b.Reserved > b.MaxTableBytes {
			return nil, fmt.Errorf("credential %q: %w: its %d-byte OEM string brings the SMBIOS table to %d bytes, above %d (%d reserved for the hypervisor's own structures)",
				c.Name, ErrBudget, len(s), table+b.Reserved, b.MaxTableBytes, b.Reserved)
		}
	}
	if cur != nil {
		groups = append(groups, cur)
	}
	return groups, nil
}

// Flatten is every OEM string of groups, in order.
func Flatten(groups [][]string) []string { return slices.Concat(groups...) }

// WriteSMBIOSTree encodes creds (budget b) and writes the resulting table under root in the
// sysfs layout (smbios.WriteTree): what a guest would see, for local mode and fixtures.
func WriteSMBIOSTree(root string, creds []Credential, b Budget) error {
	groups, err := Encode(creds, b)
	if err != nil {
		return err
	}
	return smbios.WriteTree(root, groups)
}
