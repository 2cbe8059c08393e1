package smbios

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func TestBuildRoundTrip(t *testing.T) {
	groups := [][]string{
		{"io.systemd.credential:A=1", "vendor string", "io.systemd.credential.binary:B=AAEC"},
		{},
		{"second structure"},
	}
	var flat []string
	for _, g := range groups {
		flat = append(flat, g...)
	}
	for _, ept := range []EntryPointType{EntryPoint32, EntryPoint64} {
		t.Run(ept.String(), func(t *testing.T) {
			tb, err := Build(groups, ept)
			if err != nil {
				t.Fatal(err)
			}
			root := t.TempDir()
			if err := tb.WriteSysfs(root); err != nil {
				t.Fatal(err)
			}
			got, err := entryStrings(root)
			if err != nil || !slices.Equal(got, flat) {
				t.Errorf("entries = %q, %v; want %q", got, err, flat)
			}
			got, info, err := tableStrings(tb.EntryPoint, tb.Data)
			if err != nil || !slices.Equal(got, flat) {
				t.Errorf("table = %q, %v; want %q", got, err, flat)
			}
			if info.EntryPoint != ept || info.OEMStructures != 3 || info.Structures != 4 || !info.HadEndOfTable {
				t.Errorf("info = %+v", info)
			}
			// The dump layout decodes too, with the table at offset 32.
			dump := tb.DumpBin()
			got, _, err = tableStrings(dump[:len(tb.EntryPoint)], dump[dumpTableOffset:])
			if err != nil || !slices.Equal(got, flat) {
				t.Errorf("DumpBin: %q, %v", got, err)
			}
		})
	}
}

func TestBuildErrors(t *testing.T) {
	many := make([]string, 256)
	for i := range many {
		many[i] = "s"
	}
	huge := strings.Repeat("x", MaxTable32)
	tests := []struct {
		name   string
		groups [][]string
		err    string
	}{
		{"256 strings", [][]string{many}, "structure 0: more than 255 strings in one structure (256)"},
		{"empty string", [][]string{{"a", ""}}, "structure 0: string 2: invalid OEM string: empty (an empty string would end the set)"},
		{"NUL", [][]string{{"a\x00b"}}, "structure 0: string 1: invalid OEM string: contains NUL"},
		{"too large", [][]string{{huge}}, "structure 0: SMBIOS data too large: table exceeds 65535 bytes"},
		{"end marker does not fit", [][]string{{huge[:MaxTable32-8]}}, "end-of-table: SMBIOS data too large: table exceeds 65535 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Build(tt.groups, EntryPoint32)
			if err == nil || err.Error() != tt.err {
				t.Fatalf("err = %v, want %q", err, tt.err)
			}
		})
	}
	if _, err := Build([][]string{many[:255]}, EntryPoint64); err != nil {
		t.Errorf("255 strings must fit: %v", err)
	}
}

var dmidecodeString = regexp.MustCompile(`^\s+String (\d+): (.*)$`)

// dmidecodeOEMStrings runs dmidecode on a dump file and returns the Type 11 strings it shows.
func dmidecodeOEMStrings(t *testing.T, dump []byte) []string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "dump.bin")
	if err := os.WriteFile(p, dump, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("dmidecode", "--from-dump", p, "-t", "11").CombinedOutput()
	if err != nil {
		t.Fatalf("dmidecode: %v\n%s", err, out)
	}
	var got []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if m := dmidecodeString.FindStringSubmatch(sc.Text()); m != nil {
			got = append(got, m[2])
		}
	}
	return got
}

func needDmidecode(t *testing.T) {
	if _, err := exec.LookPath("dmidecode"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("dmidecode is missing; .ci/run installs it")
		}
		t.Skip("dmidecode not installed (apt-get install dmidecode)")
	}
}

// TestDmidecodeAgrees compares our writer and decoder with dmidecode, an independent SMBIOS
// implementation, on written images of both entry point types and on the QEMU captures.
func TestDmidecodeAgrees(t *testing.T) {
	needDmidecode(t)
	var many []string
	for i := range 200 {
		many = append(many, fmt.Sprintf("io.systemd.credential:C%03d=%s", i, strings.Repeat("v", i)))
	}
	images := map[string][][]string{
		"small": {{"io.systemd.credential:A=1", "io.systemd.credential.binary:B=AAEC", "other=x,y"}},
		"many":  {many},
		"two":   {many[:10], many[10:20]},
	}
	for name, groups := range images {
		for _, ept := range []EntryPointType{EntryPoint32, EntryPoint64} {
			t.Run(fmt.Sprintf("%s/%v", name, ept), func(t *testing.T) {
				tb, err := Build(groups, ept)
				if err != nil {
					t.Fatal(err)
				}
				ours, _, err := tableStrings(tb.EntryPoint, tb.Data)
				if err != nil {
					t.Fatal(err)
				}
				if theirs := dmidecodeOEMStrings(t, tb.DumpBin()); !slices.Equal(ours, theirs) {
					t.Errorf("dmidecode sees %d strings %q…, we decode %d", len(theirs), head(theirs), len(ours))
				}
			})
		}
	}
	// QEMU's own tables, re-laid in dump format (entry point patched to point at offset 32).
	for _, dir := range qemuFixtures(t) {
		t.Run("qemu/"+filepath.Base(dir), func(t *testing.T) {
			sys := filepath.Join(dir, "sys")
			ep, _ := os.ReadFile(filepath.Join(sys, EntryPointFile))
			data, _ := os.ReadFile(filepath.Join(sys, TableFile))
			ours, _, err := tableStrings(ep, data)
			if err != nil {
				t.Fatal(err)
			}
			theirs := dmidecodeOEMStrings(t, relocate(t, ep, data))
			// dmidecode shows control characters (the newlines of wrapped base64) as '.'.
			if !slices.Equal(dmidecodeFilter(ours), theirs) {
				t.Errorf("dmidecode sees %d strings, we decode %d", len(theirs), len(ours))
			}
		})
	}
}

// relocate returns a dmidecode dump of a captured entry point and table.
func relocate(t *testing.T, ep, data []byte) []byte {
	ep = slices.Clone(ep)
	switch {
	case bytes.HasPrefix(ep, []byte("_SM3_")):
		ep[16], ep[17], ep[18], ep[19], ep[20], ep[21], ep[22], ep[23] = dumpTableOffset, 0, 0, 0, 0, 0, 0, 0
		ep[5] = 0
		ep[5] = -sum(ep[:ep[6]])
	case bytes.HasPrefix(ep, []byte("_SM_")):
		ep[24], ep[25], ep[26], ep[27] = dumpTableOffset, 0, 0, 0
		ep[21] = 0
		ep[21] = -sum(ep[16:31])
		ep[4] = 0
		ep[4] = -sum(ep[:ep[5]])
	default:
		t.Fatalf("unknown entry point %q", ep[:5])
	}
	out := make([]byte, dumpTableOffset)
	copy(out, ep)
	return append(out, data...)
}

func head(s []string) []string { return s[:min(len(s), 3)] }

// dmidecodeFilter applies dmidecode's display filter (dmi_string: bytes below 32 and 127 become '.').
func dmidecodeFilter(in []string) []string {
	out := make([]string, len(in))
	for i, s := range in {
		b := []byte(s)
		for j, c := range b {
			if c < 32 || c == 127 {
				b[j] = '.'
			}
		}
		out[i] = string(b)
	}
	return out
}
