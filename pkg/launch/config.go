package launch

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/credlink/credlink/pkg/ack"
	"github.com/credlink/credlink/pkg/credential"
	"github.com/credlink/credlink/pkg/manifest"
	"github.com/credlink/credlink/pkg/verify"
)

// Failure policies (--on-failure).
const (
	FailStop        = "stop"
	FailReadyAnyway = "ready-anyway"
)

// ErrConfig marks configuration errors: bad flags, unreadable or invalid credentials, budget.
var ErrConfig = errors.New("configuration error")

func configErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrConfig, fmt.Sprintf(format, args...))
}

// CredentialSpec is one --credential NAME=ID.
type CredentialSpec struct {
	Name string
	ID   string // file in $CREDENTIALS_DIRECTORY, or an absolute path
}

// Config is everything host-launcher is told. The hypervisor's own options live in the
// Hypervisor value (see HypervisorFlags); the hypervisor sees only a Spec built from this.
type Config struct {
	VM              string
	Hypervisor      Hypervisor // &QEMU{…}, &CloudHypervisor{…}, &Local{…}
	Credentials     []CredentialSpec
	AllCredentials  bool                    // deliver every file of the credentials directory, named after it
	Settings        []credential.Credential // --set NAME=VALUE: not secret, visible in argv
	ManifestPath    string
	AckTimeout      time.Duration
	OnFailure       string
	ShutdownTimeout time.Duration
	WaitGuestBoot   bool
	RuntimeDir      string // private directory for sockets; created 0700, removed on exit
	GuestCID        uint32 // guest vsock CID (0: DeriveCID(VM))

	// GuestSystemd is the guest's systemd version: below 257 each Type 11 structure must fit in
	// the 4096 bytes systemd reads of it, below 254 there is no vmm.notify_socket. Zero means
	// the newest rules (NixOS and current distributions).
	GuestSystemd credential.Systemd

	CredentialsDir string // default $CREDENTIALS_DIRECTORY
	Logger         *slog.Logger
	Notify         func(state string) error
	Stdout         io.Writer // hypervisor / agent output; default os.Stdout
	Stderr         io.Writer
}

// MinAckTimeout is the shortest --ack-timeout. A VM takes seconds to boot and answer; local mode
// (no VM) answers within milliseconds, which is what the tests use. Below this (1ns, 1µs) the
// value is a mistake that would fail every launch.
const MinAckTimeout = 100 * time.Millisecond

// MaxVMName bounds --vm: the name is part of the private directory's name (pkg/rundir) and so
// of socket paths, which sun_path limits to 107 bytes; 64 is also a host name label's limit + 1.
const MaxVMName = 64

// ValidVMName checks --vm: 1 to MaxVMName bytes of ASCII letters, digits and "._-@+:", not
// starting with '.' or '-'. The name is in file names, the guest's credlink.vm, logs and the
// acknowledgement report, so it carries nothing that needs escaping in any of them.
func ValidVMName(name string) error {
	if name == "" || len(name) > MaxVMName {
		return fmt.Errorf("a VM name is 1 to %d bytes long, not %d", MaxVMName, len(name))
	}
	for i := 0; i < len(name); i++ {
		b := name[i]
		ok := b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || strings.IndexByte("._-@+:", b) >= 0
		if !ok {
			return fmt.Errorf("byte %d (%q) is not allowed in a VM name (ASCII letters, digits and ._-@+: only)", i, b)
		}
	}
	if name[0] == '.' || name[0] == '-' {
		return fmt.Errorf("a VM name must not start with %q", name[0])
	}
	return nil
}

// ValidGuestCID checks an explicit --guest-cid: vsock context IDs 0 (VMADDR_CID_HYPERVISOR),
// 1 (VMADDR_CID_LOCAL) and 2 (VMADDR_CID_HOST) are not a guest's, and 4294967295 is
// VMADDR_CID_ANY (linux/vm_sockets.h); a number that does not fit 32 bits is no CID.
func ValidGuestCID(cid uint64) error {
	if cid < 3 || cid >= 0xFFFFFFFF {
		return fmt.Errorf("a guest CID is from 3 to 4294967294 (0-2 are the hypervisor, local and host, 4294967295 is VMADDR_CID_ANY), not %d", cid)
	}
	return nil
}

// ParseCredentialSpec parses NAME=ID.
func ParseCredentialSpec(s string) (CredentialSpec, error) {
	name, id, ok := strings.Cut(s, "=")
	if !ok || id == "" {
		return CredentialSpec{}, configErr("--credential %q: want NAME=ID", s)
	}
	if err := credential.ValidName(name); err != nil {
		return CredentialSpec{}, configErr("--credential: %v", err)
	}
	return CredentialSpec{Name: name, ID: id}, nil
}

// ParseSetting parses --set NAME=VALUE.
func ParseSetting(s string) (credential.Credential, error) {
	name, value, ok := strings.Cut(s, "=")
	if !ok {
		return credential.Credential{}, configErr("--set %q: want NAME=VALUE", name)
	}
	if err := credential.ValidName(name); err != nil {
		return credential.Credential{}, configErr("--set: %v", err)
	}
	return credential.Credential{Name: name, Value: credential.NewValue([]byte(value))}, nil
}

// Prepared is a validated launch: the credentials to deliver and the OEM strings they encode to.
type Prepared struct {
	User    []credential.Credential // --credential and --set, in order
	Control []credential.Credential // credlink.ack, credlink.key, credlink.vm
	OEM     []string                // one per credential, in All's order
	// Structures groups OEM into the Type 11 structures the guest gets, in order.
	Structures [][]string
	Key        []byte
	Ack        ack.Address
	runDir     string // the launch's private directory (plans hide its random name)
}

// All is Control then User: the OEM strings' order. The control credentials go first so that a
// guest whose systemd reads only part of the structure (see credential.Budget) still gets the
// address and key it needs to report what it did receive.
func (p *Prepared) All() []credential.Credential {
	return append(append([]credential.Credential{}, p.Control...), p.User...)
}

// loadCredentials reads every --credential and --all-credentials file with the reader the
// guest uses (credential.ReadFile: regular files only, at most 1 MiB, never blocking on a
// FIFO), $CREDENTIALS_DIRECTORY through an os.Root so that no ID leaves it.
func (c *Config) loadCredentials() ([]credential.Credential, error) {
	dir := c.CredentialsDir
	if dir == "" {
		dir = os.Getenv("CREDENTIALS_DIRECTORY")
	}
	var root *os.Root // dir, opened on first use
	openDir := func() (*os.Root, error) {
		if root == nil {
			r, err := os.OpenRoot(dir)
			if err != nil {
				return nil, configErr("$CREDENTIALS_DIRECTORY: %v", err)
			}
			root = r
		}
		return root, nil
	}
	defer func() {
		if root != nil {
			root.Close()
		}
	}()
	var out []credential.Credential
	seen := map[string]bool{}
	specs := c.Credentials
	if c.AllCredentials {
		if dir == "" {
			return nil, configErr("--all-credentials needs $CREDENTIALS_DIRECTORY (LoadCredential= in the unit)")
		}
		r, err := openDir()
		if err != nil {
			return nil, err
		}
		ents, err := fs.ReadDir(r.FS(), ".") // sorted, so the OEM string order is stable
		if err != nil {
			return nil, configErr("--all-credentials: %v", err)
		}
		given := map[string]bool{}
		for _, s := range specs {
			given[s.ID] = true
		}
		found := 0
		for _, e := range ents {
			if e.IsDir() || given[e.Name()] {
				continue
			}
			if err := credential.ValidName(e.Name()); err != nil {
				return nil, configErr("--all-credentials: file %q: %v", e.Name(), err)
			}
			specs = append(specs, CredentialSpec{Name: e.Name(), ID: e.Name()})
			found++
		}
		if found == 0 && len(specs) == 0 && len(c.Settings) == 0 {
			// A VM with only the control credentials is almost certainly a unit whose
			// LoadCredential= lines went missing: say so rather than boot it.
			return nil, configErr("--all-credentials: $CREDENTIALS_DIRECTORY (%s) holds no credential files, so the VM would receive none (check the unit's LoadCredential= lines)", dir)
		}
	}
	for _, s := range specs {
		if seen[s.Name] || credential.IsControl(s.Name) {
			return nil, configErr("credential %q given twice or reserved by credlink", s.Name)
		}
		seen[s.Name] = true
		var b []byte
		var err error
		path := s.ID
		if filepath.IsAbs(path) {
			b, err = credential.ReadPath(path)
		} else {
			if dir == "" {
				return nil, configErr("credential %q: %q is not an absolute path and $CREDENTIALS_DIRECTORY is not set (use LoadCredential=%s:…)", s.Name, s.ID, s.ID)
			}
			if strings.Contains(s.ID, "/") {
				return nil, configErr("credential %q: ID %q must be a plain file name in $CREDENTIALS_DIRECTORY", s.Name, s.ID)
			}
			path = filepath.Join(dir, s.ID)
			var r *os.Root
			if r, err = openDir(); err != nil {
				return nil, err
			}
			b, err = credential.ReadFile(r, s.ID)
		}
		if err != nil {
			return nil, configErr("credential %q: %s: %v", s.Name, path, err)
		}
		out = append(out, credential.Credential{Name: s.Name, Value: credential.NewValue(b)})
	}
	for _, s := range c.Settings {
		if seen[s.Name] || credential.IsControl(s.Name) {
			return nil, configErr("credential %q given twice or reserved by credlink", s.Name)
		}
		seen[s.Name] = true
		out = append(out, s)
	}
	return out, nil
}

// Prepare loads and checks everything that can be checked before a launch: the credentials
// (readable, valid names, sizes), the optional manifest against the host-side values, and the
// SMBIOS budget with the control credentials included. addr is where the agent will
// acknowledge.
func (c *Config) Prepare(addr ack.Address) (*Prepared, error) {
	if err := c.validate(); err != nil {
		return nil, err
	}
	return c.prepare(addr, "", nil)
}

// validate checks the options that need nothing opened or read.
func (c *Config) validate() error {
	if c.Hypervisor == nil {
		return configErr("--hypervisor must be %s", oneOf(HypervisorNames()))
	}
	if c.VM == "" {
		return configErr("--vm NAME is required")
	}
	if err := ValidVMName(c.VM); err != nil {
		return configErr("--vm: %v", err)
	}
	if c.AckTimeout < 0 || (c.AckTimeout != 0 && c.AckTimeout < MinAckTimeout) {
		return configErr("--ack-timeout must be at least %v (a guest cannot boot and answer sooner), not %v", MinAckTimeout, c.AckTimeout)
	}
	if c.ShutdownTimeout < 0 {
		return configErr("--shutdown-timeout must be positive, not %v", c.ShutdownTimeout)
	}
	if c.GuestCID != 0 {
		if err := ValidGuestCID(uint64(c.GuestCID)); err != nil {
			return configErr("--guest-cid: %v", err)
		}
	}
	if c.GuestSystemd != 0 && c.GuestSystemd < credential.SystemdFirstSMBIOS {
		return configErr("--guest-systemd %d: systemd imports credentials from SMBIOS Type 11 only from %d on (src/core/import-creds.c), so this guest would receive none", int(c.GuestSystemd), int(credential.SystemdFirstSMBIOS))
	}
	switch c.OnFailure {
	case "", FailStop, FailReadyAnyway:
	default:
		return configErr("--on-failure must be stop or ready-anyway, not %q", c.OnFailure)
	}
	if c.WaitGuestBoot && !c.GuestSystemd.VMMNotify() {
		return configErr("--wait-guest-boot needs a guest whose systemd sends READY=1 to vmm.notify_socket (%d and newer); --guest-systemd %d never would, and every launch would wait out --ack-timeout",
			int(credential.SystemdVMMNotify), int(c.GuestSystemd))
	}
	return nil
}

// prepare is Prepare with the guest notification address (--wait-guest-boot), if any, and the
// OEM strings the hypervisor's own configuration puts after ours (--vm-config's
// platform.oem_strings), which share the Type 11 structure and so the budget.
// The caller has validated c (setup, Prepare).
func (c *Config) prepare(addr ack.Address, notifyAddr string, otherOEM []string) (*Prepared, error) {
	user, err := c.loadCredentials()
	if err != nil {
		return nil, err
	}
	if c.ManifestPath != "" {
		m, err := manifest.Load(c.ManifestPath)
		if err != nil {
			return nil, configErr("%v", err)
		}
		set := &credential.Set{}
		for _, u := range user {
			_ = set.Add(credential.Credential{Name: u.Name, Value: u.Value, Source: credential.SourceHost})
		}
		if res := verify.Verify(m, verify.Input{Set: set}, time.Now()); !res.OK {
			return nil, configErr("host-side credentials do not match the manifest: %s", strings.Join(res.Failures(), "; "))
		}
	}
	p := &Prepared{User: user, Ack: addr, Key: make([]byte, ack.KeySize)}
	if _, err := rand.Read(p.Key); err != nil {
		return nil, err
	}
	p.Control = []credential.Credential{
		{Name: credential.AckCredential, Value: credential.NewValue([]byte(addr.String()))},
		{Name: credential.KeyCredential, Value: credential.NewValue(p.Key)},
		{Name: credential.VMCredential, Value: credential.NewValue([]byte(c.VM))},
	}
	if notifyAddr != "" {
		p.Control = append(p.Control, credential.Credential{Name: credential.NotifySocketCredential, Value: credential.NewValue([]byte(notifyAddr))})
	}
	structures, via := c.Hypervisor.smbiosStructures()
	budget := credential.BudgetFor(c.GuestSystemd, structures, via)
	otherBytes := 0
	for _, s := range otherOEM {
		otherBytes += len(s) + 1
	}
	// They come after ours (cloud-hypervisor builds one structure), so the systemd < 257 page
	// limit on ours is unaffected.
	budget.MaxStrings -= len(otherOEM)
	budget.Reserved += otherBytes
	p.Structures, err = credential.Encode(p.All(), budget)
	if err != nil {
		if len(otherOEM) > 0 {
			return nil, configErr("%v (--vm-config's platform.oem_strings take %d of the strings and %d bytes of that)", err, len(otherOEM), otherBytes)
		}
		return nil, configErr("%v", err)
	}
	p.OEM = credential.Flatten(p.Structures)
	return p, nil
}

// describe returns "NAME (N bytes, text|binary)" for the i-th OEM string, for plans and logs.
func (p *Prepared) describe(i int) string {
	name, size, enc, _ := credential.OEMStringInfo(p.OEM[i])
	return fmt.Sprintf("%s (%d bytes, %s)", name, size, enc)
}
