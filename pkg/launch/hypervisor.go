package launch

import (
	"context"
	"flag"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/credlink/credlink/pkg/credential"
)

// Hypervisor is one kind of hypervisor with its own options (its flags). The generic launcher
// (launcher.go) asks it to open a VM for one launch and drives that VM through the machine
// interface; it never asks which kind it is. A hypervisor lives in one file that registers
// itself with register in an init function.
//
// The methods are unexported: a hypervisor is added in this package (one file), and callers
// choose one by name with HypervisorFlags.
type Hypervisor interface {
	// Name is the --hypervisor value; it also names the hypervisor in STATUS= and logs.
	Name() string
	// flags binds the hypervisor's own options to fs (the names must not collide with the
	// launcher's or another hypervisor's).
	flags(fs *flag.FlagSet)
	// open checks the options against s, then opens the acknowledgement channel the guest will
	// answer on (its address is one of the credentials, so it must exist before they are
	// encoded). Nothing is started. A configuration error wraps ErrConfig.
	open(s Spec) (machine, error)
	// smbiosStructures is how many SMBIOS Type 11 structures the hypervisor can deliver (0:
	// as many as needed) and, when limited, how to name the delivery in a budget error.
	smbiosStructures() (max int, via string)
}

// argvTaker is a Hypervisor that takes the command line after "--" (qemu).
type argvTaker interface {
	setArgv(argv []string)
}

// Spec is what the launcher tells a hypervisor about one launch: everything that is not the
// hypervisor's own option.
type Spec struct {
	VM         string // --vm: the VM's name
	RuntimeDir string // private 0700 directory for sockets and files, removed after the launch
	// GuestCID is --guest-cid, the guest's vsock context ID; 0 means DeriveCID(VM).
	GuestCID uint32
	// GuestNotify (--wait-guest-boot) asks for a second listener on the channel for the guest
	// systemd's own notifications (vmm.notify_socket). A channel that cannot carry it leaves
	// channel.notify nil and the launcher refuses the launch.
	GuestNotify bool
	// Manifest is --manifest, the host-side manifest (the local guest-agent's default).
	Manifest string
	// GuestSystemd is --guest-systemd: the guest's systemd, whose read limits the OEM strings
	// were laid out for (local mode tells its agent to read with the same rules).
	GuestSystemd   credential.Systemd
	Stdout, Stderr io.Writer // the hypervisor's own output
}

func (s Spec) guestCID() uint32 {
	if s.GuestCID != 0 {
		return s.GuestCID
	}
	return DeriveCID(s.VM)
}

// machine is one VM from open to exit.
type machine interface {
	// channel is the VM's acknowledgement channel, opened by open; the launcher serves and
	// closes it.
	channel() *channel
	// load hands over the SMBIOS Type 11 OEM strings to deliver (control credentials first),
	// grouped into Type 11 structures (at most smbiosStructures of them), once, after open and
	// before plan or start.
	load(structures [][]string) error
	// plan describes the launch for host-launcher plan, every OEM string redacted.
	plan() []string
	start(ctx context.Context) error
	// stop shuts the guest down gracefully within timeout, then forcibly.
	stop(timeout time.Duration) error
	done() <-chan struct{} // closed once the hypervisor process has exited
	exitErr() error        // its exit status, valid once done is closed
	pid() int
}

// registry holds every hypervisor's constructor, by name.
var registry = map[string]func() Hypervisor{}

// register adds a hypervisor; each hypervisor's file calls it from init.
func register(newHypervisor func() Hypervisor) {
	name := newHypervisor().Name()
	if _, dup := registry[name]; dup {
		panic("launch: hypervisor " + name + " registered twice")
	}
	registry[name] = newHypervisor
}

// HypervisorNames lists the registered hypervisors, sorted.
func HypervisorNames() []string {
	var names []string
	for n := range registry {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// oneOf is "a, b or c".
func oneOf(names []string) string {
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// HypervisorChoice is every registered hypervisor with its flags bound to one FlagSet, until
// the command line has said which one to use.
type HypervisorChoice struct {
	fs     *flag.FlagSet
	byName map[string]Hypervisor
	owner  map[string]string // flag name → the hypervisor it belongs to
}

// HypervisorFlags binds every registered hypervisor's own flags to fs. Call Choose after
// fs.Parse.
func HypervisorFlags(fs *flag.FlagSet) *HypervisorChoice {
	c := &HypervisorChoice{fs: fs, byName: map[string]Hypervisor{}, owner: map[string]string{}}
	for _, name := range HypervisorNames() {
		h := registry[name]()
		own := flag.NewFlagSet(name, flag.ContinueOnError)
		h.flags(own)
		own.VisitAll(func(f *flag.Flag) {
			fs.Var(f.Value, f.Name, f.Usage) // panics on a collision: a programming error
			c.owner[f.Name] = name
		})
		c.byName[name] = h
	}
	return c
}

// Flags lists the flags of the hypervisor named name, sorted (for help texts).
func (c *HypervisorChoice) Flags(name string) []string {
	var out []string
	for f, o := range c.owner {
		if o == name {
			out = append(out, f)
		}
	}
	slices.Sort(out)
	return out
}

// Choose returns the hypervisor named name, configured by the parsed flags; argv is the
// command line after "--". It refuses an unknown name, another hypervisor's flags and argv
// for a hypervisor that takes none. Errors wrap ErrConfig.
func (c *HypervisorChoice) Choose(name string, argv []string) (Hypervisor, error) {
	h, ok := c.byName[name]
	if !ok {
		return nil, configErr("--hypervisor must be %s, not %q", oneOf(HypervisorNames()), name)
	}
	var err error
	c.fs.Visit(func(f *flag.Flag) {
		if o, ok := c.owner[f.Name]; ok && o != name && err == nil {
			err = configErr("--%s is for --hypervisor %s", f.Name, o)
		}
	})
	if err != nil {
		return nil, err
	}
	if len(argv) > 0 {
		a, ok := h.(argvTaker)
		if !ok {
			var takers []string
			for _, n := range HypervisorNames() {
				if _, ok := c.byName[n].(argvTaker); ok {
					takers = append(takers, n)
				}
			}
			return nil, configErr("arguments after -- are only for --hypervisor %s (got %q)", oneOf(takers), argv[0])
		}
		a.setArgv(argv)
	}
	return h, nil
}
