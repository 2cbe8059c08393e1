package smbios

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	gosmbios "github.com/digitalocean/go-smbios/smbios"

	"github.com/credlink/credlink/pkg/regfile"
)

// TypeOEMStrings is the SMBIOS structure type of OEM strings; TypeEndOfTable ends a table.
const (
	TypeOEMStrings = 11
	TypeEndOfTable = 127
)

// Sysfs locations, relative to the sysfs root.
const (
	DMIDir         = "firmware/dmi"
	EntriesDir     = "firmware/dmi/entries"
	EntryPointFile = "firmware/dmi/tables/smbios_entry_point"
	TableFile      = "firmware/dmi/tables/DMI"
)

// Sentinel errors for callers that branch.
var (
	ErrNoTable = errors.New("no SMBIOS tables") // the sysfs files do not exist
	// ErrNoDMISysfs: the tables exist but entries/ does not, because the dmi_sysfs module is not
	// loaded; systemd then imports no SMBIOS credential at all.
	ErrNoDMISysfs = errors.New("dmi_sysfs is not loaded")
	ErrMalformed  = errors.New("malformed SMBIOS data") // the bytes do not decode
	ErrTooLarge   = errors.New("SMBIOS data too large")
)

// ReadEntries returns the raw Type 11 structures Linux exposes as entries/11-0/raw, 11-1/raw, …
// in order, until one is missing (systemd's import loop ends at the first ENOENT). Each file is
// read whole, or its first [MaxRead]+1 bytes when longer (more than any systemd reads, so
// [Import] still cuts it exactly as systemd does); apply Import to get what systemd makes of them.
//
// Errors: ErrNoTable when sysfs has no DMI directory at all; ErrNoDMISysfs when the tables are
// there but entries/ is not. A file that cannot be read ends the walk like in systemd: the
// entries before it are returned with the error.
func ReadEntries(sysfs string) ([][]byte, error) {
	var out [][]byte
	for i := 0; ; i++ {
		p := filepath.Join(sysfs, EntriesDir, "11-"+strconv.Itoa(i), "raw")
		raw, err := readHead(p, MaxRead)
		if errors.Is(err, fs.ErrNotExist) {
			if i == 0 {
				if _, derr := os.Stat(filepath.Join(sysfs, EntriesDir)); errors.Is(derr, fs.ErrNotExist) {
					if _, terr := os.Stat(filepath.Join(sysfs, TableFile)); terr == nil {
						return nil, fmt.Errorf("%w: %s does not exist but %s does, so systemd imports no SMBIOS credential (load dmi_sysfs before PID 1 imports credentials)",
							ErrNoDMISysfs, filepath.Join(sysfs, EntriesDir), filepath.Join(sysfs, TableFile))
					}
					return nil, fmt.Errorf("%w: %s does not exist", ErrNoTable, filepath.Join(sysfs, DMIDir))
				}
			}
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, raw)
	}
}

// Imported is what systemd's walk over the Type 11 entries yields (see [Import]).
type Imported struct {
	Strings []string // every OEM string, in order
	Entries int      // entries accepted
	Cut     []Cut    // entries longer than the reader's limit
	// Stop is why the walk ended before the last entry (a malformed entry, which systemd logs
	// and stops at), or nil.
	Stop error
}

// Cut is an entry of which the reader took only the first Limit of Size bytes: strings that
// start beyond Limit are lost, and the one crossing it is imported cut short.
type Cut struct {
	Entry, Size, Limit int
	// LastString is the cut string, so the caller can name the credential it belongs to.
	LastString string
	// Lost are the strings that start beyond Limit, whole, so the caller can name them.
	Lost []string
}

// Import walks raw Type 11 entries (from [ReadEntries] or [ReadTable]) the way systemd's
// import_credentials_smbios (src/core/import-creds.c) does with read_smbios11_field
// (src/shared/smbios11.c): each entry is read up to limit bytes ([EntryReadPage] before
// systemd 257, [EntryReadFull] since) and silently cut there; an entry that is not a valid
// Type 11 structure ([ParseEntry]) ends the walk, keeping what came before.
func Import(raws [][]byte, limit int) Imported {
	var im Imported
	for i, raw := range raws {
		var cut *Cut
		full := raw
		if limit > 0 && len(raw) > limit {
			cut = &Cut{Entry: i, Size: len(raw), Limit: limit}
			raw = raw[:limit]
		}
		strs, err := ParseEntry(raw)
		if err != nil {
			im.Stop = fmt.Errorf("entry 11-%d: %w", i, err)
			return im
		}
		if cut != nil && len(strs) > 0 && raw[len(raw)-1] != 0 {
			cut.LastString = strs[len(strs)-1]
		}
		if cut != nil {
			if all, err := ParseEntry(full); err == nil && len(all) > len(strs) {
				cut.Lost = all[len(strs):]
			}
			im.Cut = append(im.Cut, *cut)
		}
		im.Strings = append(im.Strings, strs...)
		im.Entries++
	}
	return im
}

// ParseEntry decodes one raw Type 11 structure as Linux exposes it in entries/11-N/raw, with
// systemd's checks (src/shared/smbios11.c, read_smbios11_field): at least the 5-byte header,
// type 11, length byte exactly 5. The count byte is ignored. The strings are walked as
// parse_smbios_strings (src/core/import-creds.c) does: NUL-separated up to the end of the data,
// empty strings skipped, an unterminated last string kept.
func ParseEntry(raw []byte) ([]string, error) {
	if len(raw) < OEMHeaderSize {
		return nil, fmt.Errorf("%w: structure of %d bytes is shorter than the %d-byte Type 11 header", ErrMalformed, len(raw), OEMHeaderSize)
	}
	if raw[0] != TypeOEMStrings {
		return nil, fmt.Errorf("%w: structure type %d, want %d", ErrMalformed, raw[0], TypeOEMStrings)
	}
	if raw[1] != OEMHeaderSize {
		return nil, fmt.Errorf("%w: formatted length %d; systemd accepts only %d", ErrMalformed, raw[1], OEMHeaderSize)
	}
	return splitStrings(raw[OEMHeaderSize:]), nil
}

// splitStrings is parse_smbios_strings' walk: every NUL-terminated string to the end of b,
// empty ones skipped, an unterminated last one kept.
func splitStrings(b []byte) []string {
	var out []string
	for len(b) > 0 {
		n := bytes.IndexByte(b, 0)
		if n < 0 {
			n = len(b)
		}
		if n > 0 {
			out = append(out, string(b[:n]))
		}
		b = b[min(n+1, len(b)):]
	}
	return out
}

// TableInfo describes a decoded table.
type TableInfo struct {
	EntryPoint    EntryPointType
	Major, Minor  int
	TableSize     int  // bytes of structures the entry point announces (3.0: the maximum)
	Count         int  // structures the entry point announces (2.x only; 0 for 3.0)
	Structures    int  // structures decoded, end-of-table included when present
	OEMStructures int  // Type 11 structures among them
	HadEndOfTable bool // false when the table lacked its Type 127 (Linux ≥ 6.6.39 may drop it)
	// Stopped says why the walk ended before the announced end (a structure shorter than its
	// 4-byte header, or strings running off the table), as Linux's dmi_decode_table stops.
	Stopped string
}

// ReadTable decodes the whole SMBIOS table under sysfs the way Linux does (see [ParseTable]) and
// returns its Type 11 structures as Linux would expose them in entries/11-N/raw.
func ReadTable(sysfs string) ([][]byte, TableInfo, error) {
	epb, err := readBounded(filepath.Join(sysfs, EntryPointFile), 64)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, TableInfo{}, fmt.Errorf("%w: %s does not exist", ErrNoTable, filepath.Join(sysfs, EntryPointFile))
	}
	if err != nil {
		return nil, TableInfo{}, err
	}
	tb, err := readBounded(filepath.Join(sysfs, TableFile), MaxRead)
	if err != nil {
		return nil, TableInfo{}, err
	}
	return ParseTable(epb, tb)
}

// ParseTable decodes an entry point (through go-smbios, which checks anchors and checksums) and
// walks the structure table it describes with the rules of Linux's dmi_decode_table
// (drivers/firmware/dmi_scan.c): at most the announced length; behind a 2.x entry point at most
// the announced number of structures, behind a 3.0 one up to and including the end-of-table
// structure; a structure shorter than 4 bytes stops the walk; a structure whose strings do not
// end (double NUL) inside the table is not exposed. It returns every Type 11 structure, formatted
// area and strings up to the double NUL, as dmi-sysfs exposes it in entries/11-N/raw.
func ParseTable(entryPoint, table []byte) ([][]byte, TableInfo, error) {
	var info TableInfo
	ep, err := gosmbios.ParseEntryPoint(bytes.NewReader(entryPoint))
	if err != nil { // go-smbios returns a typed nil with the error: never touch ep here
		return nil, info, fmt.Errorf("%w: entry point: %v", ErrMalformed, err)
	}
	switch e := ep.(type) {
	case *gosmbios.EntryPoint32Bit:
		info.EntryPoint = EntryPoint32
		info.Count = int(e.NumberStructures)
	case *gosmbios.EntryPoint64Bit:
		info.EntryPoint = EntryPoint64
	}
	info.Major, info.Minor, _ = ep.Version()
	_, info.TableSize = ep.Table()
	if info.TableSize > MaxRead {
		return nil, info, fmt.Errorf("%w: the entry point announces a %d-byte table, more than credlink reads (%d)", ErrTooLarge, info.TableSize, MaxRead)
	}
	if info.TableSize < len(table) {
		table = table[:info.TableSize]
	}
	var out [][]byte
	n := len(table)
	pos := 0
	for i := 0; (info.Count == 0 || i < info.Count) && pos+headerSize <= n; i++ {
		typ, length := table[pos], int(table[pos+1])
		if length < headerSize {
			info.Stopped = fmt.Sprintf("structure %d at offset %d has length %d, shorter than its header", i, pos, length)
			break
		}
		end := pos + length
		for end < n-1 && (table[end] != 0 || table[end+1] != 0) {
			end++
		}
		if end >= n-1 {
			info.Stopped = fmt.Sprintf("structure %d at offset %d: strings run off the %d-byte table", i, pos, n)
			break
		}
		end += 2
		info.Structures++
		if typ == TypeOEMStrings {
			info.OEMStructures++
			out = append(out, bytes.Clone(table[pos:end]))
		}
		pos = end
		if typ == TypeEndOfTable {
			info.HadEndOfTable = true
			if info.Count == 0 {
				break
			}
		}
	}
	return out, info, nil
}

// Handle returns a structure's handle.
func Handle(raw []byte) uint16 { return binary.LittleEndian.Uint16(raw[2:4]) }

// readHead reads a file, or its first limit+1 bytes when it holds more.
func readHead(path string, limit int) ([]byte, error) {
	f, err := openRegular(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, int64(limit)+1))
	if err != nil {
		return nil, readErr(path, err)
	}
	return b, nil
}

// openRegular opens a sysfs file without blocking and refuses anything but a regular file:
// sysfs attributes are regular files, and a FIFO in a tree given with --sysfs would otherwise
// hang open(2) until a writer appears. Errors keep fs.ErrNotExist for the callers' walks.
func openRegular(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, regfile.NotRegular(fi.Mode()))
	}
	return f, nil
}

// readErr words a read error once: io.ReadAll's *fs.PathError already says "read PATH".
func readErr(path string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return err
	}
	return fmt.Errorf("read %s: %w", path, err)
}

// readBounded reads at most limit bytes of a file and fails if it holds more.
func readBounded(path string, limit int) ([]byte, error) {
	b, err := readHead(path, limit)
	if err != nil {
		return nil, err
	}
	if len(b) > limit {
		return nil, fmt.Errorf("%s: %w: more than %d bytes", path, ErrTooLarge, limit)
	}
	return b, nil
}
