package credential

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

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

func problemStrings(s *Set) []string {
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
	writeFile(t, filepath.Join(dir, "BIG"), strings.Repeat("b", MaxSize+1))
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

	s, err := DirSource{Dir: dir}.Read()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(s.Names(), ","); got != "API_KEY,EMPTY" {
		t.Errorf("names = %s", got)
	}
	if c, _ := s.Get("API_KEY"); string(c.Value.Bytes()) != "k1" || c.Source != SourceCredentials {
		t.Errorf("API_KEY = %v from %q", c.Value, c.Source)
	}
	want := []string{
		`credential "BIG" from credentials skipped: credential larger than 1 MiB (more than 1048576 bytes)`,
		`credential "ESCAPE" from credentials skipped: not a regular file (L---------)`,
		`credential "INSIDE_LINK" from credentials skipped: not a regular file (L---------)`,
		`credential "SUBDIR" from credentials skipped: not a regular file (d---------)`,
		`credential <invalid name, 8 bytes> from credentials skipped: invalid credential name: ':' at byte 3`,
	}
	if got := problemStrings(s); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	if _, err := (DirSource{Dir: filepath.Join(dir, "nope")}).Read(); !errors.Is(err, ErrUnavailable) {
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
	s, err := FwCfgSource{Sysfs: sys}.Read()
	if err != nil {
		t.Fatal(err)
	}
	if c, ok := s.Get("FOO"); !ok || string(c.Value.Bytes()) != "fw-value" || c.Source != SourceFwCfg {
		t.Errorf("FOO = %v, %v", c, ok)
	}
	if len(s.Problems) != 1 || !strings.HasPrefix(s.Problems[0].Error(), `credential "NORAW" from fwcfg skipped: stat:`) {
		t.Errorf("problems = %q", problemStrings(s))
	}
	if _, err := (FwCfgSource{Sysfs: t.TempDir()}).Read(); !errors.Is(err, ErrUnavailable) {
		t.Errorf("no fw_cfg: %v", err)
	}
}

func TestSMBIOSSourceAndPrecedence(t *testing.T) {
	sys := t.TempDir()
	tb, err := smbios.Build([][]string{{"io.systemd.credential:SHARED=from-smbios", "io.systemd.credential:ONLY_SMBIOS=s", "junk"}}, smbios.EntryPoint64)
	if err != nil {
		t.Fatal(err)
	}
	if err := tb.WriteSysfs(sys); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(sys, FwCfgDir, "SHARED", "raw"), "from-fwcfg")

	for _, fromTable := range []bool{false, true} {
		s, err := SMBIOSSource{Sysfs: sys, FromTable: fromTable}.Read()
		if err != nil || s.Len() != 2 || s.Ignored != 1 {
			t.Fatalf("FromTable=%v: %v %v ignored=%d", fromTable, s.Names(), err, s.Ignored)
		}
	}

	// systemd's order: fw_cfg first, so fw_cfg wins for the same name.
	all, used, err := Read(FwCfgSource{Sysfs: sys}, SMBIOSSource{Sysfs: sys}, DirSource{Dir: filepath.Join(sys, "absent")})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(used, ",") != "fwcfg,smbios" {
		t.Errorf("used = %v", used)
	}
	if c, _ := all.Get("SHARED"); string(c.Value.Bytes()) != "from-fwcfg" || c.Source != SourceFwCfg {
		t.Errorf("SHARED from %s", c.Source)
	}
	if c, _ := all.Get("ONLY_SMBIOS"); c.Source != SourceSMBIOS {
		t.Errorf("ONLY_SMBIOS from %q", c.Source)
	}
	if got := problemStrings(all); len(got) != 1 || got[0] != `credential "SHARED" from smbios skipped: duplicate credential: an earlier one (from fwcfg) wins` {
		t.Errorf("problems = %q", got)
	}

	if _, _, err := Read(SMBIOSSource{Sysfs: t.TempDir()}); !errors.Is(err, ErrUnavailable) {
		t.Errorf("no sources: %v", err)
	}
}

// The total limit spans merged sources, as in systemd's single import context.
func TestMergeSharesTotal(t *testing.T) {
	a := &Set{}
	_ = a.Add(cred("A", strings.Repeat("a", MaxSize-10)))
	b := &Set{}
	_ = b.Add(cred("B", strings.Repeat("b", 11)))
	m := Merge(a, b)
	if m.Len() != 1 || len(m.Problems) != 1 || !errors.Is(m.Problems[0], ErrTotalTooLarge) {
		t.Errorf("merged %v, problems %v", m.Names(), m.Problems)
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
		s, err := DirSource{Dir: dir}.Read()
		if err != nil {
			t.Fatal(err)
		}
		if s.Len()+len(s.Problems) != 1 {
			t.Fatalf("one entry gave %d credentials and %d problems", s.Len(), len(s.Problems))
		}
		if link && s.Len() != 0 {
			t.Fatal("a symlink was imported")
		}
		if s.Len() == 1 && !s.All()[0].Value.Equal(NewValue(content)) {
			t.Fatal("value changed")
		}
	})
}
