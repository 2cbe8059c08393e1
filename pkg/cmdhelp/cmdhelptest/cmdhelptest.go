// Package cmdhelptest checks a program's help against goldens and README.md: the one test both
// programs run, so their help behaves the same and cannot drift from the README.
package cmdhelptest

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/credlink/credlink/pkg/cmdhelp"
)

// RunFunc is a program's entry point: arguments without the program name, exit status.
type RunFunc func(args []string, stdout, stderr io.Writer) int

// Check runs p's help conventions through run and compares each help text with
// testdata/help/NAME.golden (rewritten when update is true), and README.md's option tables at
// readme with [cmdhelp.Program.SyncREADME] (README rewritten when update is true).
func Check(t *testing.T, p *cmdhelp.Program, run RunFunc, readme string, update bool) {
	t.Helper()
	if err := p.Check(); err != nil {
		t.Fatalf("help groups: %v", err)
	}
	type call struct {
		golden string // "" for outputs that must equal the overview
		args   []string
		code   int
		stderr bool // the text goes to stderr
	}
	calls := []call{
		{"overview", []string{"--help"}, 0, false},
		{"", []string{"-h"}, 0, false},
		{"", []string{"help"}, 0, false},
		{"", []string{"--help", "run"}, 0, false},
	}
	for _, c := range p.Commands {
		if c.Flags == nil {
			continue
		}
		calls = append(calls,
			call{"command-" + c.Name, []string{"help", c.Name}, 0, false},
			call{"command-" + c.Name, []string{c.Name, "--help"}, 0, false},
			call{"command-" + c.Name, []string{c.Name, "-h"}, 0, false})
	}
	var overview string
	for _, c := range calls {
		name := strings.Join(c.args, " ")
		var out, errb bytes.Buffer
		code := run(c.args, &out, &errb)
		got, other := out.String(), errb.String()
		if c.stderr {
			got, other = other, got
		}
		if code != c.code || other != "" {
			t.Errorf("%s %s: exit %d (want %d), other stream %q", p.Name, name, code, c.code, other)
		}
		switch c.golden {
		case "":
			if got != overview {
				t.Errorf("%s %s differs from --help:\n%s", p.Name, name, got)
			}
		default:
			if c.golden == "overview" {
				overview = got
			}
			compareGolden(t, filepath.Join("testdata", "help", c.golden+".golden"), got, update)
		}
	}
	// Unknown commands and flags: a clear line, then the overview or the command's help, on
	// stderr with exit 2; nothing on stdout.
	bad := [][]string{{"no-such-command"}, {"help", "no-such-command"}, {"help", "run", "no-such-extra"},
		{"version", "no-such-extra"}, {"version", "--no-such-flag"}}
	for _, c := range p.Commands {
		if c.Flags != nil {
			bad = append(bad, []string{c.Name, "--no-such-flag"})
		}
	}
	for _, args := range bad {
		var out, errb bytes.Buffer
		code := run(args, &out, &errb)
		if code != 2 || out.Len() != 0 || !strings.Contains(errb.String(), "no-such-") || !strings.Contains(errb.String(), "Usage") {
			t.Errorf("%s %q: exit %d, stdout %q, stderr %q; want 2, nothing, the error and the usage", p.Name, args, code, out.String(), errb.String())
		}
	}
	var out, errb bytes.Buffer
	if code := run([]string{"version"}, &out, &errb); code != 0 || !strings.HasPrefix(out.String(), p.Name+" ") ||
		!strings.Contains(out.String(), "(commit ") || !strings.Contains(out.String(), " go1.") {
		t.Errorf("%s version: exit %d, %q; want the version, commit and Go version", p.Name, code, out.String())
	}
	doc, err := os.ReadFile(readme)
	if err != nil {
		t.Fatal(err)
	}
	synced, err := p.SyncREADME(string(doc))
	if err != nil {
		t.Fatalf("%s: %v", readme, err)
	}
	if synced != string(doc) {
		if update {
			if err := os.WriteFile(readme, []byte(synced), 0o644); err != nil {
				t.Fatal(err)
			}
			return
		}
		t.Errorf("%s's option tables differ from %s's flags; run go test with -update", readme, p.Name)
	}
}

func compareGolden(t *testing.T, path, got string, update bool) {
	t.Helper()
	if update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (run with -update to accept):\n%s", path, got)
	}
}
