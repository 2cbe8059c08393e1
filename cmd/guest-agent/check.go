package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/credlink/credlink/pkg/agent"
	"github.com/credlink/credlink/pkg/credential"
	"github.com/credlink/credlink/pkg/sources"
	"github.com/credlink/credlink/pkg/verify"
)

// checkJSON is the --json contract of `check`.
type checkJSON struct {
	OK          bool              `json:"ok"`
	Credentials []checkCredential `json:"credentials"`
	Sources     []checkSource     `json:"sources"`
	Systemd     int               `json:"systemd_rules_version"` // 0: unknown, newest rules
}

type checkSource struct {
	Name   string `json:"name"`
	State  string `json:"state"`
	Detail string `json:"detail,omitempty"`
}

type checkCredential struct {
	Name   string            `json:"name"`
	Bytes  int               `json:"bytes"`
	Status credential.Status `json:"status"`
	Source string            `json:"source"`
}

// checkFlags registers check's flags; the help and the parser both use it.
func checkFlags(fs *flag.FlagSet, o *agent.Options, asJSON *bool) {
	commonFlags(fs, o)
	fs.BoolVar(asJSON, "json", false, "print JSON instead of a table")
}

func check(args []string, stdout, stderr io.Writer) int {
	var o agent.Options
	var asJSON bool
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	checkFlags(fs, &o, &asJSON)
	if code, ok := parse("check", fs, args, stdout, stderr); !ok {
		return code
	}
	resolveSystemd(&o)
	res, rec, err := o.Check()
	if err != nil {
		fmt.Fprintln(stderr, "guest-agent check:", err)
		if errors.Is(err, agent.ErrUsage) {
			return exitUsage
		}
		return exitFailed
	}
	if asJSON {
		out := checkJSON{OK: res.OK, Credentials: []checkCredential{}, Sources: []checkSource{}, Systemd: int(rec.Systemd)}
		for _, f := range res.Findings {
			out.Credentials = append(out.Credentials, checkCredential{Name: f.Name, Bytes: f.Bytes, Status: f.Status, Source: f.Source})
		}
		for _, s := range rec.Sources {
			out.Sources = append(out.Sources, checkSource{Name: s.Name, State: string(s.State), Detail: s.Detail})
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(out)
	} else {
		printTable(stdout, res)
		fmt.Fprintf(stdout, "rules: %s (%s)\n", rec.Systemd, o.SystemdFrom)
		for _, s := range rec.Sources {
			line := fmt.Sprintf("source %s: %s", s.Name, s.State)
			if s.Detail != "" && s.State != sources.OK {
				line += ": " + s.Detail
			}
			fmt.Fprintln(stdout, line)
		}
	}
	if !res.OK {
		return exitFailed
	}
	return exitOK
}

func printTable(w io.Writer, res verify.Result) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tBYTES\tSTATUS\tSOURCE\tDETAIL\tVALUE")
	for _, f := range res.Findings {
		value := "(secret)"
		if !f.Secret && f.Status != credential.StatusUnexpected {
			value = fmt.Sprintf("%q", f.Value.Bytes())
		}
		if f.Source == "" {
			value = "-"
		}
		src := f.Source
		if src == "" {
			src = "-"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\n", f.Name, f.Bytes, f.Status, src, f.Detail, value)
	}
	tw.Flush()
	fmt.Fprintln(w, res.Summary())
}
