package smbios

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	gosmbios "github.com/digitalocean/go-smbios/smbios"
)

// TypeOEMStrings is the SMBIOS structure type of OEM strings; TypeEndOfTable ends a table.
const (
	TypeOEMStrings = 11
	TypeEndOfTable = 127
)

// Sysfs locations, relative to the sysfs root.
const (
	EntriesDir     = "firmware/dmi/entries"
	EntryPointFile = "firmware/dmi/tables/smbios_entry_point"
	TableFile      = "firmware/dmi/tables/DMI"
)

// MaxTableSize bounds what the readers accept: the largest table an x86 guest can have.
const MaxTableSize = 65535

// Sentinel errors for callers that branch.
var (
	ErrNoTable   = errors.New("no SMBIOS tables")      // the sysfs files do not exist
	ErrMalformed = errors.New("malformed SMBIOS data") // the bytes do not decode
	ErrTooLarge  = errors.New("SMBIOS data exceeds 65535 bytes")
)

// ReadEntries returns the strings of every Type 11 structure under sysfs, in order, read the way
// systemd 252+ imports them: entries/11-0/raw, 11-1/raw, … until one is missing; each must be a
// Type 11 structure whose formatted area is at least 5 bytes; the count byte is ignored and the
// strings run up to the first empty one (the double NUL) or the end of the data.
//
// As in systemd, a malformed entry stops the walk: the strings read so far are returned with the
// error. ErrNoTable is returned when there is no 11-0 entry at all and the dmi directory itself
// is missing (an entry directory without Type 11 is simply no strings).
func ReadEntries(sysfs string) ([]string, error) {
	var out []string
	for i := 0; ; i++ {
		p := filepath.Join(sysfs, EntriesDir, "11-"+strconv.Itoa(i), "raw")
		raw, err := readBounded(p, MaxTableSize)
		if errors.Is(err, fs.ErrNotExist) {
			if i == 0 {
				if _, derr := os.Stat(filepath.Join(sysfs, EntriesDir)); errors.Is(derr, fs.ErrNotExist) {
					return nil, fmt.Errorf("%w: %s does not exist (is dmi_sysfs loaded?)", ErrNoTable, filepath.Join(sysfs, EntriesDir))
				}
			}
			return out, nil
		}
		if err != nil {
			return out, err
		}
		strs, err := ParseEntry(raw)
		if err != nil {
			return out, fmt.Errorf("%s: %w", p, err)
		}
		out = append(out, strs...)
	}
}

// ParseEntry decodes one raw Type 11 structure as Linux exposes it in entries/11-N/raw.
func ParseEntry(raw []byte) ([]string, error) {
	if len(raw) < 5 {
		return nil, fmt.Errorf("%w: structure of %d bytes is shorter than the 5-byte Type 11 header", ErrMalformed, len(raw))
	}
	if raw[0] != TypeOEMStrings {
		return nil, fmt.Errorf("%w: structure type %d, want %d", ErrMalformed, raw[0], TypeOEMStrings)
	}
	if raw[1] < 5 {
		return nil, fmt.Errorf("%w: formatted length %d, want at least 5", ErrMalformed, raw[1])
	}
	if int(raw[1]) > len(raw) {
		return nil, fmt.Errorf("%w: formatted length %d exceeds the %d-byte structure", ErrMalformed, raw[1], len(raw))
	}
	// systemd starts the strings right after the 5-byte header; Linux's raw entry starts them after
	// the formatted area, which for Type 11 is the same place.
	return splitStrings(raw[raw[1]:]), nil
}

// splitStrings walks NUL-terminated strings until an empty one or the end of b; an unterminated
// last string is kept, as systemd does.
func splitStrings(b []byte) []string {
	var out []string
	for len(b) > 0 {
		n := bytes.IndexByte(b, 0)
		if n == 0 {
			break
		}
		if n < 0 {
			out = append(out, string(b))
			break
		}
		out = append(out, string(b[:n]))
		b = b[n+1:]
	}
	return out
}

// TableInfo describes a decoded table.
type TableInfo struct {
	EntryPoint    EntryPointType
	Major, Minor  int
	TableSize     int  // bytes of structures the entry point announces (3.0: the maximum)
	Structures    int  // structures decoded, end-of-table included when present
	OEMStructures int  // Type 11 structures among them
	HadEndOfTable bool // false when the table lacked its Type 127 (Linux ≥ 6.6.39 may drop it)
}

// ReadTable decodes the whole SMBIOS table under sysfs and returns the strings of every Type 11
// structure in table order.
func ReadTable(sysfs string) ([]string, TableInfo, error) {
	epb, err := readBounded(filepath.Join(sysfs, EntryPointFile), 64)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, TableInfo{}, fmt.Errorf("%w: %s does not exist", ErrNoTable, filepath.Join(sysfs, EntryPointFile))
	}
	if err != nil {
		return nil, TableInfo{}, err
	}
	tb, err := readBounded(filepath.Join(sysfs, TableFile), MaxTableSize)
	if err != nil {
		return nil, TableInfo{}, err
	}
	return ParseTable(epb, tb)
}

// ParseTable decodes an entry point and the structure table it describes.
func ParseTable(entryPoint, table []byte) ([]string, TableInfo, error) {
	var info TableInfo
	ep, err := gosmbios.ParseEntryPoint(bytes.NewReader(entryPoint))
	if err != nil { // go-smbios returns a typed nil with the error: never touch ep here
		return nil, info, fmt.Errorf("%w: entry point: %v", ErrMalformed, err)
	}
	switch ep.(type) {
	case *gosmbios.EntryPoint32Bit:
		info.EntryPoint = EntryPoint32
	case *gosmbios.EntryPoint64Bit:
		info.EntryPoint = EntryPoint64
	}
	info.Major, info.Minor, _ = ep.Version()
	_, info.TableSize = ep.Table()
	if len(table) > MaxTableSize {
		return nil, info, fmt.Errorf("%w: table of %d bytes", ErrTooLarge, len(table))
	}
	if info.TableSize >= 0 && info.TableSize < len(table) {
		table = table[:info.TableSize]
	}
	// go-smbios only finishes at a Type 127 structure and otherwise discards everything with
	// io.EOF; append one so a table without it still decodes. A table that has one stops there.
	buf := make([]byte, 0, len(table)+6)
	buf = append(buf, table...)
	buf = append(buf, TypeEndOfTable, 4, 0xff, 0xfe, 0, 0)
	ss, err := gosmbios.NewDecoder(bytes.NewReader(buf)).Decode()
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			err = errors.New("truncated structure")
		}
		return nil, info, fmt.Errorf("%w: table: %v", ErrMalformed, err)
	}
	var out []string
	for _, s := range ss {
		if s.Header.Type == TypeEndOfTable {
			if isSynthetic(s) {
				break
			}
			info.HadEndOfTable = true
		}
		info.Structures++
		if s.Header.Type != TypeOEMStrings {
			continue
		}
		if s.Header.Length < 5 {
			return nil, info, fmt.Errorf("%w: Type 11 structure with formatted length %d", ErrMalformed, s.Header.Length)
		}
		info.OEMStructures++
		out = append(out, s.Strings...)
	}
	return out, info, nil
}

func isSynthetic(s *gosmbios.Structure) bool {
	return s.Header.Handle == 0xfeff && s.Header.Length == 4 && len(s.Strings) == 0
}

// readBounded reads at most limit bytes of a file and fails if it holds more.
func readBounded(path string, limit int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, int64(limit)+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(b) > limit {
		return nil, fmt.Errorf("%s: %w", path, ErrTooLarge)
	}
	return b, nil
}
