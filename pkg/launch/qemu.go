package launch

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// firstExtraFD is the fd number of exec.Cmd.ExtraFiles[0] in the child.
const firstExtraFD = 3

// SerialPortName is the virtio-serial port the agent opens as /dev/virtio-ports/credlink.0.
const SerialPortName = "credlink.0"

// checkQEMUArgv refuses argv that cannot carry SMBIOS credentials or already carries some.
func checkQEMUArgv(argv []string) error {
	if len(argv) == 0 {
		return configErr("qemu needs its arguments after --")
	}
	for i, a := range argv {
		next := ""
		if i+1 < len(argv) {
			next = argv[i+1]
		}
		switch {
		case (a == "-M" || a == "-machine") && machineIs(next, "microvm"):
			return configErr("qemu -M microvm builds no SMBIOS tables, so credentials cannot be delivered; use q35 or pc")
		case strings.Contains(a, "io.systemd.credential"):
			return configErr("qemu argv already contains a systemd credential (argument %d); pass credentials with --credential so they stay out of argv", i+1)
		case a == "-smbios" && strings.Contains(next, "type=11"):
			return configErr("qemu argv already has -smbios type=11 (argument %d); host-launcher builds the Type 11 strings itself", i+2)
		case a == "-fw_cfg" && strings.Contains(next, "opt/io.systemd.credentials"):
			return configErr("qemu argv passes credentials through fw_cfg (argument %d); use --credential", i+2)
		}
	}
	return nil
}

func machineIs(opt, typ string) bool {
	for _, part := range strings.Split(opt, ",") {
		if part == typ || part == "type="+typ {
			return true
		}
	}
	return false
}

var guestCIDRe = regexp.MustCompile(`vhost-vsock-(?:pci|device|ccw)\S*guest-cid=(\d+)`)

// argvVsockCID returns the guest CID when argv already has a vhost-vsock device.
func argvVsockCID(argv []string) (uint32, bool) {
	for _, a := range argv {
		if m := guestCIDRe.FindStringSubmatch(a); m != nil {
			n, err := strconv.ParseUint(m[1], 10, 32)
			return uint32(n), err == nil
		}
	}
	return 0, false
}

func argvHas(argv []string, flag string) bool {
	for _, a := range argv {
		if a == flag {
			return true
		}
	}
	return false
}

// qemuVM runs qemu-system-* with the credentials on inherited pipes.
type qemuVM struct {
	process
	c       *Config
	p       *Prepared
	argv    []string // full argv, secret-free
	extra   []string // what host-launcher added, for the plan
	qmpPath string
	writers []*os.File
}

// newQEMU builds the command. ackArgs are the transport's device arguments (may be nil).
func newQEMU(c *Config, p *Prepared, runDir string, ackArgs []string) *qemuVM {
	q := &qemuVM{c: c, p: p}
	bin := c.QEMUBinary
	if bin == "" {
		bin = "qemu-system-x86_64"
	}
	for i := range p.OEM {
		q.extra = append(q.extra, "-smbios", fmt.Sprintf("type=11,path=/dev/fd/%d", firstExtraFD+i))
	}
	q.extra = append(q.extra, ackArgs...)
	if !argvHas(c.Argv, "-qmp") {
		q.qmpPath = filepath.Join(runDir, "qmp.sock")
		q.extra = append(q.extra, "-qmp", "unix:"+q.qmpPath+",server=on,wait=off")
	}
	q.argv = append(append([]string{bin}, c.Argv...), q.extra...)
	q.process = newProcess(exec.Command(q.argv[0], q.argv[1:]...))
	q.cmd.Stdout, q.cmd.Stderr = c.Stdout, c.Stderr
	return q
}

func (q *qemuVM) start(ctx context.Context) error {
	var readers []*os.File
	for range q.p.OEM {
		r, w, err := os.Pipe()
		if err != nil {
			closeAll(readers)
			closeAll(q.writers)
			return fmt.Errorf("pipe: %w", err)
		}
		readers = append(readers, r)
		q.writers = append(q.writers, w)
	}
	q.cmd.ExtraFiles = readers
	err := q.startProcess()
	closeAll(readers) // the child has its copies
	if err != nil {
		closeAll(q.writers)
		return fmt.Errorf("start qemu: %w", err)
	}
	// QEMU reads each path= once at start-up; a pipe holds 64 KiB, so write from goroutines
	// and close each writer so QEMU sees the end of its string.
	for i, w := range q.writers {
		go func() {
			_, _ = w.Write([]byte(q.p.OEM[i]))
			w.Close()
		}()
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
	if q.qmpPath != "" && qmp(q.qmpPath, "system_powerdown") == nil && q.waitExit(timeout) {
		return nil
	}
	return q.terminate(5 * time.Second) // QEMU exits at once on SIGTERM
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
	out := []string{"exec: " + strings.Join(q.argv, " ")}
	for i := range q.p.OEM {
		out = append(out, fmt.Sprintf("  fd %d (pipe) → %s", firstExtraFD+i, q.p.redactedOEM(i)))
	}
	return out
}
