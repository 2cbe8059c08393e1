package listen

import (
	"net"
	"sync/atomic"

	"github.com/mdlayher/vsock"
)

// CIDAny and PortAny are the kernel's wildcards (VMADDR_CID_ANY, VMADDR_PORT_ANY).
const (
	CIDAny  = 0xFFFFFFFF
	PortAny = 0xFFFFFFFF
)

// Vsock listens on the host on every CID (VMADDR_CID_ANY) and the given port, or a port
// the kernel picks when port is PortAny, so many VMs on one host never collide. Connections from
// any CID other than guestCID are closed before a byte is read.
func Vsock(guestCID, port uint32) (*CIDFilter, error) {
	l, err := vsock.ListenContextID(CIDAny, port, nil)
	if err != nil {
		return nil, err
	}
	return &CIDFilter{Listener: l, CID: guestCID}, nil
}

// CIDFilter passes on only connections from one vsock CID: any VM can connect to any host vsock
// port, so the peer must be checked before the MAC is even looked at.
type CIDFilter struct {
	net.Listener
	CID     uint32
	Refused atomic.Int64 // connections closed because they came from another CID
	// OnRefuse, if set, is called (from Accept's goroutine) with each refused peer, after its
	// connection was closed unread. It must not block; a peer can connect in a loop.
	OnRefuse func(peer net.Addr)
}

func (f *CIDFilter) Accept() (net.Conn, error) {
	for {
		c, err := f.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if a, ok := c.RemoteAddr().(*vsock.Addr); ok && a.ContextID == f.CID {
			return c, nil
		}
		f.Refused.Add(1)
		peer := c.RemoteAddr()
		c.Close()
		if f.OnRefuse != nil {
			f.OnRefuse(peer)
		}
	}
}

// Port returns the port the listener is bound to.
func (f *CIDFilter) Port() uint32 {
	if a, ok := f.Addr().(*vsock.Addr); ok {
		return a.Port
	}
	return 0
}
