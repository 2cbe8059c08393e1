package launch

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/credlink/credlink/pkg/smbios"
)

// localVM stands in for a VM: the guest-agent binary runs as a child on a generated sysfs tree,
// the same files a guest kernel would expose.
type localVM struct {
	process
	c     *Config
	p     *Prepared
	sysfs string
}

func newLocal(c *Config, p *Prepared, runDir string) (*localVM, error) {
	bin := c.AgentBinary
	if bin == "" {
		var err error
		if bin, err = findAgent(); err != nil {
			return nil, err
		}
	}
	man := c.AgentManifest
	if man == "" {
		man = c.ManifestPath
	}
	if man == "" {
		return nil, configErr("local mode needs --manifest (or --agent-manifest) for the guest-agent")
	}
	l := &localVM{c: c, p: p, sysfs: filepath.Join(runDir, "sys")}
	args := []string{"run", "--source", "smbios", "--sysfs", l.sysfs, "--manifest", man, "--on-failure", "wait"}
	args = append(args, "--metrics-listen", c.AgentMetrics)
	args = append(args, c.AgentArgs...)
	l.process = newProcess(exec.Command(bin, args...))
	// The agent is a guest: it must not talk to the launcher's service manager.
	l.cmd.Env = filterEnv(os.Environ(), "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID", "CREDENTIALS_DIRECTORY")
	l.cmd.Stdout, l.cmd.Stderr = c.Stdout, c.Stderr
	return l, nil
}

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
	tb, err := smbios.Build([][]string{l.p.OEM}, smbios.EntryPoint64)
	if err != nil {
		return err
	}
	// The tree lives in the launcher's private 0700 runtime directory and is removed with it.
	if err := tb.WriteSysfs(l.sysfs); err != nil {
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
	out = append(out, fmt.Sprintf("firmware tables: %s (SMBIOS 3.0, one Type 11 structure)", l.sysfs))
	for i := range l.p.OEM {
		out = append(out, "  "+l.p.redactedOEM(i))
	}
	return out
}
