package main

import (
	"flag"
	"time"

	"github.com/credlink/credlink/pkg/agent"
	"github.com/credlink/credlink/pkg/cmdhelp"
)

// program is guest-agent's one description of itself: the overview, `help COMMAND`,
// `COMMAND --help` and the README's option tables (TestREADMEAgrees) all come from it.
var program = &cmdhelp.Program{
	Name: "guest-agent",
	Summary: `check inside a VM that the systemd credentials the host sent arrived byte-exact
(names and lengths against a manifest), tell systemd (READY=1) and Prometheus, and prove the
delivery to host-launcher without ever sending a value.`,
	Commands: []cmdhelp.Command{
		{Name: "run", README: true, Args: "[options]",
			Summary: "the daemon (the default command): verify, READY=1, acknowledge to the host, serve metrics",
			Flags:   func(fs *flag.FlagSet) { var b bool; runFlags(fs, &agent.Options{}, &b) },
			Groups:  append(commonGroups[:len(commonGroups):len(commonGroups)], cmdhelp.Group{Title: "Daemon", Flags: []string{"metrics-listen", "on-failure", "ack-timeout", "debug"}})},
		{Name: "check", Args: "[options]",
			Summary: "verify once and print a table (or --json); exit 0 verified, 1 failed, 2 usage",
			Flags:   func(fs *flag.FlagSet) { var b bool; checkFlags(fs, &agent.Options{}, &b) },
			Groups:  append(commonGroups[:len(commonGroups):len(commonGroups)], cmdhelp.Group{Title: "Output", Flags: []string{"json"}})},
		{Name: "inspect", README: true, Args: "[--sysfs DIR] [--table|--both] [--systemd-version N] [--demo]",
			Summary: "list the credentials in this machine's SMBIOS table: names, sizes, never values",
			Flags:   func(fs *flag.FlagSet) { inspectFlags(fs, &inspectVars{}) },
			Groups:  []cmdhelp.Group{{Title: "Firmware", Flags: []string{"sysfs", "table", "both", "systemd-version", "demo"}}}},
		{Name: "wait-port", Args: "[--credentials-dir DIR] [--timeout D]",
			Summary: "guest-agent.service's ExecStartPre=+: wait for the virtio-serial port credlink.ack names (if any)",
			Flags: func(fs *flag.FlagSet) {
				var d string
				var t time.Duration
				waitPortFlags(fs, &d, &t)
			},
			Groups: []cmdhelp.Group{{Title: "Options", Flags: []string{"credentials-dir", "timeout"}}}},
		{Name: "version", Summary: "print the version, commit and Go version"},
		{Name: "help", Args: "[COMMAND]", Summary: "this overview, or one command's options"},
	},
	Examples: []cmdhelp.Example{
		{Comment: "as the ExecStart= of the guest's Type=notify unit (systemd >= 254, ImportCredential=*)",
			Command: "guest-agent run --source credentials --manifest /etc/credlink/manifest.json"},
		{Comment: "from a shell in the guest: did everything arrive?",
			Command: "guest-agent check --manifest /etc/credlink/manifest.json --credentials-dir /run/credentials/@system"},
		{Comment: "what the firmware carries, without a manifest",
			Command: "guest-agent inspect"},
	},
	Footer: `Exit status: 0 verified, 1 verification failed, 2 usage or manifest error.
Documentation: README.md (guest-agent), systemd/guest-agent.service.`,
}

// commonGroups are the flags run and check share (commonFlags).
var commonGroups = []cmdhelp.Group{
	{Title: "Manifest and sources", Flags: []string{"manifest", "source", "credentials-dir", "sysfs", "systemd-version"}},
}
