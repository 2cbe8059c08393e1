package launch

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/credlink/credlink/pkg/chconfig"
	"github.com/credlink/credlink/pkg/credential"
)

// chSource is the cloud-hypervisor VM as the operator described it: a --vm-config file, or
// cloud-hypervisor's own command line after -- (translated by package chconfig).
type chSource struct {
	config    map[string]any // vm.create body, before our OEM strings and vsock device
	addNets   []chAddNet     // --net fd=[…]: vm.add-net with the descriptors, before vm.boot
	vmmArgs   []string       // options for the cloud-hypervisor process itself
	tty       bool           // --serial tty or --console tty: the VMM uses our stdin/stdout
	apiSocket string         // the command line's --api-socket: where the filtered API listens
	// notify: the command line's OEM strings had a vmm.notify_socket, which host-launcher
	// serves itself, so READY=1 waits for the acknowledgement and the guest's own READY=1.
	notify bool
}

// chAddNet is one network device whose tap descriptors host-launcher inherited (microvm.nix's
// macvtap fds): vm.create cannot carry descriptors (cloud-hypervisor's VmCreate handler sets
// them to -1), vm.add-net takes them over SCM_RIGHTS.
type chAddNet struct {
	body map[string]any // NetConfig without "fds"
	fds  []int
}

// setArgv takes cloud-hypervisor's own command line (implements argvTaker).
func (h *CloudHypervisor) setArgv(argv []string) { h.argv = argv }

// source reads --vm-config or translates the argv after --.
func (h *CloudHypervisor) source() (*chSource, error) {
	if len(h.argv) == 0 {
		cfg, err := loadVMConfig(h.VMConfig)
		return &chSource{config: cfg}, err
	}
	if h.VMConfig != "" {
		return nil, configErr("cloud-hypervisor: give either --vm-config or cloud-hypervisor's arguments after --, not both")
	}
	if err := checkCHArgvCredentials(h.argv); err != nil {
		return nil, err
	}
	tr, err := chconfig.Translate(h.argv)
	if err != nil {
		return nil, configErr("cloud-hypervisor arguments: %v", err)
	}
	if tr.Config.Payload == nil {
		return nil, configErr("cloud-hypervisor arguments: --kernel or --firmware is required (vm.create needs a payload)")
	}
	src := &chSource{vmmArgs: tr.VMMArgs, apiSocket: tr.APISocket, notify: tr.NotifySocket != "",
		tty: tr.Config.Serial.Mode == "Tty" || tr.Config.Console.Mode == "Tty"}
	hasFDs := false
	for _, n := range tr.Config.Net {
		hasFDs = hasFDs || n.FDs != nil
	}
	if hasFDs {
		// Every net goes through vm.add-net, in the given order, so the guest sees the devices
		// in the order of the command line.
		nets := tr.Config.Net
		tr.Config.Net = nil
		for i, n := range nets {
			for _, fd := range n.FDs {
				if err := checkTapFD(fd); err != nil {
					return nil, configErr("cloud-hypervisor arguments: --net #%d fd=%d: %v; whoever execs host-launcher must open the tap device on that descriptor, as microvm-run does for macvtap (exec %d<>/dev/tapN)", i+1, fd, err, fd)
				}
				// Sent explicitly over SCM_RIGHTS; no stray copy for the child.
				unix.CloseOnExec(fd)
			}
			fds := n.FDs
			n.FDs = nil
			body, err := toJSONMap(n)
			if err != nil {
				return nil, err
			}
			src.addNets = append(src.addNets, chAddNet{body: body, fds: fds})
		}
	}
	if src.config, err = toJSONMap(tr.Config); err != nil {
		return nil, err
	}
	return src, nil
}

// checkCHArgvCredentials refuses a credential anywhere in cloud-hypervisor's command line,
// whatever the quoting or position inside an option (oem_strings=["io.systemd.credential:…"],
// a list element, --cmdline's systemd.set_credential=): all of it is in the process's argv,
// readable in /proc by every local user. The one credential string allowed is
// vmm.notify_socket, whose address host-launcher serves itself. The message names the argument,
// never its text.
func checkCHArgvCredentials(argv []string) error {
	for i, a := range argv {
		rest := strings.ReplaceAll(a, chconfig.NotifySocketPrefix, "")
		if strings.Contains(rest, credential.PrefixText[:len(credential.PrefixText)-1]) {
			return configErr("cloud-hypervisor argument %d has a systemd credential (io.systemd.credential…), readable in /proc by every local user: give it to host-launcher with --credential (secret) or --set (plain value) instead", i+1)
		}
		if kernelCredential(a) {
			return kernelCredentialErr(fmt.Sprintf("cloud-hypervisor argument %d", i+1))
		}
	}
	return nil
}

// checkTapFD accepts an inherited descriptor that can be a tap queue: open and a character
// device (/dev/tapN for macvtap, /dev/net/tun). The type check matters: the Go runtime's own
// descriptors (epoll, eventfd, pipes, sockets) take the lowest free numbers, so a number the
// caller forgot to open is usually open anyway, as something host-launcher must never send.
func checkTapFD(fd int) error {
	if fd <= 2 {
		return fmt.Errorf("standard input, output and error are not tap devices")
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("not an open descriptor of host-launcher (%v)", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFCHR {
		return fmt.Errorf("not a character device (a tap device): it was not inherited from the caller")
	}
	return nil
}

// toJSONMap re-reads v as generic JSON with numbers kept exact, the form the --vm-config path
// and the merging code use.
func toJSONMap(v any) (map[string]any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var m map[string]any
	return m, d.Decode(&m)
}

// callWithFDs is call with descriptors attached to the request as SCM_RIGHTS, the way ch-remote
// sends them: one sendmsg carrying the whole request and the rights.
func (ch *chVM) callWithFDs(ctx context.Context, method, endpoint string, body any, fds []int) ([]byte, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	conn, err := (&net.Dialer{}).DialContext(ctx, "unix", ch.api)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	uc := conn.(*net.UnixConn)
	if dl, ok := ctx.Deadline(); ok {
		_ = uc.SetDeadline(dl)
	}
	msg := append([]byte(fmt.Sprintf("%s /api/v1/%s HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n", method, endpoint, len(b))), b...)
	if err := sendWithRights(uc, msg, fds); err != nil {
		return nil, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(uc), nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return ch.answer(method, endpoint, resp)
}

// answer reads a response: the body of a 2xx, else an APIError whose body is bounded and has
// every OEM string redacted.
func (ch *chVM) answer(method, endpoint string, resp *http.Response) ([]byte, error) {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 == 2 {
		return b, nil
	}
	for _, s := range ch.oem { // belt and braces: an error body must not echo a string
		b = bytes.ReplaceAll(b, []byte(s), []byte("[redacted]"))
	}
	msg := string(b)
	if len(msg) > 200 {
		msg = msg[:200] + "…"
	}
	return nil, &APIError{Method: method, Path: endpoint, Status: resp.StatusCode, Body: msg}
}

// unixStreamWriter is the part of *net.UnixConn that sendWithRights uses.
type unixStreamWriter interface {
	WriteMsgUnix(b, oob []byte, addr *net.UnixAddr) (n, oobn int, err error)
	Write(b []byte) (int, error)
}

// sendWithRights writes msg with fds attached to its first bytes (no control message when fds
// is empty), then whatever rest a short sendmsg left. Errors are the socket's, unwrapped.
func sendWithRights(c unixStreamWriter, msg []byte, fds []int) error {
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	n, _, err := c.WriteMsgUnix(msg, oob, nil)
	if err != nil {
		return err
	}
	// Write only a rest that exists: a zero-length write(2) is not a no-op on a Unix stream
	// socket. Once cloud-hypervisor has read the whole request, answered and closed the
	// connection (Connection: close), the kernel has marked our end shut down and even an empty
	// write fails with EPIPE (linux net/unix/af_unix.c unix_stream_sendmsg tests SEND_SHUTDOWN
	// before looking at the length), turning a successful vm.add-net into an error.
	for n < len(msg) {
		m, err := c.Write(msg[n:])
		if err != nil {
			return err
		}
		n += m
	}
	return nil
}
