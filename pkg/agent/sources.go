package agent

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/credlink/credlink/pkg/credential"
	"github.com/credlink/credlink/pkg/sources"
)

// SourceAuto is --source auto: the credentials directory, compared with the firmware when
// readable. The other values of --source are the sources.Source* names.
const SourceAuto = "auto"

// SourceChoices lists the values of --source.
var SourceChoices = []string{SourceAuto, credential.SourceSMBIOS, credential.SourceCredentials, credential.SourceFwCfg}

// ErrUsage marks configuration errors (exit code 2).
var ErrUsage = errors.New("configuration error")

// Received is what the agent read: the merged set it verifies, how each source went, and, when
// more than one source was readable, the per-source sets for source_mismatch.
type Received struct {
	Set     *credential.Set
	Used    []string
	Compare map[string]*credential.Set
	// Sources reports every source tried, in the order tried, readable or not.
	Sources []sources.Report
	// Systemd is the version whose import rules were applied to the firmware.
	Systemd credential.Systemd
}

// credentialsDir returns --credentials-dir, else $CREDENTIALS_DIRECTORY.
func (o *Options) credentialsDir() string {
	if o.CredentialsDir != "" {
		return o.CredentialsDir
	}
	return os.Getenv("CREDENTIALS_DIRECTORY")
}

// Read reads the credentials according to o.Source, applying the import rules of o.Systemd.
func (o *Options) Read() (Received, error) {
	sys := o.Sysfs
	if sys == "" {
		sys = "/sys"
	}
	smbiosSrc := sources.SMBIOS{Sysfs: sys, Systemd: o.Systemd}
	fwcfg := sources.FwCfg{Sysfs: sys}
	switch o.Source {
	case credential.SourceSMBIOS:
		return o.readOnly(smbiosSrc)
	case credential.SourceFwCfg:
		return o.readOnly(fwcfg)
	case credential.SourceCredentials:
		dir := o.credentialsDir()
		if dir == "" {
			dir = "/run/credentials/@system"
		}
		return o.readOnly(sources.Dir{Dir: dir})
	case SourceAuto, "":
		return o.readAuto(sys, sources.Dir{Dir: o.credentialsDir()}, fwcfg, smbiosSrc)
	default:
		return Received{}, fmt.Errorf("%w: --source must be %s, not %q", ErrUsage, oneOf(SourceChoices), o.Source)
	}
}

// readAuto prefers what systemd handed this service and reads the firmware too, to catch a
// disagreement between the two. Every source gets a report; a source that fails is reported,
// never dropped, and never stops the others from being verified.
func (o *Options) readAuto(sys string, dir sources.Dir, firmware ...sources.Source) (Received, error) {
	fw, fwReports, fwErr := sources.Read(firmware...)
	r := Received{Systemd: o.Systemd}
	if dir.Dir != "" {
		set, reports, err := sources.Read(dir)
		r.Sources = append(reports, fwReports...)
		if err == nil {
			r.Set, r.Used = set, []string{credential.SourceCredentials}
			if fwErr == nil {
				r.Compare = map[string]*credential.Set{credential.SourceCredentials: set, strings.Join(sources.Used(fwReports), "+"): fw}
				r.Used = append(r.Used, sources.Used(fwReports)...)
			}
			return r, nil
		}
	} else {
		r.Sources = append([]sources.Report{{Name: credential.SourceCredentials, State: sources.Unavailable,
			Detail: "no --credentials-dir and no $CREDENTIALS_DIRECTORY"}}, fwReports...)
	}
	if fwErr != nil {
		return r, fmt.Errorf("no credential source readable under %s: %s", sys, describe(r.Sources))
	}
	r.Set, r.Used = fw, sources.Used(fwReports)
	return r, nil
}

// describe is "credentials unavailable (…); fwcfg error (…); …" for errors and logs.
func describe(reports []sources.Report) string {
	var parts []string
	for _, s := range reports {
		p := s.Name + " " + string(s.State)
		if s.Detail != "" {
			p += " (" + s.Detail + ")"
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, "; ")
}

func (o *Options) readOnly(src sources.Source) (Received, error) {
	set, report, err := sources.ReadSource(src)
	r := Received{Set: set, Sources: []sources.Report{report}, Systemd: o.Systemd}
	if err != nil {
		return r, err
	}
	r.Used = []string{src.Name()}
	return r, nil
}

// control finds a control credential in the merged set or, failing that, in a compared source
// (a service may import only its own credentials into $CREDENTIALS_DIRECTORY).
func (r Received) control(name string) (credential.Credential, bool) {
	if c, ok := r.Set.Get(name); ok {
		return c, true
	}
	for _, s := range r.Compare {
		if c, ok := s.Get(name); ok {
			return c, true
		}
	}
	return credential.Credential{}, false
}

// oneOf is "a, b or c".
func oneOf(words []string) string {
	if len(words) < 2 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " or " + words[len(words)-1]
}

// SourceProblems is the reports that are not ok: what STATUS= and the log must mention.
func (r Received) SourceProblems() []sources.Report {
	var out []sources.Report
	for _, s := range r.Sources {
		if s.State == sources.Failed || s.State == sources.Partial {
			out = append(out, s)
		}
	}
	return out
}
