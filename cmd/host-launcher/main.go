// Command host-launcher starts a VM with its systemd credentials delivered as SMBIOS Type 11
// OEM strings — never in argv, the environment or on disk — and reports READY=1 to systemd only
// once the guest-agent has proven byte-exact delivery. See README.md.
//
//	host-launcher run  --vm NAME --hypervisor qemu|cloud-hypervisor|local [options] [-- HYPERVISOR ARGV…]
//	host-launcher plan [same options]     validate and print the launch, secrets redacted
//	host-launcher demo                    the whole flow on this machine, no VM, no root
//	host-launcher version
//
// Exit codes: 0 clean stop, 1 delivery not verified, 2 configuration error, 3 hypervisor failed.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"

	"github.com/credlink/credlink/pkg/cmdhelp"
	"github.com/credlink/credlink/pkg/launch"
	"github.com/credlink/credlink/pkg/logging"
	"github.com/credlink/credlink/pkg/version"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "host-launcher: a command is required")
		fmt.Fprintln(stderr)
		program.Overview(stderr)
		return launch.ExitConfig
	}
	cmd, args := args[0], args[1:]
	if cmdhelp.IsHelp(cmd) {
		if cmd != "help" {
			args = nil // `host-launcher --help run` is the overview, like systemctl
		}
		return program.Help(args, stdout, stderr)
	}
	switch cmd {
	case "run", "plan", "demo":
		// All three read credentials: no core dump or /proc/PID/mem read may get them.
		if err := launch.HardenProcess(); err != nil {
			fmt.Fprintln(stderr, "host-launcher: cannot harden the process:", err)
			return launch.ExitConfig
		}
	}
	switch cmd {
	case "run", "plan":
		c, format, code, ok := parseConfig(cmd, args, stdout, stderr)
		if !ok {
			return code
		}
		if cmd == "plan" {
			return plan(c, format, stdout, stderr)
		}
		return runLaunch(c, stderr)
	case "demo":
		return demo(args, stdout, stderr)
	case "version":
		if len(args) > 0 {
			return program.Unexpected(cmd, args[0], stderr)
		}
		fmt.Fprintln(stdout, cmdhelp.Version("host-launcher", version.String()))
		return 0
	default:
		return program.Unknown(cmd, stderr)
	}
}

// listFlag collects a repeatable flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// runFlags registers the flags of run and plan (every hypervisor's own flags included); the
// help and the parser both use it.
func runFlags(fs *flag.FlagSet, c *launch.Config, v *runVars) {
	fs.StringVar(&c.VM, "vm", "", "VM `NAME` (1-64 ASCII letters, digits and ._-@+:), used for logs, the derived vsock CID and the guest's credlink.vm (required)")
	fs.StringVar(&v.hypervisor, "hypervisor", "", "hypervisor `KIND`: "+strings.Join(launch.HypervisorNames(), ", ")+" (required)")
	v.hypervisors = launch.HypervisorFlags(fs) // each hypervisor's own flags
	fs.Var(&v.creds, "credential", "`NAME=ID`: deliver $CREDENTIALS_DIRECTORY/ID (from LoadCredential=ID:PATH), or the absolute path ID, as credential NAME; repeatable")
	fs.BoolVar(&c.AllCredentials, "all-credentials", false, "deliver every file of $CREDENTIALS_DIRECTORY as a credential named after the file; a file a --credential also names is delivered once, under that --credential's name")
	fs.Var(&v.sets, "set", "`NAME=VALUE`: deliver a NON-SECRET value (it is visible in this process's argv); repeatable")
	fs.StringVar(&c.ManifestPath, "manifest", "", "check the host-side credentials against this manifest `FILE` before launching")
	fs.StringVar(&c.CredentialsDir, "credentials-dir", "", "credentials `DIR` (default $CREDENTIALS_DIRECTORY)")
	fs.DurationVar(&c.AckTimeout, "ack-timeout", 5*time.Minute, "how long to wait for the guest's acknowledgement (at least 100ms)")
	fs.StringVar(&c.OnFailure, "on-failure", launch.FailStop, "`POLICY` when delivery is not verified: stop (stop the VM, exit 1) or ready-anyway")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", 30*time.Second, "grace period for the guest to power off after the power button")
	fs.BoolVar(&c.WaitGuestBoot, "wait-guest-boot", false, "also wait for the guest systemd's own READY=1 via vmm.notify_socket (systemd >= 254, needs vsock)")
	fs.IntVar((*int)(&c.GuestSystemd), "guest-systemd", 257, "the guest's systemd `VERSION` (252, the first to import SMBIOS credentials, or newer): below 257 only the first 4096 bytes of each Type 11 structure are imported, below 254 there is no vmm.notify_socket; host-launcher enforces both")
	fs.StringVar(&c.RuntimeDir, "runtime-dir", "", "where to create the private socket directory in `DIR` (default $RUNTIME_DIRECTORY or $TMPDIR)")
	fs.UintVar(&v.cid, "guest-cid", 0, "guest vsock `CID`, 3 to 4294967294 (default derived from --vm)")
	fs.BoolVar(&v.debug, "debug", false, "log debug messages")
	fs.StringVar(&v.format, "format", "text", "plan's output `FORMAT`: text, or json (the stable "+launch.PlanFormat+" form, see README)")
}

// runVars holds what runFlags parses that is not a launch.Config field as is.
type runVars struct {
	hypervisor  string
	hypervisors *launch.HypervisorChoice
	creds, sets listFlag
	cid         uint
	debug       bool
	format      string
}

func parseConfig(name string, args []string, stdout, stderr io.Writer) (c *launch.Config, format string, code int, ok bool) {
	c = &launch.Config{}
	cmd, _ := program.Command(name)
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	var v runVars
	runFlags(fs, c, &v)
	if code, ok := program.Parse(cmd, fs, args, stdout, stderr); !ok {
		return nil, "", code, false
	}
	hv, err := v.hypervisors.Choose(v.hypervisor, fs.Args())
	if err != nil {
		fmt.Fprintln(stderr, "host-launcher:", err)
		return nil, "", launch.ExitConfig, false
	}
	c.Hypervisor = hv
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if set["guest-cid"] {
		// 0 is the Config's "derive from --vm": given explicitly it is a mistake, as is a
		// number uint32 would truncate.
		if err := launch.ValidGuestCID(uint64(v.cid)); err != nil {
			fmt.Fprintln(stderr, "host-launcher: --guest-cid:", err)
			return nil, "", launch.ExitConfig, false
		}
		c.GuestCID = uint32(v.cid)
	}
	// A zero Config timeout means "the default"; on the command line it is a mistake.
	if c.AckTimeout <= 0 || c.ShutdownTimeout <= 0 {
		fmt.Fprintln(stderr, "host-launcher: --ack-timeout and --shutdown-timeout must be positive durations")
		return nil, "", launch.ExitConfig, false
	}
	for _, s := range v.creds {
		spec, err := launch.ParseCredentialSpec(s)
		if err != nil {
			fmt.Fprintln(stderr, "host-launcher:", err)
			return nil, "", launch.ExitConfig, false
		}
		c.Credentials = append(c.Credentials, spec)
	}
	for _, s := range v.sets {
		cr, err := launch.ParseSetting(s)
		if err != nil {
			fmt.Fprintln(stderr, "host-launcher:", err)
			return nil, "", launch.ExitConfig, false
		}
		c.Settings = append(c.Settings, cr)
	}
	level := slog.LevelInfo
	if v.debug {
		level = slog.LevelDebug
	}
	c.Logger = logging.New(stderr, logging.UnderSystemd(), level)
	c.Stdout, c.Stderr = os.Stdout, stderr
	if v.format != "text" && v.format != "json" {
		fmt.Fprintf(stderr, "host-launcher: --format must be text or json, not %q\n", v.format)
		return nil, "", launch.ExitConfig, false
	}
	return c, v.format, 0, true
}

func plan(c *launch.Config, format string, stdout, stderr io.Writer) int {
	if format == "json" {
		b, err := c.PlanJSON()
		if err != nil {
			fmt.Fprintln(stderr, "host-launcher plan:", err)
			return launch.ExitCode(err)
		}
		_, _ = stdout.Write(b)
		return 0
	}
	lines, err := c.Plan()
	if err != nil {
		fmt.Fprintln(stderr, "host-launcher plan:", err)
		return launch.ExitCode(err)
	}
	for _, l := range lines {
		fmt.Fprintln(stdout, l)
	}
	return 0
}

// stopSignals end a run or the demo cleanly: the VM is stopped and the private directory
// (sockets, and in local mode or the demo the files with every credential) removed. SIGHUP
// (the terminal went away) and SIGQUIT are among them: Go's default for SIGHUP exits without
// cleanup, and for SIGQUIT prints every goroutine's stack and exits 2, neither of which a
// process holding secrets should do. A goroutine dump for debugging is available with
// GOTRACEBACK and SIGABRT.
var stopSignals = []os.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT}

func runLaunch(c *launch.Config, stderr io.Writer) int {
	c.Notify = func(state string) error { _, err := daemon.SdNotify(false, state); return err }
	ctx, stop := signal.NotifyContext(context.Background(), stopSignals...)
	defer stop()
	_, err := c.Run(ctx, nil)
	if err != nil {
		c.Logger.Error(err.Error())
	}
	return launch.ExitCode(err)
}
