package launch

import (
	"errors"
	"flag"
	"io"
	"slices"
	"strings"
	"testing"
)

// TestHypervisorChoice: every registered hypervisor's flags reach it through HypervisorFlags,
// and Choose refuses an unknown name, another hypervisor's flags and argv for a hypervisor
// that takes none.
func TestHypervisorChoice(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		err   string // "" means success
		check func(t *testing.T, h Hypervisor)
	}{
		{"qemu with its flags and argv", []string{"--hypervisor", "qemu", "--qemu", "/q", "--ack-via", "serial", "--", "-M", "q35"}, "",
			func(t *testing.T, h Hypervisor) {
				q := h.(*QEMU)
				if q.Binary != "/q" || q.AckVia != "serial" || strings.Join(q.Argv, " ") != "-M q35" {
					t.Errorf("%+v", q)
				}
			}},
		{"cloud-hypervisor", []string{"--hypervisor", "cloud-hypervisor", "--vm-config", "/vm.json", "--api-proxy", "/p.sock"}, "",
			func(t *testing.T, h Hypervisor) {
				if ch := h.(*CloudHypervisor); ch.VMConfig != "/vm.json" || ch.APIProxy != "/p.sock" || ch.Binary != "cloud-hypervisor" {
					t.Errorf("%+v", ch)
				}
			}},
		{"local", []string{"--hypervisor", "local", "--agent", "/a", "--agent-metrics", ":1"}, "",
			func(t *testing.T, h Hypervisor) {
				if l := h.(*Local); l.Agent != "/a" || l.Metrics != ":1" {
					t.Errorf("%+v", l)
				}
			}},
		{"unknown", []string{"--hypervisor", "xen"}, "--hypervisor must be " + oneOf(HypervisorNames()) + `, not "xen"`, nil},
		{"missing", nil, "--hypervisor must be " + oneOf(HypervisorNames()) + `, not ""`, nil},
		{"another's flag", []string{"--hypervisor", "qemu", "--api-proxy", "/p.sock"}, "--api-proxy is for --hypervisor cloud-hypervisor", nil},
		{"argv for local", []string{"--hypervisor", "local", "--", "-M", "q35"}, "arguments after -- are only for --hypervisor ", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			name := fs.String("hypervisor", "", "")
			choice := HypervisorFlags(fs)
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			h, err := choice.Choose(*name, fs.Args())
			if tt.err != "" {
				if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if h.Name() != *name {
				t.Errorf("chose %s", h.Name())
			}
			tt.check(t, h)
		})
	}
}

// Each hypervisor owns its flags: none is shared, and each is listed for help.
func TestHypervisorFlagNames(t *testing.T) {
	owner := map[string]string{}
	choice := HypervisorFlags(flag.NewFlagSet("test", flag.ContinueOnError))
	for _, name := range HypervisorNames() {
		flags := choice.Flags(name)
		if len(flags) == 0 {
			t.Errorf("%s has no flags of its own", name)
		}
		for _, f := range flags {
			if o, dup := owner[f]; dup {
				t.Errorf("--%s registered by %s and %s", f, o, name)
			}
			owner[f] = name
		}
	}
	for _, want := range []string{"cloud-hypervisor", "local", "qemu"} {
		if !slices.Contains(HypervisorNames(), want) {
			t.Errorf("%s not registered: %v", want, HypervisorNames())
		}
	}
}
