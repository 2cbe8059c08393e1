package launch

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/credlink/credlink/pkg/ack"
	"github.com/credlink/credlink/pkg/listen"
)

// firstExtraFD is the fd number of exec.Cmd.ExtraFiles[0] in the child.
const firstExtraFD = 3

// SerialPortName is the virtio-serial port the agent opens as /dev/virtio-ports/credlink.0.
const SerialPortName = "credlink.0"

// QEMU is --hypervisor qemu: qemu-system-* with the OEM strings on inherited file descriptors
// (qemusmbios.go: complete Type 11 structures in sealed memfds, -smbios file=/dev/fd/N, or one
// pipe per string, -smbios type=11,path=/dev/fd/N), so no string is ever on the command line. The
// acknowledgement travels over vhost-vsock when /dev/vhost-vsock exists (or the argv already
// has a vhost-vsock device), else over a virtio-serial port whose chardev connects to a socket
// in the runtime directory.
type QEMU struct {
	Binary string   // --qemu; default qemu-system-x86_64
	AckVia string   // --ack-via: auto (default), vsock or serial
	Argv   []string // the command line after --, without the credentials
	// SMBIOSDelivery is --smbios-delivery: SMBIOSFile (default) or SMBIOSPath.
	SMBIOSDelivery string
}

func init() { register(func() Hypervisor { return &QEMU{} }) }

// Name implements Hypervisor.
func (*QEMU) Name() string { return "qemu" }

func (h *QEMU) flags(fs *flag.FlagSet) {
	fs.StringVar(&h.Binary, "qemu", "qemu-system-x86_64", "qemu binary `PATH`")
	fs.StringVar(&h.AckVia, "ack-via", "auto", "acknowledgement `TRANSPORT`: auto (vsock if /dev/vhost-vsock exists), vsock or serial")
	fs.StringVar(&h.SMBIOSDelivery, "smbios-delivery", SMBIOSFile, "how QEMU gets the OEM strings, `METHOD`: file (complete Type 11 structures in sealed memfds, -smbios file=; any number of credentials) or path (a pipe per string, -smbios type=11,path=; at most 255, and exposed to the path= overrun of QEMU 6.1 until its 2025 fix)")
}

func (h *QEMU) smbiosStructures() (int, string) {
	if h.SMBIOSDelivery == SMBIOSPath {
		return 1, "QEMU -smbios type=11,path="
	}
	return 0, ""
}

func (h *QEMU) setArgv(argv []string) { h.Argv = argv }

// qemuVM is one qemu launch.
type qemuVM struct {
	process
	h          *QEMU
	s          Spec
	ch         *channel
	ackArgs    []string // the channel's devices
	structures [][]string
	argv       []string // full argv, secret-free
	qmpPath    string
	smbios     *smbiosDelivery
}

func (h *QEMU) open(s Spec) (machine, error) {
	if err := checkQEMUArgv(h.Argv); err != nil {
		return nil, err
	}
	switch h.AckVia {
	case "", "auto", "vsock", "serial":
	default:
		return nil, configErr("--ack-via must be auto, vsock or serial, not %q", h.AckVia)
	}
	switch h.SMBIOSDelivery {
	case "", SMBIOSFile, SMBIOSPath:
	default:
		return nil, configErr("--smbios-delivery must be %s or %s, not %q", SMBIOSFile, SMBIOSPath, h.SMBIOSDelivery)
	}
	q := &qemuVM{h: h, s: s}
	cid, inArgv := argvVsockCID(h.Argv)
	useVsock := inArgv || h.AckVia == "vsock"
	if h.AckVia == "" || h.AckVia == "auto" {
		_, err := os.Stat("/dev/vhost-vsock")
		useVsock = inArgv || err == nil
	}
	if s.GuestNotify && !useVsock {
		return nil, configErr("--wait-guest-boot needs a vsock channel to the guest (systemd sends vmm.notify_socket over AF_VSOCK): with qemu, /dev/vhost-vsock and --ack-via vsock; this launch would use virtio-serial")
	}
	var err error
	switch {
	case useVsock:
		if !inArgv {
			cid = s.guestCID()
			q.ackArgs = []string{"-device", fmt.Sprintf("vhost-vsock-pci,guest-cid=%d", cid)}
		}
		q.ch, err = vsockChannel(cid, s.GuestNotify)
	default:
		q.ch, err = serialChannel(runtimePath(s, "serial.sock"))
		q.ackArgs = []string{
			"-device", "virtio-serial-pci,id=credlink-vser",
			"-chardev", "socket,id=credlink-ack,path=" + qemuOptValue(runtimePath(s, "serial.sock")),
			"-device", "virtserialport,bus=credlink-vser.0,chardev=credlink-ack,name=" + SerialPortName,
		}
	}
	if err != nil {
		return nil, err
	}
	return q, nil
}

// qemuOptValue escapes v for a QEMU option list, where ',' separates options and ",," is a
// literal comma (util/qemu-option.c get_opt_value): --runtime-dir reaches the paths in
// -chardev and -qmp (--vm refuses commas), and a comma there would otherwise add options of the
// caller's choosing (e.g. logfile=).
func qemuOptValue(v string) string { return strings.ReplaceAll(v, ",", ",,") }

// serialChannel listens on the Unix socket QEMU's virtio-serial chardev connects to: one byte
// stream for the VM's lifetime, in which the guest's port appears.
func serialChannel(path string) (*channel, error) {
	l, err := listen.Unix(path)
	if err != nil {
		return nil, err
	}
	return &channel{addr: ack.Address{Kind: ack.KindSerial, Name: SerialPortName}, kind: "virtio-serial", listener: l, stream: true}, nil
}

func (q *qemuVM) channel() *channel { return q.ch }

// load builds the command line: the -smbios options of the delivery method (qemuSMBIOS), the
// channel's devices, and a QMP socket for the power button unless the argv has one.
func (q *qemuVM) load(structures [][]string) error {
	q.structures = structures
	bin := q.h.Binary
	if bin == "" {
		bin = "qemu-system-x86_64"
	}
	var err error
	if q.smbios, err = qemuSMBIOS(q.h.SMBIOSDelivery, structures, firstExtraFD); err != nil {
		return err
	}
	extra := append([]string{}, q.smbios.args...)
	extra = append(extra, q.ackArgs...)
	// Guest memory (which holds the SMBIOS table and, in the guest, every credential) is
	// marked MADV_DONTDUMP, so that even a core written despite RLIMIT_CORE=0 (a core_pattern
	// helper that ignores it, gcore) leaves it out. QEMU merges repeated -machine options; the
	// last value wins.
	extra = append(extra, "-machine", "dump-guest-core=off")
	// Our own QMP monitor, for the graceful stop (system_powerdown), even when the operator
	// has one: QEMU serves every -qmp given (each is a monitor of its own), so theirs keeps
	// working and ours cannot be taken away by it.
	q.qmpPath = runtimePath(q.s, "qmp.sock")
	extra = append(extra, "-qmp", "unix:"+qemuOptValue(q.qmpPath)+",server=on,wait=off")
	q.argv = append(append([]string{bin}, q.h.Argv...), extra...)
	q.process = newProcess(exec.Command(q.argv[0], q.argv[1:]...))
	q.cmd.Stdout, q.cmd.Stderr = q.s.Stdout, q.s.Stderr
	return nil
}

func (q *qemuVM) start(ctx context.Context) error {
	files, afterStart, err := q.smbios.open()
	if err != nil {
		return err
	}
	q.cmd.ExtraFiles = files
	err = q.startProcess()
	closeAll(files) // the child has its copies
	if afterStart != nil {
		afterStart()
	}
	if err != nil {
		return fmt.Errorf("start qemu: %w", err)
	}
	return nil
}

func closeAll(fs []*os.File) {
	for _, f := range fs {
		f.Close()
	}
}

// stop presses the ACPI power button through QMP, waits, then terminates QEMU.
func (q *qemuVM) stop(timeout time.Duration) error {
	if !q.started() || q.exited() {
		return nil
	}
	pressed := q.qmpPath != "" && qmp(q.qmpPath, "system_powerdown") == nil
	if pressed && q.waitExit(timeout) {
		return nil
	}
	if err := q.terminate(5 * time.Second); err != nil { // QEMU exits at once on SIGTERM
		return err
	}
	if pressed {
		return fmt.Errorf("the guest did not power off within %v of the ACPI power button; qemu terminated", timeout)
	}
	return nil
}

// qmp runs one QMP command on a fresh connection.
func qmp(path, command string) error {
	c, err := net.DialTimeout("unix", path, 2*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(c)
	if _, err := r.ReadBytes('\n'); err != nil { // greeting
		return err
	}
	for _, cmd := range []string{"qmp_capabilities", command} {
		b, _ := json.Marshal(map[string]string{"execute": cmd})
		if _, err := c.Write(append(b, '\n')); err != nil {
			return err
		}
		for { // skip events until the reply
			line, err := r.ReadBytes('\n')
			if err != nil {
				return err
			}
			var m map[string]json.RawMessage
			if json.Unmarshal(line, &m) != nil {
				continue
			}
			if e, ok := m["error"]; ok {
				return fmt.Errorf("qmp %s: %s", cmd, e)
			}
			if _, ok := m["return"]; ok {
				break
			}
		}
	}
	return nil
}

func (q *qemuVM) plan() []string {
	method := q.h.SMBIOSDelivery
	if method == "" {
		method = SMBIOSFile
	}
	out := []string{"exec: " + strings.Join(q.argv, " "), "SMBIOS delivery: " + method + " (" + describeStructures(q.structures) + ")"}
	return append(out, q.smbios.plan...)
}
