package ack

import (
	"crypto/sha256"
	"fmt"
	"slices"

	"github.com/credlink/credlink/pkg/credential"
)

// Bounds on what a report may carry. Everything in a report is chosen by whoever holds the key
// (guest root, a compromised agent), and the host turns parts of it into STATUS= and log lines.
const (
	// MaxReportCredentials bounds the credentials of one report: systemd imports at most 255
	// SMBIOS strings, and a credentials directory of more than this is not credlink's.
	MaxReportCredentials = 1024
	maxBootID            = 64  // /proc/sys/kernel/random/boot_id is a 36-byte UUID
	maxAgent             = 128 // "guest-agent v1.2.3 (go1.26 …)"
)

// Sources a report may name: where the agent read the credential (credential.Source*).
var reportSources = []string{"", credential.SourceSMBIOS, credential.SourceFwCfg, credential.SourceCredentials}

// validateReport checks every field an authenticated report carries before any of it is used:
// names by systemd's rules (credential.ValidName), statuses from the closed set
// (credential.Statuses), sources from the agent's, and printable bounded text elsewhere. An unknown
// value makes the whole report malformed: the reason says which field, in the host's own words,
// and never repeats the guest's bytes.
func validateReport(r *Report) error {
	if !printable(r.VM, credential.MaxNameLen) {
		return fmt.Errorf("vm is not printable ASCII of at most %d bytes", credential.MaxNameLen)
	}
	if r.BootID == "" || !token(r.BootID, maxBootID) {
		return fmt.Errorf("boot_id is not 1 to %d letters, digits, '-' or '_'", maxBootID)
	}
	if !printable(r.Agent, maxAgent) {
		return fmt.Errorf("agent is not printable ASCII of at most %d bytes", maxAgent)
	}
	if len(r.Credentials) > MaxReportCredentials {
		return fmt.Errorf("%d credentials, the limit is %d", len(r.Credentials), MaxReportCredentials)
	}
	for i, c := range r.Credentials {
		switch {
		case credential.ValidName(c.Name) != nil:
			return fmt.Errorf("credential %d: name is not a valid systemd credential name", i)
		case !c.Status.Known():
			return fmt.Errorf("credential %d: status is not one of %v", i, credential.Statuses)
		case !slices.Contains(reportSources, c.Source):
			return fmt.Errorf("credential %d: source is not one of %q", i, reportSources[1:])
		case c.Bytes < 0 || c.Bytes > credential.MaxSize:
			return fmt.Errorf("credential %d: bytes out of range 0..%d", i, credential.MaxSize)
		case len(c.MAC) != 0 && len(c.MAC) != sha256.Size:
			return fmt.Errorf("credential %d: mac is not %d bytes", i, sha256.Size)
		}
	}
	return nil
}

// printable: at most max bytes of printable ASCII (space included).
func printable(s string, max int) bool {
	if len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// token: at most max bytes of letters, digits, '-' and '_'.
func token(s string, max int) bool {
	if len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
