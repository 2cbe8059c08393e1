package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"text/tabwriter"

	"github.com/credlink/credlink/pkg/cmdhelp"
	"github.com/credlink/credlink/pkg/credential"
	"github.com/credlink/credlink/pkg/smbios"
	"github.com/credlink/credlink/pkg/version"
)

func printVersion(stdout io.Writer) int {
	fmt.Fprintln(stdout, cmdhelp.Version("guest-agent", version.String()))
	return exitOK
}

type inspectVars struct {
	sysfs       string
	table, demo bool
}

// inspectFlags registers inspect's flags; the help and the parser both use it.
func inspectFlags(fs *flag.FlagSet, v *inspectVars) {
	fs.StringVar(&v.sysfs, "sysfs", "/sys", "sysfs root `DIR` to read firmware tables from")
	fs.BoolVar(&v.table, "table", false, "decode tables/DMI instead of entries/11-N (systemd's path)")
	fs.BoolVar(&v.demo, "demo", false, "inspect a generated table instead of this machine's")
}

// inspect lists the credentials a sysfs tree carries: name, bytes, encoding source, never values.
// With --demo it first writes a sample table into a private temporary tree.
func inspect(args []string, stdout, stderr io.Writer) int {
	var v inspectVars
	fs := flag.NewFlagSet("inspect", flag.ContinueOnError)
	inspectFlags(fs, &v)
	if code, ok := parse("inspect", fs, args, stdout, stderr); !ok {
		return code
	}
	sysfs, table, demo := &v.sysfs, &v.table, &v.demo
	if *demo {
		dir, err := os.MkdirTemp("", "credlink-inspect-")
		if err != nil {
			fmt.Fprintln(stderr, "guest-agent:", err)
			return exitFailed
		}
		defer os.RemoveAll(dir)
		if err := writeDemoTable(dir); err != nil {
			fmt.Fprintln(stderr, "guest-agent:", err)
			return exitFailed
		}
		*sysfs = dir
	}
	set, err := credential.SMBIOSSource{Sysfs: *sysfs, FromTable: *table}.Read()
	if err != nil {
		fmt.Fprintln(stderr, "guest-agent:", err)
		if errors.Is(err, credential.ErrUnavailable) {
			return exitUsage
		}
		return exitFailed
	}
	if *table {
		// Name the entry point, so a reader can tell which table layout was decoded.
		if _, info, err := smbios.ReadTable(*sysfs); err == nil {
			fmt.Fprintf(stdout, "SMBIOS %d.%d, %s entry point, %d structures\n", info.Major, info.Minor, info.EntryPoint, info.Structures)
		}
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tBYTES\tSOURCE")
	for _, c := range set.All() {
		fmt.Fprintf(tw, "%s\t%d\t%s\n", c.Name, c.Value.Len(), c.Source)
	}
	tw.Flush()
	fmt.Fprintf(stdout, "%d credentials, %d bytes; %d other OEM strings; %d skipped\n", set.Len(), set.TotalBytes(), set.Ignored, len(set.Problems))
	for _, p := range set.Problems {
		fmt.Fprintln(stdout, "skipped:", p.Error())
	}
	if len(set.Problems) > 0 {
		return exitFailed
	}
	return exitOK
}

func writeDemoTable(dir string) error {
	creds := []credential.Credential{
		{Name: "API_KEY", Value: credential.NewValue([]byte("demo-api-key-0123456789abcdef0123456789abcd"))},
		{Name: "TLS_SEED", Value: credential.NewValue([]byte{0, 1, 2, 3, 0xfe, 0xff})},
		{Name: "ENVIRONMENT", Value: credential.NewValue([]byte("staging"))},
	}
	strs, err := credential.Encode(creds, credential.DefaultBudget)
	if err != nil {
		return err
	}
	tb, err := smbios.Build([][]string{strs}, smbios.EntryPoint64)
	if err != nil {
		return err
	}
	return tb.WriteSysfs(dir)
}
