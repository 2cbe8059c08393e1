package cmdhelp

import (
	"bytes"
	"flag"
	"strings"
	"testing"
)

func testProgram() *Program {
	return &Program{
		Name:    "prog",
		Summary: "does a thing",
		Commands: []Command{
			{Name: "go", Args: "[options]", Summary: "go somewhere", README: true,
				Flags: func(fs *flag.FlagSet) {
					fs.String("to", "home", "where to `PLACE`")
					fs.Bool("fast", false, "hurry | rush")
				},
				Groups: []Group{{Title: "Where", Flags: []string{"to"}}, {Title: "How", Flags: []string{"fast"}}}},
			{Name: "stop", Summary: "stop"},
		},
		Examples: []Example{{Comment: "go home", Command: "prog go --to home"}},
		Footer:   "Exit status: 0 ok.",
	}
}

func TestHelpConventions(t *testing.T) {
	p := testProgram()
	for _, tt := range []struct {
		name     string
		args     []string
		code     int
		out, err string // substrings of stdout and stderr ("" = must be empty)
	}{
		{"overview", nil, 0, "Commands:\n  go    go somewhere\n  stop  stop", ""},
		{"command", []string{"go"}, 0, "Where:\n  --to PLACE  where to PLACE (default home)", ""},
		{"unknown", []string{"fly"}, 2, "", "unknown command \"fly\"\n\nprog — does a thing"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := p.Help(tt.args, &out, &errb); code != tt.code {
				t.Fatalf("code %d, want %d", code, tt.code)
			}
			for _, c := range []struct{ got, want string }{{out.String(), tt.out}, {errb.String(), tt.err}} {
				if c.want == "" && c.got != "" || !strings.Contains(c.got, c.want) {
					t.Errorf("output %q, want it to contain %q", c.got, c.want)
				}
			}
		})
	}
}

func TestParse(t *testing.T) {
	p := testProgram()
	c, _ := p.Command("go")
	for _, tt := range []struct {
		args     []string
		code     int
		ok       bool
		out, err bool // whether stdout and stderr get text
	}{
		{[]string{"--to", "x"}, 0, true, false, false},
		{[]string{"--help"}, 0, false, true, false},
		{[]string{"-h"}, 0, false, true, false},
		{[]string{"--nope"}, 2, false, false, true},
		{[]string{"--to"}, 2, false, false, true},
	} {
		var out, errb bytes.Buffer
		fs := flag.NewFlagSet("go", flag.ContinueOnError)
		c.Flags(fs)
		code, ok := p.Parse(c, fs, tt.args, &out, &errb)
		if code != tt.code || ok != tt.ok || (out.Len() > 0) != tt.out || (errb.Len() > 0) != tt.err {
			t.Errorf("Parse(%q) = %d, %v; stdout %q stderr %q", tt.args, code, ok, out.String(), errb.String())
		}
	}
}

func TestCheckFindsUngroupedFlags(t *testing.T) {
	p := testProgram()
	if err := p.Check(); err != nil {
		t.Fatalf("Check: %v", err)
	}
	p.Commands[0].Groups = []Group{{Title: "Where", Flags: []string{"to", "to", "ghost"}}}
	err := p.Check()
	for _, want := range []string{"--fast is in no group", "--to is in 2 groups", "unknown flag --ghost"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Check() = %v, want it to say %q", err, want)
		}
	}
}

func TestMarkdownAndREADME(t *testing.T) {
	p := testProgram()
	c, _ := p.Command("go")
	md := Markdown(c)
	for _, want := range []string{"| **Where** | | |", "| `--to PLACE` | `home` | where to PLACE |", "| `--fast` |  | hurry \\| rush |"} {
		if !strings.Contains(md, want) {
			t.Errorf("Markdown lacks %q:\n%s", want, md)
		}
	}
	doc := "intro\n<!-- BEGIN prog go options -->\nstale\n<!-- END prog go options -->\nrest\n"
	got, err := p.SyncREADME(doc)
	if err != nil || got != "intro\n<!-- BEGIN prog go options -->\n"+md+"<!-- END prog go options -->\nrest\n" {
		t.Errorf("SyncREADME = %q, %v", got, err)
	}
	if _, err := p.SyncREADME("no markers"); err == nil {
		t.Error("SyncREADME accepted a README without the block")
	}
}

func TestVersionLine(t *testing.T) {
	v := Version("prog", "v1.2.3")
	if !strings.HasPrefix(v, "prog v1.2.3 (commit ") || !strings.Contains(v, ", go1.") {
		t.Errorf("Version = %q", v)
	}
}
