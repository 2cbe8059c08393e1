package cmdhelp

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"reflect"
	"runtime"
	"runtime/debug"
	"strings"
	"text/tabwriter"
)

// Program describes one executable: the overview and its commands.
type Program struct {
	Name     string    // e.g. "host-launcher"
	Summary  string    // what the program is for; wrapped paragraphs, printed as is
	Commands []Command // in the order the overview lists them
	Examples []Example // the two or three invocations people actually run
	Footer   string    // exit status contract and pointers, printed last
}

// Command is one subcommand.
type Command struct {
	Name    string // "run"
	Args    string // synopsis after the name, e.g. "--vm NAME --hypervisor KIND [options] [-- ARGV…]"
	Summary string // one line for the overview
	// Flags registers the command's flags on fs; nil for a command without flags. It must be the
	// same function the command parses with.
	Flags func(fs *flag.FlagSet)
	// Groups orders the flags by purpose; every registered flag must be in exactly one group
	// ([Program.Check]).
	Groups []Group
	// README puts the command's option table into README.md between the markers named by
	// [Program.READMEBlock].
	README bool
}

// Group is a titled set of flags, e.g. "cloud-hypervisor" or "credentials".
type Group struct {
	Title string
	Flags []string // flag names without dashes
}

// Example is an invocation shown in the overview.
type Example struct {
	Comment string // "as a systemd unit"
	Command string // the command line
}

// Command returns the command named name.
func (p *Program) Command(name string) (*Command, bool) {
	for i := range p.Commands {
		if p.Commands[i].Name == name {
			return &p.Commands[i], true
		}
	}
	return nil, false
}

// IsHelp reports whether arg asks for help: -h, -help, --help or help.
func IsHelp(arg string) bool {
	switch arg {
	case "-h", "-help", "--help", "help":
		return true
	}
	return false
}

// Overview writes the program's overview: summary, commands, examples, footer.
func (p *Program) Overview(w io.Writer) {
	fmt.Fprintf(w, "%s — %s\n\n", p.Name, strings.TrimSpace(p.Summary))
	fmt.Fprintln(w, "Usage:")
	fmt.Fprintf(w, "  %s COMMAND [options]\n  %s help [COMMAND]\n\nCommands:\n", p.Name, p.Name)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, c := range p.Commands {
		fmt.Fprintf(tw, "  %s\t%s\n", c.Name, c.Summary)
	}
	tw.Flush()
	if len(p.Examples) > 0 {
		fmt.Fprintln(w, "\nExamples:")
		for _, e := range p.Examples {
			fmt.Fprintf(w, "  # %s\n  %s\n\n", e.Comment, e.Command)
		}
	} else {
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "Run '%s help COMMAND' or '%s COMMAND --help' for a command's options.\n", p.Name, p.Name)
	if p.Footer != "" {
		fmt.Fprintf(w, "%s\n", strings.TrimSpace(p.Footer))
	}
}

// Help handles `help [COMMAND]` (args are what follows "help"): it writes the overview or the
// command's help to stdout and returns 0, or names the unknown command, writes the overview to
// stderr and returns 2.
func (p *Program) Help(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		p.Overview(stdout)
		return 0
	}
	c, ok := p.Command(args[0])
	if !ok {
		return p.Unknown(args[0], stderr)
	}
	if len(args) > 1 {
		return p.Unexpected("help", args[1], stderr)
	}
	p.CommandHelp(c, stdout)
	return 0
}

// Unexpected reports an argument a command without arguments (help COMMAND, version) was
// given: a clear line, then the overview, on stderr, exit status 2. An argument starting with
// '-' is an unknown flag.
func (p *Program) Unexpected(cmd, arg string, stderr io.Writer) int {
	what := "argument"
	if strings.HasPrefix(arg, "-") {
		what = "flag"
	}
	fmt.Fprintf(stderr, "%s %s: unexpected %s %q\n\n", p.Name, cmd, what, arg)
	p.Overview(stderr)
	return 2
}

// flagSpec is how help writes a flag: "--name", or "-v" for a one-letter flag, the way such
// flags are written (and accepted: package flag takes both).
func flagSpec(name string) string {
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
}

// Unknown reports an unknown command: the overview on stderr, exit status 2.
func (p *Program) Unknown(cmd string, stderr io.Writer) int {
	fmt.Fprintf(stderr, "%s: unknown command %q\n\n", p.Name, cmd)
	p.Overview(stderr)
	return 2
}

// CommandHelp writes one command's synopsis and its flags, grouped, with defaults.
func (p *Program) CommandHelp(c *Command, w io.Writer) {
	fmt.Fprintf(w, "Usage: %s %s %s\n\n%s\n", p.Name, c.Name, c.Args, c.Summary)
	fs := c.FlagSet()
	if fs == nil {
		return
	}
	for _, g := range c.Groups {
		fmt.Fprintf(w, "\n%s:\n", g.Title)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, name := range g.Flags {
			f := fs.Lookup(name)
			if f == nil {
				continue // Check reports it
			}
			arg, usage := flag.UnquoteUsage(f)
			spec := flagSpec(f.Name)
			if arg != "" {
				spec += " " + arg
			}
			if d := defaultOf(f); d != "" {
				usage += " (default " + d + ")"
			}
			fmt.Fprintf(tw, "  %s\t%s\n", spec, usage)
		}
		tw.Flush()
	}
}

// FlagSet returns a fresh flag set with the command's flags registered, or nil.
func (c *Command) FlagSet() *flag.FlagSet {
	if c.Flags == nil {
		return nil
	}
	fs := flag.NewFlagSet(c.Name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c.Flags(fs)
	return fs
}

// Parse parses args with fs (which the caller built with c.Flags) the conventional way:
// `--help`/`-h` writes the command's help to stdout and returns (0, false); a bad flag writes
// the error and the command's help to stderr and returns (2, false); otherwise (0, true).
func (p *Program) Parse(c *Command, fs *flag.FlagSet, args []string, stdout, stderr io.Writer) (int, bool) {
	fs.SetOutput(io.Discard) // flag's own usage text is replaced by CommandHelp
	err := fs.Parse(args)
	switch {
	case err == nil:
		return 0, true
	case errors.Is(err, flag.ErrHelp):
		p.CommandHelp(c, stdout)
		return 0, false
	default:
		fmt.Fprintf(stderr, "%s %s: %v\n\n", p.Name, c.Name, err)
		p.CommandHelp(c, stderr)
		return 2, false
	}
}

// Check reports flags that are in no group, in more than one, or grouped but not registered:
// the help would hide or invent them.
func (p *Program) Check() error {
	var errs []error
	for i := range p.Commands {
		c := &p.Commands[i]
		fs := c.FlagSet()
		seen := map[string]int{}
		for _, g := range c.Groups {
			for _, n := range g.Flags {
				seen[n]++
				if fs == nil || fs.Lookup(n) == nil {
					errs = append(errs, fmt.Errorf("%s %s: group %q lists unknown flag --%s", p.Name, c.Name, g.Title, n))
				}
			}
		}
		if fs == nil {
			continue
		}
		fs.VisitAll(func(f *flag.Flag) {
			switch seen[f.Name] {
			case 0:
				errs = append(errs, fmt.Errorf("%s %s: flag --%s is in no group", p.Name, c.Name, f.Name))
			case 1:
			default:
				errs = append(errs, fmt.Errorf("%s %s: flag --%s is in %d groups", p.Name, c.Name, f.Name, seen[f.Name]))
			}
		})
	}
	return errors.Join(errs...)
}

// Markdown renders a command's flags as the README's reference table: one row per flag, grouped
// in the order of c.Groups, with defaults.
func Markdown(c *Command) string {
	var b strings.Builder
	b.WriteString("| option | default | meaning |\n|---|---|---|\n")
	fs := c.FlagSet()
	if fs == nil {
		return b.String()
	}
	for _, g := range c.Groups {
		fmt.Fprintf(&b, "| **%s** | | |\n", g.Title)
		for _, name := range g.Flags {
			f := fs.Lookup(name)
			if f == nil {
				continue
			}
			arg, usage := flag.UnquoteUsage(f)
			spec := flagSpec(f.Name)
			if arg != "" {
				spec += " " + arg
			}
			d := defaultOf(f)
			if d != "" {
				d = "`" + d + "`"
			}
			fmt.Fprintf(&b, "| `%s` | %s | %s |\n", spec, d, strings.ReplaceAll(usage, "|", `\|`))
		}
	}
	return b.String()
}

// defaultOf is the flag's default as the help should show it: empty for zero values.
func defaultOf(f *flag.Flag) string {
	if isZeroValue(f) {
		return ""
	}
	return f.DefValue
}

// isZeroValue mirrors the flag package's own test (flag.go, isZeroValue): a default equal to the
// zero value of the flag's type is not worth printing.
func isZeroValue(f *flag.Flag) bool {
	typ := reflect.TypeOf(f.Value)
	var z reflect.Value
	if typ.Kind() == reflect.Pointer {
		z = reflect.New(typ.Elem())
	} else {
		z = reflect.Zero(typ)
	}
	if v, ok := z.Interface().(flag.Value); ok && f.DefValue == v.String() {
		return true
	}
	switch f.DefValue {
	case "", "false", "0", "0s", "[]":
		return true
	}
	return false
}

// Version is the `version` line: program, version, commit (from the Go toolchain's VCS stamp,
// "+dirty" when the tree had changes) and Go version, e.g.
// "host-launcher v0.3.0 (commit 53e2e06, go1.26.8 linux/amd64)".
func Version(program, version string) string {
	commit := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		var rev, modified string
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				modified = s.Value
			}
		}
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if rev != "" {
			commit = rev
			if modified == "true" {
				commit += "+dirty"
			}
		}
	}
	return fmt.Sprintf("%s %s (commit %s, %s %s/%s)", program, version, commit, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// ReplaceBlock returns doc with the text between the lines "<!-- BEGIN name -->" and
// "<!-- END name -->" replaced by content; an error if the markers are missing.
func ReplaceBlock(doc, name, content string) (string, error) {
	begin, end := "<!-- BEGIN "+name+" -->\n", "<!-- END "+name+" -->"
	i := strings.Index(doc, begin)
	j := strings.Index(doc, end)
	if i < 0 || j < i {
		return "", fmt.Errorf("no %q … %q block", strings.TrimSpace(begin), end)
	}
	return doc[:i+len(begin)] + content + doc[j:], nil
}

// READMEBlock is the marker name of a command's option table in README.md.
func (p *Program) READMEBlock(c *Command) string { return p.Name + " " + c.Name + " options" }

// SyncREADME returns doc with every README option table of p regenerated; an error names a
// block whose markers are missing.
func (p *Program) SyncREADME(doc string) (string, error) {
	var err error
	for i := range p.Commands {
		c := &p.Commands[i]
		if !c.README {
			continue
		}
		if doc, err = ReplaceBlock(doc, p.READMEBlock(c), Markdown(c)); err != nil {
			return "", err
		}
	}
	return doc, nil
}
