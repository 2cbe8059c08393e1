package launch

import (
	"context"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"net"
	"path/filepath"

	"github.com/credlink/credlink/pkg/ack"
	"github.com/credlink/credlink/pkg/listen"
)

// channel is the host end of one launch's acknowledgement channel. Each hypervisor opens its
// own in open, with the constructors below or its own; the launcher serves it, puts addr (and
// notifyAddr) into the control credentials and closes it, without knowing what it is.
type channel struct {
	addr     ack.Address // delivered to the guest as credlink.ack
	kind     string      // for plans and logs: "unix", "vsock", "virtio-serial", "hybrid-vsock"
	listener net.Listener
	stream   bool // a byte stream without connections (virtio-serial): ServeStreamListener

	// notify receives the guest systemd's own notifications (--wait-guest-boot); notifyAddr is
	// what vmm.notify_socket tells the guest. nil when the channel cannot carry them.
	notify     net.Listener
	notifyAddr string
}

// unixChannel listens on a Unix socket the guest (a local process) connects to.
func unixChannel(path string) (*channel, error) {
	l, err := listen.Unix(path)
	if err != nil {
		return nil, err
	}
	return &channel{addr: ack.Address{Kind: ack.KindUnix, Path: path}, kind: "unix", listener: l}, nil
}

// vsockChannel listens on AF_VSOCK for the guest with this CID (vhost-vsock: the host is CID 2
// to the guest). With notify, a second port receives the guest systemd's notifications.
func vsockChannel(cid uint32, notify bool) (*channel, error) {
	l, err := listen.Vsock(cid, listen.PortAny)
	if err != nil {
		return nil, fmt.Errorf("vsock listener: %w", err)
	}
	ch := &channel{addr: ack.Address{Kind: ack.KindVsock, CID: ack.HostCID, Port: l.Port()}, kind: "vsock", listener: l}
	if notify {
		n, err := listen.Vsock(cid, listen.PortAny)
		if err != nil {
			l.Close()
			return nil, fmt.Errorf("guest notify listener: %w", err)
		}
		ch.notify, ch.notifyAddr = n, fmt.Sprintf("vsock-stream:%d:%d", ack.HostCID, n.Port())
	}
	return ch, nil
}

// hybridVsockChannel listens the way cloud-hypervisor's (and Firecracker's) hybrid vsock
// delivers a guest's connect(CID 2, port): on the Unix socket "<socket>_<port>". The port only
// has to be unique per VM, which the per-VM socket already is. With notify, port+1 receives the
// guest systemd's notifications.
func hybridVsockChannel(socket string, notify bool) (*channel, error) {
	port := uint32(1024 + rand.IntN(60000)) // at most 61023, so port+1 fits
	for port == microvmNotifyPort || port+1 == microvmNotifyPort {
		port = uint32(1024 + rand.IntN(60000))
	}
	l, err := listen.HybridVsock(socket, port)
	if err != nil {
		return nil, err
	}
	ch := &channel{addr: ack.Address{Kind: ack.KindVsock, CID: ack.HostCID, Port: port}, kind: "hybrid-vsock", listener: l}
	if notify {
		n, err := listen.HybridVsock(socket, port+1)
		if err != nil {
			l.Close()
			return nil, fmt.Errorf("guest notify listener: %w", err)
		}
		ch.notify, ch.notifyAddr = n, fmt.Sprintf("vsock-stream:%d:%d", ack.HostCID, port+1)
	}
	return ch, nil
}

// microvmNotifyPort is where microvm.nix's runner relays vmm.notify_socket with socat
// ("<vsock socket>_8888", lib/runners/cloud-hypervisor.nix): host-launcher serves the
// notification itself on another port and must not collide with that leftover listener.
const microvmNotifyPort = 8888

// runtimePath is a file in the launch's private runtime directory.
func runtimePath(s Spec, name string) string { return filepath.Join(s.RuntimeDir, name) }

// DeriveCID maps a VM name to a guest CID in [3, 2^31): stable per name, so a restarted VM
// keeps its CID. Operators with many VMs should set --guest-cid explicitly.
func DeriveCID(vm string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(vm))
	return 3 + h.Sum32()%(1<<31-3)
}

func (t *channel) serve(ctx context.Context, srv *ack.Server) error {
	if t.stream {
		return srv.ServeStreamListener(ctx, t.listener)
	}
	return srv.Serve(ctx, t.listener)
}

func (t *channel) close() {
	t.listener.Close()
	if t.notify != nil {
		t.notify.Close()
	}
}
