package agent

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/credlink/credlink/pkg/credential"
)

// SourceAuto is --source auto: the credentials directory, compared with the firmware when
// readable. The other values of --source are the credential.Source* names.
const SourceAuto = "auto"

// SourceChoices lists the values of --source.
var SourceChoices = []string{SourceAuto, credential.SourceSMBIOS, credential.SourceCredentials, credential.SourceFwCfg}

// ErrUsage marks configuration errors (exit code 2).
var ErrUsage = errors.New("usage")

// Received is what the agent read: the merged set it verifies and, when more than one source
// was readable, the per-source sets for source_mismatch.
type Received struct {
	Set     *credential.Set
	Used    []string
	Compare map[string]*credential.Set
}

// credentialsDir returns --credentials-dir, else $CREDENTIALS_DIRECTORY.
func (o *Options) credentialsDir() string {
	if o.CredentialsDir != "" {
		return o.CredentialsDir
	}
	return os.Getenv("CREDENTIALS_DIRECTORY")
}

// Read reads the credentials according to o.Source.
func (o *Options) Read() (Received, error) {
	sys := o.Sysfs
	if sys == "" {
		sys = "/sys"
	}
	smbiosSrc := credential.SMBIOSSource{Sysfs: sys}
	fwcfg := credential.FwCfgSource{Sysfs: sys}
	switch o.Source {
	case credential.SourceSMBIOS:
		return readOnly(smbiosSrc)
	case credential.SourceFwCfg:
		return readOnly(fwcfg)
	case credential.SourceCredentials:
		dir := o.credentialsDir()
		if dir == "" {
			dir = "/run/credentials/@system"
		}
		return readOnly(credential.DirSource{Dir: dir})
	case SourceAuto, "":
		// Prefer what systemd handed this service; read the firmware too when we can, to
		// catch a disagreement between the two.
		firmware, fwUsed, fwErr := credential.Read(fwcfg, smbiosSrc)
		if dir := o.credentialsDir(); dir != "" {
			set, err := credential.DirSource{Dir: dir}.Read()
			if err == nil {
				r := Received{Set: set, Used: []string{credential.SourceCredentials}}
				if fwErr == nil {
					r.Compare = map[string]*credential.Set{credential.SourceCredentials: set, strings.Join(fwUsed, "+"): firmware}
					r.Used = append(r.Used, fwUsed...)
				}
				return r, nil
			}
			if !errors.Is(err, credential.ErrUnavailable) {
				return Received{}, fmt.Errorf("credentials directory: %w", err)
			}
		}
		if fwErr != nil {
			return Received{}, fmt.Errorf("no credential source readable (credentials directory, fw_cfg, SMBIOS under %s): %w", sys, fwErr)
		}
		return Received{Set: firmware, Used: fwUsed}, nil
	default:
		return Received{}, fmt.Errorf("%w: --source must be %s, not %q", ErrUsage, oneOf(SourceChoices), o.Source)
	}
}

func readOnly(src credential.Source) (Received, error) {
	set, err := src.Read()
	if err != nil {
		return Received{}, fmt.Errorf("%s: %w", src.Name(), err)
	}
	return Received{Set: set, Used: []string{src.Name()}}, nil
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
