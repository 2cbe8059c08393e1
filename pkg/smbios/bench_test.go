package smbios

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
)

// fullTable is 255 credentials filling a table to just under 64 KiB, the worst case a guest can
// receive.
func fullTable() [][]string {
	strs := make([]string, 255)
	for i := range strs {
		// 255 strings × ~250 bytes ≈ 63.8 KiB of structure.
		v := base64.StdEncoding.EncodeToString([]byte(strings.Repeat(fmt.Sprintf("%03d", i), 52)))
		strs[i] = fmt.Sprintf("io.systemd.credential.binary:CRED_%03d=%s", i, v)
	}
	return [][]string{strs}
}

func BenchmarkParseTable64K(b *testing.B) {
	tb, err := Build(fullTable(), EntryPoint64)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(tb.Data)))
	b.ReportAllocs()
	for b.Loop() {
		if strs, _, err := tableStrings(tb.EntryPoint, tb.Data); err != nil || len(strs) != 255 {
			b.Fatal(len(strs), err)
		}
	}
}

func BenchmarkParseEntry64K(b *testing.B) {
	tb, err := Build(fullTable(), EntryPoint64)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(tb.Entries[0])))
	b.ReportAllocs()
	for b.Loop() {
		if strs, err := ParseEntry(tb.Entries[0]); err != nil || len(strs) != 255 {
			b.Fatal(len(strs), err)
		}
	}
}

func BenchmarkBuild64K(b *testing.B) {
	groups := fullTable()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Build(groups, EntryPoint64); err != nil {
			b.Fatal(err)
		}
	}
}
