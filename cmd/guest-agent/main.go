// Command guest-agent runs inside a VM: it reads the credentials the VM received, checks them
// against a manifest, tells systemd and Prometheus, and acknowledges delivery to the host.
//
//	guest-agent check --manifest FILE [--source auto|smbios|credentials|fwcfg] [--sysfs DIR] [--credentials-dir DIR] [--systemd-version N] [--json]
//	guest-agent [run] [same flags] [--metrics-listen ADDR] [--on-failure wait|exit] [--ack-timeout D]
//	guest-agent inspect [--sysfs DIR] [--table|--both] [--systemd-version N] [--demo]
//	guest-agent version
//
// Exit codes: 0 verified, 1 verification failed (no credential source here included), 2 usage
// or manifest error. inspect: 0 every credential imported cleanly, 1 a finding about the tables
// (none here, unreadable, skipped credentials, warnings, --both disagreeing), 2 usage.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"regexp"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"golang.org/x/sys/unix"

	"github.com/credlink/credlink/pkg/agent"
	"github.com/credlink/credlink/pkg/cmdhelp"
	"github.com/credlink/credlink/pkg/credential"
	"github.com/credlink/credlink/pkg/logging"
	"github.com/credlink/credlink/pkg/manifest"
	"github.com/credlink/credlink/pkg/version"
)

// Exit codes of the command-line contract.
const (
	exitOK     = 0
	exitFailed = 1 // verification failed
	exitUsage  = 2 // usage or manifest error
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	cmd := "run"
	if len(args) > 0 && cmdhelp.IsHelp(args[0]) {
		if args[0] == "help" {
			return program.Help(args[1:], stdout, stderr)
		}
		return program.Help(nil, stdout, stderr)
	}
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "run":
		return runDaemon(args, stdout, stderr)
	case "check":
		return check(args, stdout, stderr)
	case "inspect":
		return inspect(args, stdout, stderr)
	case "version":
		if len(args) > 0 {
			return program.Unexpected(cmd, args[0], stderr)
		}
		return printVersion(stdout)
	case "wait-port":
		return waitPort(args, stdout, stderr)
	default:
		return program.Unknown(cmd, stderr)
	}
}

// commonFlags registers the flags check and run share.
func commonFlags(fs *flag.FlagSet, o *agent.Options) {
	fs.StringVar(&o.ManifestPath, "manifest", manifest.DefaultPath, "manifest `FILE`")
	fs.StringVar(&o.Source, "source", agent.SourceAuto, "credential `SOURCE`: "+strings.Join(agent.SourceChoices, ", ")+" (auto: the credentials directory, cross-checked with the firmware)")
	fs.StringVar(&o.Sysfs, "sysfs", "/sys", "sysfs root `DIR` for SMBIOS and fw_cfg")
	fs.StringVar(&o.CredentialsDir, "credentials-dir", "", "systemd credentials `DIR` (default $CREDENTIALS_DIRECTORY)")
	fs.Func("systemd-version", "`VERSION` of the guest's systemd whose import rules apply (default: detected with systemctl --version; the newest rules when PID 1 is not systemd)", func(v string) error {
		n, err := parseSystemdFlag(v)
		if err != nil {
			return err
		}
		o.Systemd, o.SystemdFrom = n, "--systemd-version"
		return nil
	})
}

// parseSystemdFlag reads --systemd-version: a version from 252 on, the first whose PID 1
// imports credentials from SMBIOS or fw_cfg (credential.SystemdFirstSMBIOS); an older one is a
// usage error, since such a guest never receives a credlink credential.
func parseSystemdFlag(v string) (credential.Systemd, error) {
	m := systemdFlagRe.FindStringSubmatch(v)
	if m == nil {
		return 0, fmt.Errorf("want a systemd version such as 252 or 257.13, not %q", v)
	}
	n, _ := strconv.Atoi(m[1]) // at most 9 digits
	if n < int(credential.SystemdFirstSMBIOS) {
		return 0, fmt.Errorf("systemd %d imports no credentials from SMBIOS or fw_cfg (%d and newer do)", n, int(credential.SystemdFirstSMBIOS))
	}
	v2, ok := agent.ParseSystemdVersion("systemd " + m[1])
	if !ok {
		return 0, fmt.Errorf("systemd %d: no such version (want 252 to 100000)", n)
	}
	return v2, nil
}

// systemdFlagRe is --systemd-version: a major version, optionally with its point release, as
// `systemctl --version` and NixOS's systemd.package.version write them; nothing else.
var systemdFlagRe = regexp.MustCompile(`^([0-9]{1,9})(\.[0-9]+)*$`)

// resolveSystemd detects the guest's systemd unless --systemd-version named it.
func resolveSystemd(o *agent.Options) {
	if o.SystemdFrom == "" {
		o.Systemd, o.SystemdFrom = agent.DetectSystemd(context.Background())
	}
}

// runFlags registers run's flags; the help and the parser both use it.
func runFlags(fs *flag.FlagSet, o *agent.Options, debug *bool) {
	commonFlags(fs, o)
	fs.StringVar(&o.MetricsListen, "metrics-listen", agent.DefaultMetricsListen, "Prometheus metrics `ADDR`; empty disables")
	fs.StringVar(&o.OnFailure, "on-failure", "wait", "`POLICY` when verification fails: wait (stay up, not ready) or exit (exit 1)")
	fs.DurationVar(&o.AckTimeout, "ack-timeout", 5*time.Minute, "give up acknowledging to the host after this long")
	fs.BoolVar(debug, "debug", false, "log debug messages")
}

// parse parses a command's flags the conventional way (cmdhelp) and refuses positional
// arguments; ok is false when the command should return code.
func parse(name string, fs *flag.FlagSet, args []string, stdout, stderr io.Writer) (code int, ok bool) {
	cmd, _ := program.Command(name)
	if code, ok := program.Parse(cmd, fs, args, stdout, stderr); !ok {
		return code, false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "guest-agent %s: unexpected argument %q\n", name, fs.Arg(0))
		return exitUsage, false
	}
	return 0, true
}

// memoryLimit is the agent's soft heap limit unless GOMEMLIMIT says otherwise: it lives for the
// VM's lifetime beside the guest's real workload, and without a limit the Go GC lets the heap
// double between collections of the per-scrape garbage.
const memoryLimit = 10 << 20

func runDaemon(args []string, stdout, stderr io.Writer) int {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(memoryLimit)
	}
	var o agent.Options
	var debug bool
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	runFlags(fs, &o, &debug)
	if code, ok := parse("run", fs, args, stdout, stderr); !ok {
		return code
	}
	level := slog.LevelInfo
	if debug {
		level = slog.LevelDebug
	}
	o.Logger = logging.New(stderr, logging.UnderSystemd(), level)
	resolveSystemd(&o)
	o.Version = version.String()
	o.Notify = func(state string) error { _, err := daemon.SdNotify(false, state); return err }
	// The agent holds every credential it verified and credlink.key: no core dump (whatever
	// the unit's LimitCORE=), and no ptrace or /proc/PID/mem by other processes of its user.
	if err := unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{}); err != nil {
		o.Logger.Warn("cannot disable core dumps", "err", err)
	}
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		o.Logger.Warn("cannot mark the process non-dumpable", "err", err)
	}
	o.PassedFiles = passedFiles()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	err := agent.Run(ctx, o, hup)
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, agent.ErrUsage):
		o.Logger.Error(err.Error())
		return exitUsage
	default:
		o.Logger.Error(err.Error())
		return exitFailed
	}
}
