package smbios

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/credlink/credlink/pkg/regfile"
)

// qemuFixtures are tables captured from real QEMU 7.2 guests by test/fixtures/capture-smbios.sh.
func qemuFixtures(t testing.TB) []string {
	t.Helper()
	dirs, err := filepath.Glob("testdata/qemu/*")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no QEMU fixtures under testdata/qemu (run test/fixtures/capture-smbios.sh): %v", err)
	}
	return dirs
}

// wantStrings returns the strings that were handed to QEMU for a fixture.
func wantStrings(t testing.TB, dir string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "oem-strings"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
}

// entryStrings is systemd ≥ 257's view of a sysfs tree's entries.
func entryStrings(sysfs string) ([]string, error) {
	raws, err := ReadEntries(sysfs)
	im := Import(raws, EntryReadFull)
	if err == nil {
		err = im.Stop
	}
	return im.Strings, err
}

// tableStrings is the same view through Linux's table walk.
func tableStrings(ep, data []byte) ([]string, TableInfo, error) {
	raws, info, err := ParseTable(ep, data)
	im := Import(raws, EntryReadFull)
	if err == nil {
		err = im.Stop
	}
	return im.Strings, info, err
}

func TestQEMUFixtures(t *testing.T) {
	for _, dir := range qemuFixtures(t) {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			want := wantStrings(t, dir)
			sys := filepath.Join(dir, "sys")

			got, err := entryStrings(sys)
			if err != nil {
				t.Fatalf("entries: %v", err)
			}
			if !slices.Equal(got, want) {
				t.Errorf("entries: got %d strings, want the %d given to QEMU", len(got), len(want))
			}
			raws, info, err := ReadTable(sys)
			if err != nil {
				t.Fatalf("ReadTable: %v", err)
			}
			if got := Import(raws, EntryReadFull).Strings; !slices.Equal(got, want) {
				t.Errorf("ReadTable: got %d strings, want the %d given to QEMU", len(got), len(want))
			}
			args, _ := os.ReadFile(filepath.Join(dir, "qemu-args"))
			wantEP := EntryPoint32
			if strings.Contains(string(args), "smbios-entry-point-type=64") {
				wantEP = EntryPoint64
			}
			// The blob fixtures hand QEMU two complete structures (-smbios file=); the others
			// strings, which QEMU merges into one.
			wantStructs := 1
			if strings.Contains(dir, "blob") {
				wantStructs = 2
			}
			if info.EntryPoint != wantEP || !info.HadEndOfTable || info.OEMStructures != wantStructs || info.Stopped != "" {
				t.Errorf("info = %+v, want entry point %v, end-of-table, %d Type 11 structures", info, wantEP, wantStructs)
			}
			// The table walk yields the very bytes Linux exposes as entries/11-N/raw.
			own := 0
			data, _ := os.ReadFile(filepath.Join(sys, TableFile))
			for i, r := range raws {
				raw, _ := os.ReadFile(filepath.Join(sys, EntriesDir, fmt.Sprintf("11-%d", i), "raw"))
				if !bytes.Equal(r, raw) {
					t.Errorf("table walk's Type 11 structure %d differs from entries/11-%d/raw", i, i)
				}
				own += len(r)
			}
			if wantStructs == 2 {
				// QEMU keeps a blob's handle, puts blobs ahead of its own structures
				// (hw/smbios/smbios.c, smbios_entry_add appends them at option parsing) and
				// counts each in a 2.x entry point; SeaBIOS adds its Type 0 in front.
				if Handle(raws[0]) != FirstOEMHandle || Handle(raws[1]) != FirstOEMHandle+1 {
					t.Errorf("blob handles %#x, %#x", Handle(raws[0]), Handle(raws[1]))
				}
				if got := fmt.Sprint(structureTypes(data)); got != "[0 11 11 1 3 4 16 17 19 32 127]" {
					t.Errorf("structure types in table order: %s", got)
				}
				if wantEP == EntryPoint32 && info.Count != info.Structures {
					t.Errorf("entry point counts %d structures, the table has %d", info.Count, info.Structures)
				}
			}
			// QEMU's own structures (one socket, 256 MiB): the figure credential.DefaultReserved
			// and the README quote.
			wantOwn := map[EntryPointType]int{EntryPoint32: 376, EntryPoint64: 382}[wantEP]
			if own := len(data) - own; own != wantOwn {
				t.Errorf("QEMU's own structures take %d bytes, want %d", own, wantOwn)
			}
		})
	}
}

// structureTypes lists the types of a well-formed table's structures, in order.
func structureTypes(data []byte) []int {
	var out []int
	for pos := 0; pos+headerSize <= len(data); {
		end := pos + int(data[pos+1])
		for end < len(data)-1 && (data[end] != 0 || data[end+1] != 0) {
			end++
		}
		out = append(out, int(data[pos]))
		if data[pos] == TypeEndOfTable {
			break
		}
		pos = end + 2
	}
	return out
}

// Linux ≥ 6.6.39 can expose a table without its Type 127 structure.
func TestReadTableWithoutEndOfTable(t *testing.T) {
	for _, dir := range qemuFixtures(t) {
		sys := filepath.Join(dir, "sys")
		ep, _ := os.ReadFile(filepath.Join(sys, EntryPointFile))
		data, _ := os.ReadFile(filepath.Join(sys, TableFile))
		// QEMU ends with {127, 4, handle, handle, 0, 0}.
		if !bytes.HasSuffix(data, []byte{0, 0}) || data[len(data)-6] != TypeEndOfTable {
			t.Fatalf("%s: fixture does not end with a Type 127 structure", dir)
		}
		got, info, err := tableStrings(ep, data[:len(data)-6])
		if err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
		if info.HadEndOfTable {
			t.Errorf("%s: HadEndOfTable = true for a table without one", dir)
		}
		if want := wantStrings(t, dir); !slices.Equal(got, want) {
			t.Errorf("%s: got %d strings, want %d", dir, len(got), len(want))
		}
	}
}

// TestParseEntry is systemd's check of one entries/11-N/raw (src/shared/smbios11.c,
// read_smbios11_field) and its string walk (src/core/import-creds.c, parse_smbios_strings).
// Each fixture is the raw file's bytes.
func TestParseEntry(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		want []string
		err  string
	}{
		{name: "two strings", raw: "\x0b\x05\x00\x0b\x02a\x00bc\x00\x00", want: []string{"a", "bc"}},
		{name: "count byte ignored", raw: "\x0b\x05\x00\x0b\x09a\x00\x00", want: []string{"a"}},
		{name: "count byte zero ignored", raw: "\x0b\x05\x00\x0b\x00a\x00b\x00\x00", want: []string{"a", "b"}},
		{name: "no strings", raw: "\x0b\x05\x00\x0b\x00\x00\x00"},
		{name: "unterminated last string kept", raw: "\x0b\x05\x00\x0b\x01abc", want: []string{"abc"}},
		{name: "empty strings skipped, walk goes on", raw: "\x0b\x05\x00\x0b\x02a\x00\x00b\x00\x00", want: []string{"a", "b"}},
		{name: "header only", raw: "\x0b\x05\x00\x0b\x00"},
		{name: "short", raw: "\x0b\x05\x00", err: "malformed SMBIOS data: structure of 3 bytes is shorter than the 5-byte Type 11 header"},
		{name: "wrong type", raw: "\x01\x05\x00\x0b\x00\x00\x00", err: "malformed SMBIOS data: structure type 1, want 11"},
		{name: "length 4", raw: "\x0b\x04\x00\x0b\x00\x00\x00", err: "malformed SMBIOS data: formatted length 4; systemd accepts only 5"},
		{name: "length 6 (a longer formatted area is refused)", raw: "\x0b\x06\x00\x0b\x01\x00a\x00\x00", err: "malformed SMBIOS data: formatted length 6; systemd accepts only 5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseEntry([]byte(tt.raw))
			if tt.err != "" {
				if err == nil || err.Error() != tt.err || !errors.Is(err, ErrMalformed) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// TestImport is systemd's walk over entries/11-0, 11-1, … with its per-version read limit.
func TestImport(t *testing.T) {
	entry := func(strs ...string) []byte { b, _ := Structure(strs, FirstOEMHandle); return b }
	big := strings.Repeat("A", 136_600) // the 136,617-byte entry
	tests := []struct {
		name    string
		raws    [][]byte
		limit   int
		want    []string
		entries int
		cut     []Cut
		stop    string
	}{
		{name: "several entries in order", raws: [][]byte{entry("a", "b"), entry("c")}, limit: EntryReadFull, want: []string{"a", "b", "c"}, entries: 2},
		{name: "malformed second entry stops the walk, first kept", raws: [][]byte{entry("a"), []byte{1, 2}, entry("c")}, limit: EntryReadFull,
			want: []string{"a"}, entries: 1, stop: "entry 11-1: malformed SMBIOS data: structure of 2 bytes is shorter than the 5-byte Type 11 header"},
		{name: "entry of 136,617 bytes read whole by systemd >= 257", raws: [][]byte{entry("x:" + big)}, limit: EntryReadFull, want: []string{"x:" + big}, entries: 1},
		{name: "systemd < 257 reads one page and cuts the string crossing it", raws: [][]byte{entry("a", "x:"+big, "z")}, limit: EntryReadPage,
			want: []string{"a", "x:" + big[:EntryReadPage-5-2-2]}, entries: 1,
			cut: []Cut{{Entry: 0, Size: 136_617 - 10 + 4, Limit: EntryReadPage, LastString: "x:" + big[:EntryReadPage-5-2-2], Lost: []string{"z"}}}},
		{name: "an entry of exactly one page is not cut", raws: [][]byte{entry(strings.Repeat("p", EntryReadPage-7))}, limit: EntryReadPage,
			want: []string{strings.Repeat("p", EntryReadPage-7)}, entries: 1},
		{name: "cut right after a NUL names no string", raws: [][]byte{append(entry(strings.Repeat("p", EntryReadPage-6)), 'q', 0, 0)[:EntryReadPage+3]}, limit: EntryReadPage,
			want: []string{strings.Repeat("p", EntryReadPage-6)}, entries: 1, cut: []Cut{{Entry: 0, Size: EntryReadPage + 3, Limit: EntryReadPage, Lost: []string{"q"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			im := Import(tt.raws, tt.limit)
			if !slices.Equal(im.Strings, tt.want) {
				t.Errorf("strings: got %d %q…, want %d", len(im.Strings), head(im.Strings), len(tt.want))
			}
			if im.Entries != tt.entries {
				t.Errorf("entries = %d, want %d", im.Entries, tt.entries)
			}
			if (im.Stop == nil) != (tt.stop == "") || (im.Stop != nil && im.Stop.Error() != tt.stop) {
				t.Errorf("stop = %v, want %q", im.Stop, tt.stop)
			}
			if len(im.Cut) != len(tt.cut) {
				t.Fatalf("cut = %+v, want %+v", im.Cut, tt.cut)
			}
			for i := range im.Cut {
				if im.Cut[i].Entry != tt.cut[i].Entry || im.Cut[i].Limit != tt.cut[i].Limit || im.Cut[i].LastString != tt.cut[i].LastString || !slices.Equal(im.Cut[i].Lost, tt.cut[i].Lost) {
					t.Errorf("cut[%d] = %d/%d/%d bytes, want %d/%d", i, im.Cut[i].Entry, im.Cut[i].Limit, len(im.Cut[i].LastString), tt.cut[i].Entry, len(tt.cut[i].LastString))
				}
			}
		})
	}
}

func TestReadEntriesMissingAndBroken(t *testing.T) {
	if _, err := ReadEntries(t.TempDir()); !errors.Is(err, ErrNoTable) {
		t.Errorf("empty sysfs: err = %v, want ErrNoTable", err)
	}
	if _, _, err := ReadTable(t.TempDir()); !errors.Is(err, ErrNoTable) {
		t.Errorf("empty sysfs: ReadTable err = %v, want ErrNoTable", err)
	}

	// Tables without entries/: dmi_sysfs is not loaded, and systemd imports nothing.
	root := t.TempDir()
	if err := WriteTree(root, [][]string{{"a"}}); err != nil {
		t.Fatal(err)
	}
	os.Chmod(filepath.Join(root, EntriesDir, "11-0"), 0o700)
	if err := os.RemoveAll(filepath.Join(root, EntriesDir)); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadEntries(root); !errors.Is(err, ErrNoDMISysfs) || !strings.Contains(err.Error(), "load dmi_sysfs") {
		t.Errorf("no entries/: err = %v, want ErrNoDMISysfs", err)
	}

	// dmi present, no Type 11: no strings, no error.
	root = t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, EntriesDir, "1-0"), 0o755); err != nil {
		t.Fatal(err)
	}
	if got, err := ReadEntries(root); err != nil || len(got) != 0 {
		t.Errorf("no Type 11: got %q, %v", got, err)
	}

	// A gap ends the walk: 11-0 and 11-2 exist, 11-1 does not.
	root = t.TempDir()
	if err := WriteTree(root, [][]string{{"a"}, {"b"}, {"c"}}); err != nil {
		t.Fatal(err)
	}
	os.Chmod(filepath.Join(root, EntriesDir, "11-1"), 0o700)
	os.RemoveAll(filepath.Join(root, EntriesDir, "11-1"))
	if got, err := entryStrings(root); err != nil || !slices.Equal(got, []string{"a"}) {
		t.Errorf("gap at 11-1: got %q, %v", got, err)
	}

	// A broken second entry stops the walk but keeps the first, like systemd.
	root = t.TempDir()
	if err := WriteTree(root, [][]string{{"a"}, {"b"}}); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(root, EntriesDir, "11-1", "raw")
	os.Chmod(p, 0o600)
	if err := os.WriteFile(p, []byte{1, 2}, 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := entryStrings(root)
	if !errors.Is(err, ErrMalformed) || !slices.Equal(got, []string{"a"}) {
		t.Errorf("broken 11-1: got %q, %v", got, err)
	}
}

// TestParseTable is Linux's dmi_decode_table (drivers/firmware/dmi_scan.c): what it exposes as
// entries, from fixture tables.
func TestParseTable(t *testing.T) {
	oem := func(strs ...string) []byte { b, _ := Structure(strs, FirstOEMHandle); return b }
	end := []byte{TypeEndOfTable, 4, 0, 0x7f, 0, 0}
	other := []byte{1, 4, 0, 1, 'v', 0, 0} // a Type 1 with one string
	cat := func(bs ...[]byte) []byte { return bytes.Join(bs, nil) }
	tests := []struct {
		name    string
		ept     EntryPointType
		count   int // 2.x announced structure count; 0 = as built
		table   []byte
		want    []string
		stopped string
		noEnd   bool
	}{
		{name: "3.0: stops at end-of-table, ignores what follows", ept: EntryPoint64, table: cat(oem("a"), end, oem("after")), want: []string{"a"}},
		{name: "2.x: stops after the announced count", ept: EntryPoint32, count: 2, table: cat(other, oem("a"), oem("b"), end), want: []string{"a"}, noEnd: true},
		{name: "2.x: walks past end-of-table while the count allows", ept: EntryPoint32, count: 3, table: cat(oem("a"), end, oem("b")), want: []string{"a", "b"}},
		{name: "structure shorter than its header stops the walk", ept: EntryPoint64, table: cat(oem("a"), []byte{11, 3, 0, 0, 0, 0}, oem("b"), end), want: []string{"a"},
			stopped: "structure 1 at offset 8 has length 3, shorter than its header", noEnd: true},
		{name: "strings running off the table are not exposed", ept: EntryPoint64, table: cat(oem("a"), []byte{11, 5, 0, 0, 1, 'x', 'y'}), want: []string{"a"},
			stopped: "structure 1 at offset 8: strings run off the 15-byte table", noEnd: true},
		{name: "Type 11 with length 6 is exposed by Linux, then refused by systemd", ept: EntryPoint64, table: cat(oem("a"), []byte{11, 6, 0, 0, 1, 0, 'b', 0, 0}, oem("c"), end), want: []string{"a"}},
		{name: "3.0 table beyond 64 KiB", ept: EntryPoint64, table: cat(oem("a"), bytes.Repeat(oem("z"), 9000), end),
			want: append([]string{"a"}, slices.Repeat([]string{"z"}, 9000)...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ep := entryPoint64(len(tt.table), 0)
			if tt.ept == EntryPoint32 {
				ep = entryPoint32(len(tt.table), tt.count, 300, 0)
			}
			raws, info, err := ParseTable(ep, tt.table)
			if err != nil {
				t.Fatal(err)
			}
			got := Import(raws, EntryReadFull).Strings
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %d strings %q…, want %d", len(got), head(got), len(tt.want))
			}
			if info.Stopped != tt.stopped {
				t.Errorf("stopped = %q, want %q", info.Stopped, tt.stopped)
			}
			if info.HadEndOfTable == tt.noEnd {
				t.Errorf("HadEndOfTable = %v", info.HadEndOfTable)
			}
		})
	}
}

func TestParseTableErrors(t *testing.T) {
	good, _ := Build([][]string{{"x"}}, EntryPoint32)
	tests := []struct {
		name      string
		ep, table []byte
		err       string
	}{
		{name: "empty entry point", ep: nil, table: good.Data, err: "malformed SMBIOS data: entry point: too few bytes for SMBIOS entry point magic: 0"},
		{name: "bad magic", ep: []byte("_XX_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"), table: good.Data, err: "malformed SMBIOS data: entry point: unrecognized SMBIOS entry point magic: [95 88 88 95]"},
		{name: "short entry point", ep: append([]byte{}, good.EntryPoint[:4]...), table: good.Data, err: "malformed SMBIOS data: entry point: expected SMBIOS 32-bit entry point minimum length of at least 31, but got: 4"},
		{name: "announced size beyond what we read", ep: entryPoint64(MaxRead+1, 0), table: good.Data, err: "SMBIOS data too large: the entry point announces a 4194305-byte table"},
	}
	corrupt := append([]byte{}, good.EntryPoint...)
	corrupt[4]++
	tests = append(tests, struct {
		name      string
		ep, table []byte
		err       string
	}{name: "checksum", ep: corrupt, table: good.Data, err: "malformed SMBIOS data: entry point: invalid entry point checksum"})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := ParseTable(tt.ep, tt.table)
			if err == nil || !strings.HasPrefix(err.Error(), tt.err) {
				t.Fatalf("err = %v, want prefix %q", err, tt.err)
			}
		})
	}
}

// TestReadEntriesNotRegular: an entries/11-N/raw that is not a regular file (a FIFO in a tree
// given with --sysfs, a directory) ends the walk with a one-line error, without blocking.
func TestReadEntriesNotRegular(t *testing.T) {
	for _, tc := range []struct {
		name string
		make func(p string) error
		want string
	}{
		{"fifo", func(p string) error { return syscall.Mkfifo(p, 0o600) }, "raw: not a regular file (a FIFO)"},
		{"directory", func(p string) error { return os.Mkdir(p, 0o700) }, "raw: not a regular file (a directory)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			if err := WriteTree(root, [][]string{{"a"}, {"b"}}); err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(root, EntriesDir, "11-1", "raw")
			os.Chmod(filepath.Dir(p), 0o700)
			os.Remove(p)
			if err := tc.make(p); err != nil {
				t.Fatal(err)
			}
			done := make(chan struct{})
			var got [][]byte
			var err error
			go func() { got, err = ReadEntries(root); close(done) }()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("ReadEntries blocked")
			}
			if len(got) != 1 || !errors.Is(err, regfile.ErrNotRegular) || !strings.HasSuffix(err.Error(), tc.want) || strings.Count(err.Error(), p) != 1 {
				t.Errorf("got %d entries, %v; want 1 and an error naming %s once, ending %q", len(got), err, p, tc.want)
			}
		})
	}
}

// TestReadTableBounded: ReadTable reads an entry point of at most 64 bytes (the largest is 31)
// and refuses a longer file with ErrTooLarge instead of decoding a prefix of it.
func TestReadTableBounded(t *testing.T) {
	root := t.TempDir()
	if err := WriteTree(root, [][]string{{"a"}}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ReadTable(root); err != nil {
		t.Fatalf("as written: %v", err)
	}
	p := filepath.Join(root, EntryPointFile)
	ep, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, append(ep, make([]byte, 65-len(ep))...), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ReadTable(root); !errors.Is(err, ErrTooLarge) || strings.Count(err.Error(), p) != 1 {
		t.Errorf("65-byte entry point: err = %v, want ErrTooLarge naming %s once", err, p)
	}
}
