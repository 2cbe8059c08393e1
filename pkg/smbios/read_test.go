package smbios

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
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

func TestQEMUFixtures(t *testing.T) {
	for _, dir := range qemuFixtures(t) {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			want := wantStrings(t, dir)
			sys := filepath.Join(dir, "sys")

			got, err := ReadEntries(sys)
			if err != nil {
				t.Fatalf("ReadEntries: %v", err)
			}
			if !slices.Equal(got, want) {
				t.Errorf("ReadEntries: got %d strings, want the %d given to QEMU", len(got), len(want))
			}

			got, info, err := ReadTable(sys)
			if err != nil {
				t.Fatalf("ReadTable: %v", err)
			}
			if !slices.Equal(got, want) {
				t.Errorf("ReadTable: got %d strings, want the %d given to QEMU", len(got), len(want))
			}
			args, _ := os.ReadFile(filepath.Join(dir, "qemu-args"))
			wantEP := EntryPoint32
			if strings.Contains(string(args), "smbios-entry-point-type=64") {
				wantEP = EntryPoint64
			}
			if info.EntryPoint != wantEP || !info.HadEndOfTable || info.OEMStructures != 1 {
				t.Errorf("info = %+v, want entry point %v, end-of-table, one Type 11 structure", info, wantEP)
			}
			// QEMU's own structures (one socket, 256 MiB): the figure credential.DefaultReserved
			// and the README quote.
			data, _ := os.ReadFile(filepath.Join(sys, TableFile))
			raw, _ := os.ReadFile(filepath.Join(sys, EntriesDir, "11-0", "raw"))
			wantOwn := map[EntryPointType]int{EntryPoint32: 376, EntryPoint64: 382}[wantEP]
			if own := len(data) - len(raw); own != wantOwn {
				t.Errorf("QEMU's own structures take %d bytes, want %d", own, wantOwn)
			}
		})
	}
}

// Linux ≥ 6.6.39 can expose a table without its Type 127 structure; go-smbios alone returns
// io.EOF and nothing for such a table.
func TestReadTableWithoutEndOfTable(t *testing.T) {
	for _, dir := range qemuFixtures(t) {
		sys := filepath.Join(dir, "sys")
		ep, _ := os.ReadFile(filepath.Join(sys, EntryPointFile))
		data, _ := os.ReadFile(filepath.Join(sys, TableFile))
		// QEMU ends with {127, 4, handle, handle, 0, 0}.
		if !bytes.HasSuffix(data, []byte{0, 0}) || data[len(data)-6] != TypeEndOfTable {
			t.Fatalf("%s: fixture does not end with a Type 127 structure", dir)
		}
		got, info, err := ParseTable(ep, data[:len(data)-6])
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

func TestParseEntry(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		want []string
		err  string
	}{
		{name: "two strings", raw: "\x0b\x05\x00\x0b\x02a\x00bc\x00\x00", want: []string{"a", "bc"}},
		{name: "count byte ignored", raw: "\x0b\x05\x00\x0b\x09a\x00\x00", want: []string{"a"}},
		{name: "no strings", raw: "\x0b\x05\x00\x0b\x00\x00\x00"},
		{name: "unterminated last string kept", raw: "\x0b\x05\x00\x0b\x01abc", want: []string{"abc"}},
		{name: "stops at empty string", raw: "\x0b\x05\x00\x0b\x02a\x00\x00b\x00\x00", want: []string{"a"}},
		{name: "header only", raw: "\x0b\x05\x00\x0b\x00"},
		{name: "short", raw: "\x0b\x05\x00", err: "malformed SMBIOS data: structure of 3 bytes is shorter than the 5-byte Type 11 header"},
		{name: "wrong type", raw: "\x01\x05\x00\x0b\x00\x00\x00", err: "malformed SMBIOS data: structure type 1, want 11"},
		{name: "formatted too short", raw: "\x0b\x04\x00\x0b\x00\x00\x00", err: "malformed SMBIOS data: formatted length 4, want at least 5"},
		{name: "formatted beyond data", raw: "\x0b\x09\x00\x0b\x00\x00\x00", err: "malformed SMBIOS data: formatted length 9 exceeds the 7-byte structure"},
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

func TestReadEntriesMissingAndBroken(t *testing.T) {
	if _, err := ReadEntries(t.TempDir()); !errors.Is(err, ErrNoTable) {
		t.Errorf("empty sysfs: err = %v, want ErrNoTable", err)
	}
	if _, _, err := ReadTable(t.TempDir()); !errors.Is(err, ErrNoTable) {
		t.Errorf("empty sysfs: ReadTable err = %v, want ErrNoTable", err)
	}

	// dmi present, no Type 11: no strings, no error.
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, EntriesDir, "1-0"), 0o755); err != nil {
		t.Fatal(err)
	}
	if got, err := ReadEntries(root); err != nil || len(got) != 0 {
		t.Errorf("no Type 11: got %q, %v", got, err)
	}

	// A broken second entry stops the walk but keeps the first, like systemd.
	tb, _ := Build([][]string{{"a"}, {"b"}}, EntryPoint32)
	if err := tb.WriteSysfs(root); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(root, EntriesDir, "11-1", "raw")
	os.Chmod(p, 0o600)
	if err := os.WriteFile(p, []byte{1, 2}, 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := ReadEntries(root)
	if !errors.Is(err, ErrMalformed) || !slices.Equal(got, []string{"a"}) {
		t.Errorf("broken 11-1: got %q, %v", got, err)
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
		{name: "truncated structure", ep: good.EntryPoint, table: good.Data[:3], err: "malformed SMBIOS data: table: truncated structure"},
		{name: "unterminated strings", ep: good.EntryPoint, table: []byte{11, 5, 0, 0, 1, 'a', 'b'}, err: "malformed SMBIOS data: table: truncated structure"},
		{name: "short type 11", ep: good.EntryPoint, table: []byte{11, 4, 0, 0, 0, 0}, err: "malformed SMBIOS data: Type 11 structure with formatted length 4"},
		{name: "oversize", ep: good.EntryPoint, table: make([]byte, MaxTableSize+1), err: "SMBIOS data exceeds 65535 bytes: table of 65536 bytes"},
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
