package sources

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/credlink/credlink/pkg/credential"
	"github.com/credlink/credlink/pkg/smbios"
)

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o400); err != nil {
		t.Fatal(err)
	}
}

func problemStrings(s *credential.Set) []string {
	var out []string
	for _, p := range s.Problems {
		out = append(out, p.Error())
	}
	return out
}

func TestDirSource(t *testing.T) {
	outside := t.TempDir()
	writeFile(t, filepath.Join(outside, "stolen"), "outside-secret")
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "API_KEY"), "k1")
	writeFile(t, filepath.Join(dir, "EMPTY"), "")
	writeFile(t, filepath.Join(dir, "BIG"), strings.Repeat("b", credential.MaxSize+1))
	if err := os.Symlink(filepath.Join(outside, "stolen"), filepath.Join(dir, "ESCAPE")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("API_KEY", filepath.Join(dir, "INSIDE_LINK")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "SUBDIR"), 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "bad:name"), "x")

	s, err := Dir{Dir: dir}.Read()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(s.Names(), ","); got != "API_KEY,EMPTY" {
		t.Errorf("names = %s", got)
	}
	if c, _ := s.Get("API_KEY"); string(c.Value.Bytes()) != "k1" || c.Source != credential.SourceCredentials {
		t.Errorf("API_KEY = %v from %q", c.Value, c.Source)
	}
	want := []string{
		`credential "BIG" from credentials skipped: credential larger than 1 MiB (more than 1048576 bytes)`,
		`credential "ESCAPE" from credentials skipped: not a regular file (a symlink)`,
		`credential "INSIDE_LINK" from credentials skipped: not a regular file (a symlink)`,
		`credential "SUBDIR" from credentials skipped: not a regular file (a directory)`,
		`credential <invalid name, 8 bytes> from credentials skipped: invalid credential name: ':' at byte 3`,
	}
	if got := problemStrings(s); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// The unusable entries make the source partial, so check, STATUS= and the metric show them.
	wantWarn := `5 entries not imported: "BIG" (credential larger than 1 MiB (more than 1048576 bytes)), "ESCAPE" (not a regular file (a symlink)), ` +
		`"INSIDE_LINK" (not a regular file (a symlink)), "SUBDIR" (not a regular file (a directory)), <invalid name, 8 bytes> (invalid name)`
	if got := strings.Join(s.Warnings, "\n"); got != wantWarn {
		t.Errorf("warnings: %s\nwant: %s", got, wantWarn)
	}
	if _, r, _ := ReadSource(Dir{Dir: dir}); r.State != Partial || r.Detail != wantWarn {
		t.Errorf("report = %+v, want partial", r)
	}

	if _, err := (Dir{Dir: filepath.Join(dir, "nope")}).Read(); !errors.Is(err, ErrUnavailable) {
		t.Errorf("missing dir: %v", err)
	}
}

func TestFwCfgSource(t *testing.T) {
	sys := t.TempDir()
	base := filepath.Join(sys, FwCfgDir)
	writeFile(t, filepath.Join(base, "FOO", "raw"), "fw-value")
	writeFile(t, filepath.Join(base, "FOO", "size"), "8")
	if err := os.MkdirAll(filepath.Join(base, "NORAW"), 0o700); err != nil {
		t.Fatal(err)
	}
	s, err := FwCfg{Sysfs: sys}.Read()
	if err != nil {
		t.Fatal(err)
	}
	if c, ok := s.Get("FOO"); !ok || string(c.Value.Bytes()) != "fw-value" || c.Source != credential.SourceFwCfg {
		t.Errorf("FOO = %v, %v", c, ok)
	}
	if len(s.Problems) != 1 || !strings.HasPrefix(s.Problems[0].Error(), `credential "NORAW" from fwcfg skipped: stat:`) {
		t.Errorf("problems = %q", problemStrings(s))
	}
	if _, err := (FwCfg{Sysfs: t.TempDir()}).Read(); !errors.Is(err, ErrUnavailable) {
		t.Errorf("no fw_cfg: %v", err)
	}
}

func TestSMBIOSSourceAndPrecedence(t *testing.T) {
	sys := t.TempDir()
	if err := smbios.WriteTree(sys, [][]string{{"io.systemd.credential:SHARED=from-smbios", "io.systemd.credential:ONLY_SMBIOS=s", "junk"}}); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(sys, FwCfgDir, "SHARED", "raw"), "from-fwcfg")

	for _, fromTable := range []bool{false, true} {
		s, err := SMBIOS{Sysfs: sys, FromTable: fromTable}.Read()
		if err != nil || s.Len() != 2 || s.Ignored != 1 {
			t.Fatalf("FromTable=%v: %v %v ignored=%d", fromTable, s.Names(), err, s.Ignored)
		}
	}

	// systemd's order: fw_cfg first, so fw_cfg wins for the same name.
	all, reports, err := Read(FwCfg{Sysfs: sys}, SMBIOS{Sysfs: sys}, Dir{Dir: filepath.Join(sys, "absent")})
	if err != nil {
		t.Fatal(err)
	}
	if used := Used(reports); strings.Join(used, ",") != "fwcfg,smbios" {
		t.Errorf("used = %v", used)
	}
	if reports[2].State != Unavailable {
		t.Errorf("absent directory: %+v", reports[2])
	}
	if c, _ := all.Get("SHARED"); string(c.Value.Bytes()) != "from-fwcfg" || c.Source != credential.SourceFwCfg {
		t.Errorf("SHARED from %s", c.Source)
	}
	if c, _ := all.Get("ONLY_SMBIOS"); c.Source != credential.SourceSMBIOS {
		t.Errorf("ONLY_SMBIOS from %q", c.Source)
	}
	if got := problemStrings(all); len(got) != 1 || got[0] != `credential "SHARED" from smbios skipped: duplicate credential: an earlier one (from fwcfg) wins` {
		t.Errorf("problems = %q", got)
	}

	if _, _, err := Read(SMBIOS{Sysfs: t.TempDir()}); !errors.Is(err, ErrUnavailable) {
		t.Errorf("no sources: %v", err)
	}
}

func FuzzDirSource(f *testing.F) {
	f.Add("API_KEY", []byte("value"), false)
	f.Add("..", []byte{}, true)
	f.Add("a:b", []byte{0, 1, 2}, false)
	f.Fuzz(func(t *testing.T, name string, content []byte, link bool) {
		if name == "" || strings.ContainsAny(name, "/\x00") || name == "." || name == ".." || len(name) > 255 {
			return // the file system cannot hold such a name
		}
		dir := t.TempDir()
		p := filepath.Join(dir, name)
		var err error
		if link {
			err = os.Symlink(string(content), p)
		} else {
			err = os.WriteFile(p, content, 0o600)
		}
		if err != nil {
			return
		}
		s, err := Dir{Dir: dir}.Read()
		if err != nil {
			t.Fatal(err)
		}
		if s.Len()+len(s.Problems) != 1 {
			t.Fatalf("one entry gave %d credentials and %d problems", s.Len(), len(s.Problems))
		}
		if link && s.Len() != 0 {
			t.Fatal("a symlink was imported")
		}
		if s.Len() == 1 && !s.All()[0].Value.Equal(credential.NewValue(content)) {
			t.Fatal("value changed")
		}
	})
}

// TestSMBIOSSourceBySystemd: the inputs, read as each systemd version does. A failure in
// one entry or one source never hides the credentials systemd would still import.
func TestSMBIOSSourceBySystemd(t *testing.T) {
	bigValue := make([]byte, 100<<10)
	for i := range bigValue {
		bigValue[i] = byte(i * 7)
	}
	bigString, _ := credential.EncodeOEMString("BIG_BLOB_", bigValue) // makes the 136,617-byte entry
	bigEntry := [][]string{{bigString, "io.systemd.credential:API_KEY=abcd"}}
	tests := []struct {
		name     string
		groups   [][]string
		v        credential.Systemd
		names    []string
		warnings []string
		problems []string
	}{
		{name: "136,617-byte entry, systemd 257: everything", groups: bigEntry, v: 257, names: []string{"API_KEY", "BIG_BLOB_"}},
		{name: "136,617-byte entry, version unknown: rules of 257", groups: bigEntry, v: 0, names: []string{"API_KEY", "BIG_BLOB_"}},
		{name: "136,617-byte entry, systemd 254: one page, BIG_BLOB_ imported cut short, API_KEY lost", groups: bigEntry, v: 254, names: []string{"BIG_BLOB_"},
			problems: []string{`credential "API_KEY" from smbios skipped: not imported by the guest's systemd: it starts beyond the first 4096 bytes of entries/11-0, all that systemd 254 reads`},
			warnings: []string{`entries/11-0 has 136617 bytes but systemd 254 reads only the first 4096: credential "BIG_BLOB_" crosses that boundary and is imported cut short; later strings in it are lost`},
		},
		{name: "the same split over structures, systemd 252: each read whole", groups: [][]string{{"io.systemd.credential:A=1"}, {"io.systemd.credential:B=2"}}, v: 252, names: []string{"A", "B"}},
		{name: "text credential crossing the page, systemd 252: imported cut", groups: [][]string{{"io.systemd.credential:T=" + strings.Repeat("t", 5000)}}, v: 252, names: []string{"T"},
			warnings: []string{`entries/11-0 has 5031 bytes but systemd 252 reads only the first 4096: credential "T" crosses that boundary and is imported cut short; later strings in it are lost`}},
	}
	for _, tt := range tests {
		for _, fromTable := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/table=%v", tt.name, fromTable), func(t *testing.T) {
				sys := t.TempDir()
				if err := smbios.WriteTree(sys, tt.groups); err != nil {
					t.Fatal(err)
				}
				s, err := SMBIOS{Sysfs: sys, FromTable: fromTable, Systemd: tt.v}.Read()
				if err != nil {
					t.Fatal(err)
				}
				if got := s.Names(); strings.Join(got, ",") != strings.Join(tt.names, ",") {
					t.Errorf("names = %v, want %v", got, tt.names)
				}
				want := tt.warnings
				if fromTable {
					want = nil
					for _, w := range tt.warnings {
						want = append(want, strings.Replace(w, "entries/11-0", "Type 11 structure 0", 1))
					}
				}
				if strings.Join(s.Warnings, "|") != strings.Join(want, "|") {
					t.Errorf("warnings = %q\nwant       %q", s.Warnings, want)
				}
				wantProblems := strings.Join(tt.problems, "|")
				if fromTable {
					wantProblems = strings.ReplaceAll(wantProblems, "entries/11-0", "Type 11 structure 0")
				}
				if got := problemStrings(s); strings.Join(got, "|") != wantProblems {
					t.Errorf("problems = %q, want %q", got, wantProblems)
				}
			})
		}
	}
}

// TestReadReportsEverySource: one source failing or missing is reported, never swallowed, and
// never stops the others from being read.
func TestReadReportsEverySource(t *testing.T) {
	sys := t.TempDir()
	if err := smbios.WriteTree(sys, [][]string{{"io.systemd.credential:A=1"}, {}}); err != nil {
		t.Fatal(err)
	}
	// fw_cfg's directory is a file: it exists and cannot be read.
	writeFile(t, filepath.Join(sys, FwCfgDir), "not a directory")
	// The second entry is malformed: systemd stops there, keeping A.
	p := filepath.Join(sys, smbios.EntriesDir, "11-1", "raw")
	os.Chmod(p, 0o600)
	os.WriteFile(p, []byte{11, 6, 0, 0, 0, 0, 0}, 0o600)

	set, reports, err := Read(FwCfg{Sysfs: sys}, SMBIOS{Sysfs: sys})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := set.Get("A"); !ok || set.Len() != 1 {
		t.Errorf("got %v, want A", set.Names())
	}
	if reports[0].State != Failed || !strings.Contains(reports[0].Detail, "not a directory") {
		t.Errorf("fw_cfg: %+v", reports[0])
	}
	if reports[1].State != Partial || reports[1].Detail != "entry 11-1: malformed SMBIOS data: formatted length 6; systemd accepts only 5: systemd stops at this entry; it and later ones are not imported" {
		t.Errorf("smbios: %+v", reports[1])
	}

	// Tables without dmi_sysfs: unavailable, and it says why.
	sys = t.TempDir()
	if err := smbios.WriteTree(sys, [][]string{{"io.systemd.credential:A=1"}}); err != nil {
		t.Fatal(err)
	}
	os.Chmod(filepath.Join(sys, smbios.EntriesDir, "11-0"), 0o700)
	os.RemoveAll(filepath.Join(sys, smbios.EntriesDir))
	_, reports, err = Read(FwCfg{Sysfs: sys}, SMBIOS{Sysfs: sys})
	if !errors.Is(err, ErrUnavailable) || reports[1].State != Unavailable || !strings.Contains(reports[1].Detail, "dmi_sysfs is not loaded") {
		t.Errorf("no dmi_sysfs: %v %+v", err, reports)
	}
}

// TestSMBIOSSourceHugeEntry: an entry larger than anything systemd reads is cut where systemd
// 257 cuts it (header + 1 MiB), not refused, and the credentials before the cut stay verified.
func TestSMBIOSSourceHugeEntry(t *testing.T) {
	sys := t.TempDir()
	if err := smbios.WriteTree(sys, [][]string{{"x"}}); err != nil {
		t.Fatal(err)
	}
	raw, err := smbios.Structure([]string{"io.systemd.credential:A=1", "io.systemd.credential:HUGE=" + strings.Repeat("h", 5<<20)}, smbios.FirstOEMHandle)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(sys, smbios.EntriesDir, "11-0", "raw")
	os.Chmod(p, 0o600)
	if err := os.WriteFile(p, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := SMBIOS{Sysfs: sys, Systemd: 257}.Read()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Get("A"); !ok {
		t.Errorf("A not imported: %v", s.Names())
	}
	want := `entries/11-0 has more than 4194304 bytes but systemd 257 reads only the first 1048581: credential "HUGE" crosses that boundary`
	if len(s.Warnings) != 1 || !strings.HasPrefix(s.Warnings[0], want) {
		t.Errorf("warnings = %q", s.Warnings)
	}
	// Like systemd 257, the cut value (just under 1 MiB) is imported, and known to be cut.
	if c, ok := s.Get("HUGE"); !ok || c.Cut != "systemd 257 reads only the first 1048581 bytes of entries/11-0" || c.Value.Len() != smbios.EntryReadFull-5-26-27 {
		t.Errorf("HUGE: present %v, cut %q, %d bytes", ok, c.Cut, c.Value.Len())
	}
}
