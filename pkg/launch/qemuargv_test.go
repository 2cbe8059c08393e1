package launch

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/credlink/credlink/pkg/smbios"
)

// The QEMU argv guard reads options the way QEMU 7.2 does (softmmu/vl.c lookup_opt and
// qemu-options.hx): "--name" is "-name", the argument is the next element, -machine's first
// element is its type, numbers are in every base qemu_strtou64 accepts.
func TestQEMUArgvGuard(t *testing.T) {
	dir := t.TempDir()
	smbiosFile := func(name string, strs ...string) string {
		b, err := smbios.Structure(strs, 0x0b00)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		os.WriteFile(p, b, 0o600)
		return p
	}
	credFile := smbiosFile("cred.bin", "vendor=acme", "io.systemd.credential:API_KEY=secret")
	plainFile := smbiosFile("plain.bin", "vendor=acme")
	tests := []struct {
		name string
		argv []string
		err  string // "" = accepted
	}{
		{"plain q35", []string{"-machine", "q35", "-m", "256"}, ""},
		{"-M microvm", []string{"-M", "microvm"}, "microvm"},
		{"--machine microvm", []string{"--machine", "microvm"}, "microvm"},
		{"-machine type=microvm", []string{"-machine", "type=microvm,accel=tcg"}, "microvm"},
		{"--M microvm,x-option-roms=off", []string{"--M", "microvm,x-option-roms=off"}, "microvm"},
		{"microvm only as a later machine", []string{"-machine", "q35", "-machine", "type=microvm"}, "microvm"},
		{"microvm as an argument of -append", []string{"-machine", "q35", "-append", "-M microvm"}, ""},
		{"machine property named microvm", []string{"-machine", "q35,microvm=on"}, ""},
		{"-smbios type=11", []string{"-machine", "q35", "-smbios", "type=11,value=x"}, "type=11"},
		{"--smbios type=11,path=", []string{"-machine", "q35", "--smbios", "type=11,path=/tmp/x"}, "type=11"},
		{"-smbios type=0xb", []string{"-machine", "q35", "-smbios", "type=0xb,path=/tmp/x"}, "type=11"},
		{"-smbios type=013 (octal)", []string{"-machine", "q35", "-smbios", "type=013,path=/tmp/x"}, "type=11"},
		{"-smbios type=+11 (strtoul sign)", []string{"-machine", "q35", "-smbios", "type=+11,value=x"}, "type=11"},
		{"-smbios type= 11 (strtoul space)", []string{"-machine", "q35", "-smbios", "type= 11,value=x"}, "type=11"},
		{"-smbios type=tab 11", []string{"-machine", "q35", "-smbios", "type=\t11,value=x"}, "type=11"},
		{"-smbios type=+0xb", []string{"-machine", "q35", "-smbios", "type=+0xb,value=x"}, "type=11"},
		{"-smbios type=11junk (strtoul stops)", []string{"-machine", "q35", "-smbios", "type=11junk,value=x"}, "type=11"},
		{"-smbios type=-(2^64-11) wraps to 11", []string{"-machine", "q35", "-smbios", "type=-18446744073709551605,value=x"}, "type=11"},
		{"-smbios type=0x11 is 17", []string{"-machine", "q35", "-smbios", "type=0x11,value=x"}, ""},
		{"-smbios type=011 is 9", []string{"-machine", "q35", "-smbios", "type=011,manufacturer=x"}, ""},
		{"-smbios file= with a credential", []string{"-machine", "q35", "-smbios", "file=" + credFile}, "holds systemd credentials in a file"},
		{"-smbios file= with plain OEM strings", []string{"-machine", "q35", "-smbios", "file=" + plainFile}, ""},
		{"-smbios file= missing (QEMU's to report)", []string{"-machine", "q35", "-smbios", "file=" + dir + "/nope"}, ""},
		{"-smbios type=1 is fine", []string{"-machine", "q35", "-smbios", "type=1,manufacturer=x"}, ""},
		{"--fw_cfg credentials", []string{"-machine", "q35", "--fw_cfg", "name=opt/io.systemd.credentials/X,file=/x"}, "fw_cfg"},
		{"credential in -append", []string{"-machine", "q35", "-append", "io.systemd.credential:X=y"}, "already contains a systemd credential"},
		{"-daemonize", []string{"-machine", "q35", "-daemonize"}, "-daemonize (argument 3) is refused"},
		{"--daemonize", []string{"--daemonize", "-machine", "q35"}, "--daemonize (argument 1) is refused"},
		{"-runas stays allowed", []string{"-machine", "q35", "-runas", "nobody"}, ""},
		{"set_credential in -append", []string{"-machine", "q35", "-append", "console=ttyS0 systemd.set_credential=X:secret"}, "kernel command-line credential"},
		{"set_credential_binary in -append", []string{"-machine", "q35", "-append", "systemd.set_credential_binary=X:c2VjcmV0"}, "kernel command-line credential"},
		{"set-credential (dash) in -append", []string{"-machine", "q35", "-append", "rd.systemd.set-credential=X:y"}, "kernel command-line credential"},
		{"option missing its argument", []string{"-machine"}, "needs an argument"},
		{"--machine missing its argument", []string{"-m", "256", "--machine"}, "needs an argument"},
		{"empty", nil, "qemu needs its arguments"},
		{"vsock guest-cid not a number", []string{"-machine", "q35", "-device", "vhost-vsock-pci,guest-cid=1_6"}, "guest-cid"},
		{"vsock guest-cid reserved", []string{"-machine", "q35", "-device", "vhost-vsock-pci,guest-cid=2"}, "guest-cid"},
		{"vsock guest-cid VMADDR_CID_ANY", []string{"-machine", "q35", "-device", "vhost-vsock-pci,guest-cid=0xffffffff"}, "VMADDR_CID_ANY"},
		{"vsock guest-cid hex is fine", []string{"-machine", "q35", "-device", "vhost-vsock-pci,guest-cid=0x10"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := checkQEMUArgv(tc.argv)
			checkConfigErr(t, err, tc.err)
		})
	}
}

func TestQEMUArgvVsockCID(t *testing.T) {
	tests := []struct {
		name string
		argv []string
		cid  uint32
		ok   bool
	}{
		{"decimal", []string{"-device", "vhost-vsock-pci,guest-cid=16"}, 16, true},
		{"hex", []string{"-device", "vhost-vsock-pci,guest-cid=0x10"}, 16, true},
		{"octal", []string{"-device", "vhost-vsock-pci,guest-cid=020"}, 16, true},
		{"--device", []string{"--device", "vhost-vsock-pci,id=v,guest-cid=7"}, 7, true},
		{"driver= spelling", []string{"-device", "driver=vhost-vsock-device,guest-cid=9"}, 9, true},
		{"JSON", []string{"-device", `{"driver":"vhost-vsock-pci","guest-cid":12}`}, 12, true},
		{"none", []string{"-device", "virtio-rng-pci"}, 0, false},
		{"in an -append", []string{"-append", "vhost-vsock-pci,guest-cid=5"}, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cid, ok := argvVsockCID(tc.argv)
			if cid != tc.cid || ok != tc.ok {
				t.Fatalf("argvVsockCID = %d, %v; want %d, %v", cid, ok, tc.cid, tc.ok)
			}
		})
	}
}

// QEMU is told to keep guest memory out of core dumps, after the operator's -machine options.
func TestQEMUKeepsGuestMemoryOutOfDumps(t *testing.T) {
	q := &qemuVM{h: &QEMU{Argv: []string{"-machine", "q35,dump-guest-core=on", "-m", "256"}}, s: Spec{VM: "x", RuntimeDir: t.TempDir()}}
	if err := q.load(nil); err != nil {
		t.Fatal(err)
	}
	opts, err := parseQEMUArgv(q.argv[1:])
	if err != nil {
		t.Fatal(err)
	}
	last := ""
	for _, o := range opts {
		if o.Name == "machine" || o.Name == "M" {
			if v, ok := qemuKeyval(o.Arg, "type")["dump-guest-core"]; ok {
				last = v
			}
		}
	}
	if last != "off" {
		t.Fatalf("effective dump-guest-core = %q in %q", last, q.argv)
	}
}

// TestCStrtoul: cStrtoul against glibc's strtoul(s, NULL, 0), the values measured on glibc 2.36
// (Debian 12, the libc of QEMU 7.2 here) through ctypes.
func TestCStrtoul(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want uint64
	}{
		{"+11", 11}, {" 11", 11}, {"\t11", 11}, {"\v11", 11}, {"+0xb", 11}, {"0X0B", 11}, {"11junk", 11},
		{"-18446744073709551605", 11}, {"0x11", 17}, {"011", 9}, {"013", 11}, {"0x", 0}, {"0xg", 0}, {"", 0},
		{"-0", 0}, {"99999999999999999999", 1<<64 - 1}, {"-99999999999999999999", 1<<64 - 1},
	} {
		if got := cStrtoul(tc.in); got != tc.want {
			t.Errorf("cStrtoul(%q) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

// qemuOpts splits a QEMU option list the way util/qemu-option.c does: ',' separates, ",," is a
// literal comma.
func qemuOpts(s string) []string {
	var out []string
	var cur strings.Builder
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == ',' && i+1 < len(s) && s[i+1] == ',':
			cur.WriteByte(',')
			i++
		case s[i] == ',':
			out = append(out, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(s[i])
		}
	}
	return append(out, cur.String())
}

// TestQEMUOptionPathsEscapeCommas: a ',' in --runtime-dir (--vm refuses it) reaches the socket
// paths in -chardev and -qmp; escaped as ",," it stays part of the path instead of adding options.
func TestQEMUOptionPathsEscapeCommas(t *testing.T) {
	for _, tc := range []struct{ vm, dir string }{
		{"plain", "run"},
		{"vm", "a,logfile=x"},
		{"vm", "r,un,logfile=y"},
	} {
		e := newEnv(t)
		c := e.config(&QEMU{Binary: "qemu-system-x86_64", AckVia: "serial", Argv: []string{"-machine", "q35", "-m", "64"}})
		c.VM = tc.vm
		c.RuntimeDir = filepath.Join(e.dir, tc.dir)
		os.Mkdir(c.RuntimeDir, 0o700)
		vm, _, cleanup, err := c.setup()
		if err != nil {
			cleanup()
			t.Fatalf("%q in %q: %v", tc.vm, tc.dir, err)
		}
		argv := vm.(interface{ planExec() []string }).planExec()
		cleanup()
		want := map[string][]string{"-chardev": {"socket", "id=credlink-ack", "path="}, "-qmp": {"unix:", "server=on", "wait=off"}}
		for i, a := range argv[:len(argv)-1] {
			w, ok := want[a]
			if !ok {
				continue
			}
			opts := qemuOpts(argv[i+1])
			if len(opts) != len(w) {
				t.Errorf("vm %q, dir %q: %s %s splits into %q", tc.vm, tc.dir, a, argv[i+1], opts)
				continue
			}
			for j := range w {
				if !strings.HasPrefix(opts[j], w[j]) {
					t.Errorf("vm %q, dir %q: %s option %d is %q, want %q…", tc.vm, tc.dir, a, j, opts[j], w[j])
				}
			}
			if path := opts[len(w)-3+map[string]int{"-chardev": 2, "-qmp": 0}[a]]; !strings.Contains(path, c.RuntimeDir) {
				t.Errorf("vm %q, dir %q: %s path %q is not under %q", tc.vm, tc.dir, a, path, c.RuntimeDir)
			}
			delete(want, a)
		}
		if len(want) != 0 {
			t.Errorf("vm %q: %v not in %q", tc.vm, want, argv)
		}
	}
}
