package launch

import (
	"context"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"

	"github.com/credlink/credlink/pkg/ack"
)

// transport is the host end of the acknowledgement channel for one launch.
type transport struct {
	addr     ack.Address // delivered to the guest as credlink.ack
	kind     string      // for logs: "unix", "vsock", "virtio-serial", "hybrid-vsock"
	listener net.Listener
	stream   bool           // serve with ServeStreamListener
	qemuArgs []string       // devices QEMU needs for it
	chVsock  *chVsock       // cloud-hypervisor vsock device
	chConfig map[string]any // cloud-hypervisor VmConfig from --vm-config
	cid      uint32         // guest CID of a vhost-vsock transport

	// notify receives the guest systemd's own notifications (--wait-guest-boot); notifyAddr is
	// what vmm.notify_socket tells the guest.
	notify     net.Listener
	notifyAddr string
}

// setupGuestNotify adds the listener for vmm.notify_socket. systemd sends it over AF_VSOCK, so
// it needs a vsock transport (vhost-vsock with qemu, hybrid vsock with cloud-hypervisor).
func (c *Config) setupGuestNotify(t *transport) error {
	switch t.kind {
	case "vsock":
		l, err := ack.ListenVsock(t.cid, ack.PortAny)
		if err != nil {
			return fmt.Errorf("guest notify listener: %w", err)
		}
		t.notify, t.notifyAddr = l, fmt.Sprintf("vsock-stream:2:%d", l.Port())
	case "hybrid-vsock":
		port := t.addr.Port + 1 // the ack port is at most 61023, see setupTransport
		l, err := ack.ListenHybridVsock(t.chVsock.Socket, port)
		if err != nil {
			return fmt.Errorf("guest notify listener: %w", err)
		}
		t.notify, t.notifyAddr = l, fmt.Sprintf("vsock-stream:2:%d", port)
	default:
		return configErr("--wait-guest-boot needs a vsock channel to the guest (systemd sends vmm.notify_socket over AF_VSOCK): qemu with /dev/vhost-vsock (--ack-via vsock) or cloud-hypervisor; this launch uses %s", t.kind)
	}
	return nil
}

type chVsock struct {
	CID    uint32
	Socket string
}

// DeriveCID maps a VM name to a guest CID in [3, 2^31): stable per name, so a restarted VM
// keeps its CID. Operators with many VMs should set --guest-cid explicitly.
func DeriveCID(vm string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(vm))
	return 3 + h.Sum32()%(1<<31-3)
}

func (c *Config) setupTransport(runDir string) (*transport, error) {
	switch c.Hypervisor {
	case Local:
		p := filepath.Join(runDir, "ack.sock")
		l, err := ack.ListenUnix(p)
		if err != nil {
			return nil, err
		}
		return &transport{addr: ack.Address{Kind: "unix", Path: p}, kind: "unix", listener: l}, nil
	case CloudHypervisor:
		cfg, err := loadVMConfig(c.VMConfigPath)
		if err != nil {
			return nil, err
		}
		vs, err := configVsock(cfg)
		if err != nil {
			return nil, err
		}
		if vs == nil {
			cid := c.GuestCID
			if cid == 0 {
				cid = DeriveCID(c.VM)
			}
			vs = &chVsock{CID: cid, Socket: filepath.Join(runDir, "vsock.sock")}
		}
		// Hybrid vsock: the guest's connect(CID 2, port) arrives on "<socket>_<port>", so the
		// port only has to be unique per VM, which the per-VM socket already is.
		port := uint32(1024 + rand.IntN(60000))
		l, err := ack.ListenHybridVsock(vs.Socket, port)
		if err != nil {
			return nil, err
		}
		return &transport{addr: ack.Address{Kind: "vsock", CID: 2, Port: port}, kind: "hybrid-vsock", listener: l,
			chVsock: vs, chConfig: cfg}, nil
	}
	// qemu
	cid, inArgv := argvVsockCID(c.Argv)
	useVsock := inArgv || c.AckVia == "vsock"
	if c.AckVia == "" || c.AckVia == "auto" {
		_, err := os.Stat("/dev/vhost-vsock")
		useVsock = inArgv || err == nil
	}
	if c.AckVia != "" && c.AckVia != "auto" && c.AckVia != "vsock" && c.AckVia != "serial" {
		return nil, configErr("--ack-via must be auto, vsock or serial, not %q", c.AckVia)
	}
	if useVsock {
		if !inArgv {
			cid = c.GuestCID
			if cid == 0 {
				cid = DeriveCID(c.VM)
			}
		}
		l, err := ack.ListenVsock(cid, ack.PortAny)
		if err != nil {
			return nil, fmt.Errorf("vsock listener: %w", err)
		}
		t := &transport{addr: ack.Address{Kind: "vsock", CID: 2, Port: l.Port()}, kind: "vsock", listener: l, cid: cid}
		if !inArgv {
			t.qemuArgs = []string{"-device", fmt.Sprintf("vhost-vsock-pci,guest-cid=%d", cid)}
		}
		return t, nil
	}
	p := filepath.Join(runDir, "serial.sock")
	l, err := ack.ListenUnix(p)
	if err != nil {
		return nil, err
	}
	return &transport{addr: ack.Address{Kind: "serial", Name: SerialPortName}, kind: "virtio-serial", listener: l, stream: true,
		qemuArgs: []string{
			"-device", "virtio-serial-pci,id=credlink-vser",
			"-chardev", "socket,id=credlink-ack,path=" + p,
			"-device", "virtserialport,bus=credlink-vser.0,chardev=credlink-ack,name=" + SerialPortName,
		}}, nil
}

func (t *transport) serve(ctx context.Context, srv *ack.Server) error {
	if t.stream {
		return srv.ServeStreamListener(ctx, t.listener)
	}
	return srv.Serve(ctx, t.listener)
}

func (t *transport) close() {
	t.listener.Close()
	if t.notify != nil {
		t.notify.Close()
	}
}
