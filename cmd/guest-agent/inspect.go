package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/credlink/credlink/pkg/cmdhelp"
	"github.com/credlink/credlink/pkg/credential"
	"github.com/credlink/credlink/pkg/smbios"
	"github.com/credlink/credlink/pkg/sources"
	"github.com/credlink/credlink/pkg/version"
)

func printVersion(stdout io.Writer) int {
	fmt.Fprintln(stdout, cmdhelp.Version("guest-agent", version.String()))
	return exitOK
}

type inspectVars struct {
	sysfs             string
	table, both, demo bool
	systemd           credential.Systemd
}

// inspectFlags registers inspect's flags; the help and the parser both use it.
func inspectFlags(fs *flag.FlagSet, v *inspectVars) {
	fs.StringVar(&v.sysfs, "sysfs", "/sys", "sysfs root `DIR` to read firmware tables from")
	fs.BoolVar(&v.table, "table", false, "decode tables/DMI instead of entries/11-N (systemd's path)")
	fs.BoolVar(&v.both, "both", false, "read entries/11-N and tables/DMI and compare them")
	fs.Func("systemd-version", "apply the import rules of this systemd `VERSION` (default: the newest)", func(s string) error {
		n, err := parseSystemdFlag(s)
		v.systemd = n
		return err
	})
	fs.BoolVar(&v.demo, "demo", false, "inspect a generated table instead of this machine's")
}

// inspect lists the credentials a sysfs tree carries: name, bytes, encoding source, never values.
// With --both it reads the tree both ways (entries/11-N as systemd does, tables/DMI as Linux
// decodes it) and says whether they agree. With --demo it first writes a sample table into a
// private temporary tree.
func inspect(args []string, stdout, stderr io.Writer) int {
	var v inspectVars
	fs := flag.NewFlagSet("inspect", flag.ContinueOnError)
	inspectFlags(fs, &v)
	if code, ok := parse("inspect", fs, args, stdout, stderr); !ok {
		return code
	}
	sysfs, table, both, demo := &v.sysfs, &v.table, &v.both, &v.demo
	sd := v.systemd
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	switch {
	case *table && *both:
		fmt.Fprintln(stderr, "guest-agent inspect: --table and --both exclude each other (--both reads the tables both ways)")
		return exitUsage
	case *demo && given["sysfs"]:
		fmt.Fprintln(stderr, "guest-agent inspect: --demo inspects a generated tree, not --sysfs; give one of them")
		return exitUsage
	}
	if !*demo {
		if fi, err := os.Stat(*sysfs); err != nil || !fi.IsDir() {
			fmt.Fprintf(stderr, "guest-agent inspect: --sysfs %s is not a directory\n", *sysfs)
			return exitUsage
		}
	}
	if *demo {
		dir, err := os.MkdirTemp("", "credlink-inspect-")
		if err != nil {
			fmt.Fprintln(stderr, "guest-agent inspect:", err)
			return exitFailed
		}
		defer os.RemoveAll(dir)
		if err := writeDemoTable(dir); err != nil {
			fmt.Fprintln(stderr, "guest-agent inspect:", err)
			return exitFailed
		}
		*sysfs = dir
	}
	read := func(fromTable bool) (*credential.Set, int) {
		set, err := sources.SMBIOS{Sysfs: *sysfs, FromTable: fromTable, Systemd: sd}.Read()
		if err != nil {
			// No SMBIOS credentials here, or tables that cannot be read: a finding about this
			// machine, exit 1 as in check; only the command line itself is exit 2.
			fmt.Fprintln(stderr, "guest-agent inspect:", err)
			return nil, exitFailed
		}
		return set, exitOK
	}
	if *both {
		entries, code := read(false)
		if entries == nil {
			return code
		}
		tbl, code := read(true)
		if tbl == nil {
			return code
		}
		if diff := differ(entries, tbl); len(diff) > 0 {
			fmt.Fprintf(stdout, "entries and table differ: %s\n", strings.Join(diff, ", "))
			return exitFailed
		}
		fmt.Fprintf(stdout, "entries and table agree: %d credentials, %d bytes, %d skipped, %d warnings\n", entries.Len(), entries.TotalBytes(), len(entries.Problems), len(entries.Warnings))
		return exitOK
	}
	set, code := read(*table)
	if set == nil {
		return code
	}
	if *table {
		// Name the entry point, so a reader can tell which table layout was decoded.
		if raws, info, err := smbios.ReadTable(*sysfs); err == nil {
			fmt.Fprintf(stdout, "SMBIOS %d.%d, %s entry point, %d structures, %d of Type 11\n", info.Major, info.Minor, info.EntryPoint, info.Structures, len(raws))
		}
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tBYTES\tSOURCE")
	for _, c := range set.All() {
		fmt.Fprintf(tw, "%s\t%d\t%s\n", c.Name, c.Value.Len(), c.Source)
	}
	tw.Flush()
	fmt.Fprintf(stdout, "%d credentials, %d bytes; %d other OEM strings; %d skipped (rules of %s)\n", set.Len(), set.TotalBytes(), set.Ignored, len(set.Problems), sd)
	for _, p := range set.Problems {
		fmt.Fprintln(stdout, "skipped:", p.Error())
	}
	for _, w := range set.Warnings {
		fmt.Fprintln(stdout, "warning:", w)
	}
	if len(set.Problems) > 0 || len(set.Warnings) > 0 {
		return exitFailed
	}
	return exitOK
}

// differ names the credentials whose presence or bytes differ between a and b, and the counts
// that differ; never a value.
func differ(a, b *credential.Set) []string {
	var out []string
	for _, c := range a.All() {
		if d, ok := b.Get(c.Name); !ok || !d.Value.Equal(c.Value) {
			out = append(out, c.Name)
		}
	}
	for _, c := range b.All() {
		if _, ok := a.Get(c.Name); !ok {
			out = append(out, c.Name)
		}
	}
	if a.Ignored != b.Ignored || len(a.Problems) != len(b.Problems) {
		out = append(out, fmt.Sprintf("%d/%d other strings, %d/%d skipped", a.Ignored, b.Ignored, len(a.Problems), len(b.Problems)))
	}
	return out
}

func writeDemoTable(dir string) error {
	creds := []credential.Credential{
		{Name: "API_KEY", Value: credential.NewValue([]byte("demo-api-key-0123456789abcdef0123456789abcd"))},
		{Name: "TLS_SEED", Value: credential.NewValue([]byte{0, 1, 2, 3, 0xfe, 0xff})},
		{Name: "ENVIRONMENT", Value: credential.NewValue([]byte("staging"))},
	}
	return credential.WriteSMBIOSTree(dir, creds, credential.DefaultBudget)
}
