package ack

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Address is where the agent acknowledges, as delivered in the credlink.ack credential:
//
//	vsock:CID:PORT   AF_VSOCK; CID 2 reaches the host (also through cloud-hypervisor's and
//	                 Firecracker's hybrid vsock, where the host listens on SOCKET_PORT)
//	serial:NAME      virtio-serial port /dev/virtio-ports/NAME
//	unix:PATH        Unix socket (local mode and tests)
type Address struct {
	Kind string // KindVsock, KindSerial or KindUnix
	CID  uint32
	Port uint32
	Name string // serial port name
	Path string // unix socket path
}

// Address kinds, the prefix of an address.
const (
	KindVsock  = "vsock"
	KindSerial = "serial"
	KindUnix   = "unix"
)

// HostCID is VMADDR_CID_HOST: the CID a guest connects to to reach the host.
const HostCID = 2

// ErrBadAddress is wrapped by every ParseAddress error.
var ErrBadAddress = errors.New("invalid ack address")

// maxPortName bounds a virtio-serial port name: it becomes /dev/virtio-ports/NAME (NAME_MAX), and
// the guest logs it.
const maxPortName = 255

// maxShownAddress bounds how much of a bad credlink.ack value an error repeats, in bytes.
const maxShownAddress = 128

// ParseAddress parses the credlink.ack value. Surrounding whitespace (a trailing newline from a
// file) is ignored.
func ParseAddress(s string) (Address, error) {
	s = strings.TrimSpace(s)
	kind, rest, ok := strings.Cut(s, ":")
	shown := s // what errors echo: the host's text, cut to a bound
	if len(shown) > maxShownAddress {
		shown = strings.ToValidUTF8(shown[:maxShownAddress], "") + "…"
	}
	if !ok {
		return Address{}, fmt.Errorf("%w: %q has no kind (vsock:, serial:, unix:)", ErrBadAddress, shown)
	}
	switch kind {
	case KindVsock:
		c, p, ok := strings.Cut(rest, ":")
		cid, err1 := strconv.ParseUint(c, 10, 32)
		port, err2 := strconv.ParseUint(p, 10, 32)
		if !ok || err1 != nil || err2 != nil {
			return Address{}, fmt.Errorf("%w: %q, want vsock:CID:PORT", ErrBadAddress, shown)
		}
		return Address{Kind: kind, CID: uint32(cid), Port: uint32(port)}, nil
	case KindSerial:
		if rest == "" || len(rest) > maxPortName || strings.ContainsAny(rest, "/\x00") || rest == "." || rest == ".." {
			return Address{}, fmt.Errorf("%w: %q, want serial:NAME with a plain port name of at most %d bytes", ErrBadAddress, shown, maxPortName)
		}
		return Address{Kind: kind, Name: rest}, nil
	case KindUnix:
		if rest == "" {
			return Address{}, fmt.Errorf("%w: %q, want unix:PATH", ErrBadAddress, shown)
		}
		return Address{Kind: kind, Path: rest}, nil
	default:
		k, _, _ := strings.Cut(shown, ":")
		return Address{}, fmt.Errorf("%w: unknown kind %q", ErrBadAddress, k)
	}
}

func (a Address) String() string {
	switch a.Kind {
	case KindVsock:
		return fmt.Sprintf("%s:%d:%d", KindVsock, a.CID, a.Port)
	case KindSerial:
		return KindSerial + ":" + a.Name
	default:
		return KindUnix + ":" + a.Path
	}
}

// Dialer returns the guest-side dialer for the address.
func (a Address) Dialer() Dialer {
	switch a.Kind {
	case KindVsock:
		return VsockDialer{CID: a.CID, Port: a.Port}
	case KindSerial:
		return SerialDialer{Path: SerialDir + "/" + a.Name}
	default:
		return UnixDialer{Path: a.Path}
	}
}
