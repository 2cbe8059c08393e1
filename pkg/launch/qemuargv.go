package launch

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/credlink/credlink/pkg/regfile"
)

// QEMU's command line, read the way QEMU reads it (QEMU 7.2, softmmu/vl.c lookup_opt): an
// element starting with '-' is an option and "--name" means "-name"; an option's argument is
// always the next element ("-name=value" is not an option QEMU knows); anything else is a disk
// image. Whether an option takes an argument comes from qemu-options.hx; qemuNoArg lists the
// ones that take none, measured on QEMU 7.2 with `qemu-system-x86_64 -version -NAME` (those
// print the version; the rest say "requires an argument"). An option QEMU 7.2 does not know is
// assumed to take an argument, as most do, so that a newer QEMU's options still pass.

var qemuNoArg = map[string]bool{
	"async-teardown": true, "audio-help": true, "daemonize": true, "enable-kvm": true,
	"enable-sync-profile": true, "full-screen": true, "h": true, "help": true, "mem-prealloc": true,
	"no-acpi": true, "no-fd-bootchk": true, "no-hpet": true, "no-reboot": true, "no-shutdown": true,
	"no-user-config": true, "nodefaults": true, "nographic": true, "old-param": true,
	"only-migratable": true, "portrait": true, "preconfig": true, "S": true, "s": true,
	"semihosting": true, "singlestep": true, "snapshot": true, "usb": true, "version": true,
	"win2k-hack": true, "xen-attach": true, "xen-domid-restrict": true,
}

// qemuOption is one option of a QEMU command line.
type qemuOption struct {
	Name  string // without dashes: "machine"
	Arg   string // its argument, if it takes one
	Index int    // argv index of the option
}

// parseQEMUArgv splits argv into options as QEMU does; an option that needs an argument at the
// end of argv is an error, as it is for QEMU.
func parseQEMUArgv(argv []string) ([]qemuOption, error) {
	var out []qemuOption
	for i := 0; i < len(argv); i++ {
		a := argv[i]
		if len(a) < 2 || a[0] != '-' {
			continue // a disk image
		}
		name := strings.TrimPrefix(a[1:], "-")
		o := qemuOption{Name: name, Index: i}
		if !qemuNoArg[name] {
			if i+1 >= len(argv) {
				return nil, configErr("qemu option %s (argument %d) needs an argument", a, i+1)
			}
			i++
			o.Arg = argv[i]
		}
		out = append(out, o)
	}
	return out, nil
}

// qemuKeyval parses an option argument in QEMU's QemuOpts syntax: comma-separated key=value,
// ",," for a literal comma, and a first element without '=' standing for the implied key.
func qemuKeyval(arg, implied string) map[string]string {
	m := map[string]string{}
	var parts []string
	var cur strings.Builder
	for i := 0; i < len(arg); i++ {
		if arg[i] == ',' {
			if i+1 < len(arg) && arg[i+1] == ',' {
				cur.WriteByte(',')
				i++
				continue
			}
			parts = append(parts, cur.String())
			cur.Reset()
			continue
		}
		cur.WriteByte(arg[i])
	}
	parts = append(parts, cur.String())
	for i, p := range parts {
		k, v, ok := strings.Cut(p, "=")
		switch {
		case ok:
			m[k] = v
		case i == 0 && implied != "":
			m[implied] = p
		default:
			m[k] = "on" // a bare flag
		}
	}
	return m
}

// qemuNumber parses an unsigned number as qemu_strtou64 with base 0 does: "0x"/"0X" hex, a
// leading 0 octal, decimal otherwise; no sign, no underscores, no "0b"/"0o".
func qemuNumber(s string) (uint64, error) {
	base := 10
	digits := s
	switch {
	case strings.HasPrefix(s, "0x") || strings.HasPrefix(s, "0X"):
		base, digits = 16, s[2:]
	case len(s) > 1 && s[0] == '0':
		base, digits = 8, s[1:]
	}
	if digits == "" || strings.ContainsAny(digits, "_+-") {
		return 0, fmt.Errorf("%q is not a number", s)
	}
	return strconv.ParseUint(digits, base, 64)
}

// cStrtoul parses s as glibc strtoul(s, NULL, 0) does, which is how QEMU 7.2 reads -smbios
// type= (hw/smbios/smbios.c, smbios_entry_add: "strtoul(val, NULL, 0)"): leading white space
// (isspace: space, \t \n \v \f \r), an optional sign ('-' negates modulo 2^64), "0x"/"0X"
// before a hex digit for base 16, a leading 0 for base 8, else base 10; the digits end at the
// first byte that is not one, and what follows is ignored; no digits at all is 0; overflow is
// ULONG_MAX. So "+11", " 11", "\t11", "0xb", "013" and "11junk" are all type 11.
func cStrtoul(s string) uint64 {
	i := 0
	for i < len(s) && strings.IndexByte(" \t\n\v\f\r", s[i]) >= 0 {
		i++
	}
	neg := false
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	base := uint64(10)
	if i < len(s) && s[i] == '0' {
		base = 8
		if i+2 < len(s) && (s[i+1] == 'x' || s[i+1] == 'X') && hexDigit(s[i+2]) >= 0 {
			base, i = 16, i+2
		}
	}
	var n uint64
	overflow := false
	for ; i < len(s); i++ {
		d := hexDigit(s[i])
		if d < 0 || uint64(d) >= base {
			break
		}
		if n > (^uint64(0)-uint64(d))/base {
			overflow = true
		}
		n = n*base + uint64(d)
	}
	if overflow {
		return ^uint64(0)
	}
	if neg {
		return -n
	}
	return n
}

// hexDigit is the value of a hex digit, or -1.
func hexDigit(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// kernelCredential reports whether s holds a kernel command-line credential,
// systemd.set_credential= or systemd.set_credential_binary= (systemd src/core/import-creds.c,
// import_credentials_proc_cmdline; proc_cmdline_key_streq treats '-' like '_', and an "rd."
// prefix applies to the initrd). Such a credential is in the hypervisor's argv, readable in
// /proc by every local user, and in the guest's /proc/cmdline.
func kernelCredential(s string) bool {
	return strings.Contains(strings.ReplaceAll(s, "-", "_"), "systemd.set_credential")
}

// kernelCredentialErr is the refusal of a kernel command-line credential in what.
func kernelCredentialErr(what string) error {
	return configErr("%s has a kernel command-line credential (systemd.set_credential=): it would sit in the hypervisor's argv, readable by every local user, and in the guest's /proc/cmdline; pass it with --credential (secret) or --set (plain value) instead", what)
}

// qemuDetaches lists the options that take QEMU out of host-launcher's supervision: with
// -daemonize QEMU forks, the process host-launcher started exits once the child is set up, and
// the VM (holding every credential) runs on unsupervised: no stop on failure, no SIGTERM
// forwarding, and host-launcher would read the parent's exit as the hypervisor stopping.
// (-runas and -chroot only drop privileges after set-up, in the same process; -incoming and
// -loadvm restore a guest that never reads the new tables, which the acknowledgement timeout
// reports. They stay allowed.)
var qemuDetaches = map[string]string{
	"daemonize": "QEMU would fork away from host-launcher with the credentials in its memory, unsupervised; let systemd supervise host-launcher instead",
}

// maxSMBIOSFile bounds how much of an operator's -smbios file= is read: SMBIOS structures are
// at most 64 KiB each.
const maxSMBIOSFile = 1 << 20

// checkQEMUArgv refuses argv that cannot carry SMBIOS credentials or already carries some.
func checkQEMUArgv(argv []string) error {
	if len(argv) == 0 {
		return configErr("qemu needs its arguments after --")
	}
	opts, err := parseQEMUArgv(argv)
	if err != nil {
		return err
	}
	for _, o := range opts {
		if why, ok := qemuDetaches[o.Name]; ok {
			return configErr("qemu %s (argument %d) is refused: %s", argv[o.Index], o.Index+1, why)
		}
		switch o.Name {
		case "M", "machine":
			if typ := qemuKeyval(o.Arg, "type")["type"]; typ == "microvm" {
				return configErr("qemu -M microvm builds no SMBIOS tables, so credentials cannot be delivered; use q35 or pc (argument %d)", o.Index+2)
			}
		case "smbios":
			// -smbios file= adds the file's structures as they are (hw/smbios/smbios.c,
			// smbios_entry_add): credentials in one would sit on disk, outside credlink.
			if f := qemuKeyval(o.Arg, "")["file"]; f != "" {
				if b, err := regfile.ReadPath(f, maxSMBIOSFile); err == nil && bytes.Contains(b, []byte("io.systemd.credential")) {
					return configErr("qemu -smbios file=%s (argument %d) holds systemd credentials in a file; pass them with --credential so they never sit on disk", f, o.Index+2)
				}
			}
			if t, ok := qemuKeyval(o.Arg, "")["type"]; ok {
				if cStrtoul(t) == 11 {
					return configErr("qemu argv already has -smbios type=11 (argument %d); host-launcher builds the Type 11 strings itself", o.Index+2)
				}
			}
		case "device":
			if _, ok, err := vsockDevice(o.Arg); ok && err != nil {
				return configErr("qemu -device %s (argument %d): %v", o.Arg, o.Index+2, err)
			}
		case "fw_cfg":
			if strings.Contains(o.Arg, "opt/io.systemd.credentials") {
				return configErr("qemu argv passes credentials through fw_cfg (argument %d); use --credential", o.Index+2)
			}
		}
	}
	for i, a := range argv {
		if strings.Contains(a, "io.systemd.credential") {
			return configErr("qemu argv already contains a systemd credential (argument %d); pass credentials with --credential so they stay out of argv", i+1)
		}
		if kernelCredential(a) {
			return kernelCredentialErr(fmt.Sprintf("qemu argument %d", i+1))
		}
	}
	return nil
}

// vsockDevice reads a -device argument: whether it is a vhost-vsock device
// (vhost-vsock-pci|-device|-ccw, QemuOpts or JSON form) and its guest-cid.
func vsockDevice(arg string) (cid uint32, isVsock bool, err error) {
	var driver, num string
	if strings.HasPrefix(strings.TrimSpace(arg), "{") {
		var j map[string]any
		d := json.NewDecoder(strings.NewReader(arg))
		d.UseNumber()
		if err := d.Decode(&j); err != nil {
			return 0, false, nil // QEMU will say what is wrong with it
		}
		driver, _ = j["driver"].(string)
		switch v := j["guest-cid"].(type) {
		case json.Number:
			num = v.String()
		case string:
			num = v
		case nil:
		default:
			num = fmt.Sprint(v)
		}
	} else {
		kv := qemuKeyval(arg, "driver")
		driver, num = kv["driver"], kv["guest-cid"]
	}
	if !strings.HasPrefix(driver, "vhost-vsock") {
		return 0, false, nil
	}
	n, err := qemuNumber(num)
	if err != nil {
		return 0, true, fmt.Errorf("guest-cid %q is not a number", num)
	}
	if err := ValidGuestCID(n); err != nil {
		return 0, true, fmt.Errorf("guest-cid: %w", err)
	}
	return uint32(n), true, nil
}

// argvVsockCID returns the guest CID when argv already has a vhost-vsock device.
func argvVsockCID(argv []string) (uint32, bool) {
	opts, _ := parseQEMUArgv(argv)
	for _, o := range opts {
		if o.Name != "device" {
			continue
		}
		if cid, ok, err := vsockDevice(o.Arg); ok && err == nil {
			return cid, true
		}
	}
	return 0, false
}
