package smbios

import (
	"os"
	"path/filepath"
	"testing"
)

// seedTables adds every QEMU capture and a few written images to the corpus.
func seedTables(f *testing.F) {
	for _, dir := range qemuFixtures(f) {
		sys := filepath.Join(dir, "sys")
		ep, _ := os.ReadFile(filepath.Join(sys, EntryPointFile))
		data, _ := os.ReadFile(filepath.Join(sys, TableFile))
		f.Add(ep, data)
	}
	for _, ept := range []EntryPointType{EntryPoint32, EntryPoint64} {
		tb, _ := Build([][]string{{"io.systemd.credential:A=b"}, {}}, ept)
		f.Add(tb.EntryPoint, tb.Data)
		f.Add(tb.EntryPoint, tb.Data[:len(tb.Data)-6])
	}
}

func FuzzParseTable(f *testing.F) {
	seedTables(f)
	f.Fuzz(func(t *testing.T, ep, data []byte) {
		raws, info, err := ParseTable(ep, data)
		if err != nil {
			return
		}
		total := 0
		for _, r := range raws {
			total += len(r)
			if _, err := ParseEntry(r); err == nil && r[len(r)-1] != 0 {
				t.Fatalf("exposed a structure without its terminating NUL")
			}
		}
		if total > len(data) || len(raws) > info.Structures {
			t.Fatalf("exposed %d bytes in %d structures from a %d-byte table (%d structures)", total, len(raws), len(data), info.Structures)
		}
		_ = Import(raws, EntryReadPage)
	})
}

func FuzzParseEntry(f *testing.F) {
	for _, dir := range qemuFixtures(f) {
		raw, _ := os.ReadFile(filepath.Join(dir, "sys", EntriesDir, "11-0", "raw"))
		f.Add(raw)
	}
	f.Add([]byte{11, 5, 0, 0, 1, 'a'})
	f.Fuzz(func(t *testing.T, raw []byte) {
		strs, err := ParseEntry(raw)
		if err != nil {
			return
		}
		// Whatever decodes must survive a write/read round trip unchanged.
		tb, err := Build([][]string{strs}, EntryPoint64)
		if err != nil {
			return // e.g. more than 255 strings: valid to read, not to write
		}
		again, err := ParseEntry(tb.Entries[0])
		if err != nil || len(again) != len(strs) {
			t.Fatalf("round trip: %d strings became %d (%v)", len(strs), len(again), err)
		}
	})
}
