package agent

import (
	"context"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"time"

	"github.com/credlink/credlink/pkg/credential"
)

// systemdVersionRe matches the first line of `systemctl --version`: "systemd 252 (252.30-1~deb12u2)".
var systemdVersionRe = regexp.MustCompile(`^systemd (\d+)`)

// DetectSystemd returns the version of the systemd this guest runs and how it was found. The
// agent runs under it, and its import rules differ by version (package credential, Systemd):
// when PID 1 is systemd (/run/systemd/system exists, as sd_booted checks) the version is the
// first line of `systemctl --version`; otherwise it is unknown (0) and the newest rules apply.
func DetectSystemd(ctx context.Context) (credential.Systemd, string) {
	if fi, err := os.Stat("/run/systemd/system"); err != nil || !fi.IsDir() {
		return 0, "PID 1 is not systemd"
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "systemctl", "--version").Output()
	if err != nil {
		return 0, "systemctl --version failed: " + err.Error()
	}
	v, ok := ParseSystemdVersion(string(out))
	if !ok {
		return 0, "systemctl --version: unrecognised output"
	}
	return v, "systemctl --version"
}

// ParseSystemdVersion reads the version from `systemctl --version` output.
func ParseSystemdVersion(out string) (credential.Systemd, bool) {
	m := systemdVersionRe.FindStringSubmatch(out)
	if m == nil {
		return 0, false
	}
	n, err := strconv.Atoi(m[1])
	if err != nil || n <= 0 || n > 100000 {
		return 0, false
	}
	return credential.Systemd(n), true
}
