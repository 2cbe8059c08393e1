package main

import (
	"flag"

	"github.com/credlink/credlink/pkg/cmdhelp"
	"github.com/credlink/credlink/pkg/launch"
)

// program is host-launcher's one description of itself: the overview, `help COMMAND`,
// `COMMAND --help` and the README's option table (TestREADMEAgrees) all come from it.
var program = &cmdhelp.Program{
	Name: "host-launcher",
	Summary: `start a VM with its systemd credentials delivered as SMBIOS Type 11 OEM strings
(never in argv, the environment or on disk) and report READY=1 to systemd only once the
guest-agent inside has proven byte-exact delivery.`,
	Commands: []cmdhelp.Command{
		{Name: "run", README: true, Args: "--vm NAME --hypervisor KIND [options] [-- HYPERVISOR ARGV…]",
			Summary: "launch the VM and wait for the guest's acknowledgement (a Type=notify service's ExecStart=)",
			Flags:   func(fs *flag.FlagSet) { runFlags(fs, &launch.Config{}, &runVars{}) }, Groups: runGroups()},
		{Name: "plan", Args: "[the same options as run] [-- HYPERVISOR ARGV…]",
			Summary: "validate everything run would do and print the launch, credential values redacted",
			Flags:   func(fs *flag.FlagSet) { runFlags(fs, &launch.Config{}, &runVars{}) }, Groups: runGroups()},
		{Name: "demo", Args: "[--agent PATH] [-v]",
			Summary: "the whole flow on this machine with the real guest-agent: no VM, no root",
			Flags:   func(fs *flag.FlagSet) { var s string; var b bool; demoFlags(fs, &s, &b) },
			Groups:  []cmdhelp.Group{{Title: "Demo", Flags: []string{"agent", "v"}}}},
		{Name: "version", Summary: "print the version, commit and Go version"},
		{Name: "help", Args: "[COMMAND]", Summary: "this overview, or one command's options"},
	},
	Examples: []cmdhelp.Example{
		{Comment: "as the ExecStart= of a VM's Type=notify unit (with LoadCredential=api-key:/run/secrets/web/api-key)",
			Command: "host-launcher run --vm web --hypervisor qemu --credential API_KEY=api-key --manifest /etc/credlink/web.json -- -machine q35 -m 1G -kernel /var/lib/vms/web/bzImage"},
		{Comment: "in place of cloud-hypervisor (e.g. in microvm.nix's microvm-run): its own arguments after --",
			Command: "host-launcher run --vm web --hypervisor cloud-hypervisor --cloud-hypervisor /usr/bin/cloud-hypervisor --credential API_KEY=api-key -- --kernel vmlinux --cpus boot=2 --memory size=1G --api-socket web.sock"},
		{Comment: "preview a launch: what would be delivered and how, values redacted",
			Command: "host-launcher plan --vm web --hypervisor qemu --credential API_KEY=/run/secrets/web/api-key -- -machine q35"},
		{Comment: "see the whole flow on this machine",
			Command: "host-launcher demo"},
	},
	Footer: `Exit status: 0 clean stop, 1 delivery not verified, 2 configuration error, 3 hypervisor failed.
Documentation: README.md (host-launcher), systemd/credlink-vm@.service.`,
}

// runGroups orders run's and plan's flags by purpose, each hypervisor's own flags under its
// name (launch.HypervisorChoice.Flags), so a new hypervisor's flags appear without an edit here.
func runGroups() []cmdhelp.Group {
	groups := []cmdhelp.Group{
		{Title: "VM", Flags: []string{"vm", "hypervisor"}},
		{Title: "Credentials", Flags: []string{"credential", "all-credentials", "set", "manifest", "credentials-dir"}},
		{Title: "Delivery and lifecycle", Flags: []string{"ack-timeout", "on-failure", "shutdown-timeout", "wait-guest-boot", "guest-systemd", "guest-cid", "runtime-dir", "debug"}},
		{Title: "plan", Flags: []string{"format"}},
	}
	choice := launch.HypervisorFlags(flag.NewFlagSet("help", flag.ContinueOnError))
	for _, name := range launch.HypervisorNames() {
		groups = append(groups, cmdhelp.Group{Title: "--hypervisor " + name, Flags: choice.Flags(name)})
	}
	return groups
}
