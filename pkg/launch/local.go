package launch

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/credlink/credlink/pkg/credential"
	"github.com/credlink/credlink/pkg/smbios"
)

// Local is --hypervisor local: no VM. The guest-agent binary runs as a child on a generated
// sysfs tree, the same files a guest kernel would expose, and acknowledges over a Unix socket.
// For the demo and tests.
type Local struct {
	Agent    string   // --agent: the guest-agent binary; default next to this executable, then $PATH
	Manifest string   // --agent-manifest: the manifest the agent verifies; default Spec.Manifest
	Metrics  string   // --agent-metrics: the agent's --metrics-listen (default off)
	Args     []string // further guest-agent arguments
}

func init() { register(func() Hypervisor { return &Local{} }) }

// Name implements Hypervisor.
func (*Local) Name() string { return "local" }

func (h *Local) flags(fs *flag.FlagSet) {
	fs.StringVar(&h.Agent, "agent", "", "guest-agent binary `PATH` (default next to host-launcher)")
	fs.StringVar(&h.Manifest, "agent-manifest", "", "the guest-agent's manifest `FILE` (default --manifest)")
	fs.StringVar(&h.Metrics, "agent-metrics", "", "the guest-agent's --metrics-listen `ADDR` (default off)")
}

// localVM is one local launch.
type localVM struct {
	process
	ch         *channel
	structures [][]string
	sysfs      string
}

func (h *Local) open(s Spec) (machine, error) {
	bin := h.Agent
	if bin == "" {
		var err error
		if bin, err = findAgent(); err != nil {
			return nil, err
		}
	}
	man := h.Manifest
	if man == "" {
		man = s.Manifest
	}
	if man == "" {
		return nil, configErr("local mode needs --manifest (or --agent-manifest) for the guest-agent")
	}
	l := &localVM{sysfs: runtimePath(s, "sys")}
	// The local "guest" runs under the host's systemd, if any: it must read the tree with the
	// rules the tree was laid out for, not the host's.
	args := []string{"run", "--source", credential.SourceSMBIOS, "--sysfs", l.sysfs, "--manifest", man, "--on-failure", "wait",
		"--systemd-version", strconv.Itoa(int(s.GuestSystemd.Rules()))}
	args = append(args, "--metrics-listen", h.Metrics)
	args = append(args, h.Args...)
	l.process = newProcess(exec.Command(bin, args...))
	// The agent is a guest: newProcess keeps it from the launcher's service manager.
	l.cmd.Stdout, l.cmd.Stderr = s.Stdout, s.Stderr
	var err error
	if l.ch, err = unixChannel(runtimePath(s, "ack.sock")); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *localVM) channel() *channel { return l.ch }

func (l *localVM) load(structures [][]string) error { l.structures = structures; return nil }

// smbiosStructures: local mode writes the table itself, with as many structures as needed.
func (*Local) smbiosStructures() (int, string) { return 0, "" }

// findAgent looks for guest-agent next to this executable, then on $PATH.
func findAgent() (string, error) {
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), "guest-agent")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	if p, err := exec.LookPath("guest-agent"); err == nil {
		return p, nil
	}
	return "", configErr("guest-agent binary not found next to host-launcher or on $PATH (build both: make build, or pass --agent PATH)")
}

func filterEnv(env []string, drop ...string) []string {
	var out []string
	for _, e := range env {
		k, _, _ := strings.Cut(e, "=")
		keep := true
		for _, d := range drop {
			if k == d {
				keep = false
			}
		}
		if keep {
			out = append(out, e)
		}
	}
	return out
}

func (l *localVM) start(context.Context) error {
	// The tree lives in the launcher's private 0700 runtime directory and is removed with it.
	if err := smbios.WriteTree(l.sysfs, l.structures); err != nil {
		return fmt.Errorf("write local firmware tables: %w", err)
	}
	if err := l.startProcess(); err != nil {
		return fmt.Errorf("start guest-agent: %w", err)
	}
	return nil
}

func (l *localVM) stop(timeout time.Duration) error { return l.terminate(timeout) }

func (l *localVM) plan() []string {
	out := []string{"local guest: " + strings.Join(l.cmd.Args, " ")}
	out = append(out, fmt.Sprintf("firmware tables: %s (SMBIOS 3.0, %s)", l.sysfs, describeStructures(l.structures)))
	for _, s := range credential.Flatten(l.structures) {
		out = append(out, "  "+credential.RedactOEMString(s))
	}
	return out
}
