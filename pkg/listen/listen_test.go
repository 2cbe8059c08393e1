package listen

import (
	"net"
	"os"
	"testing"

	"github.com/mdlayher/vsock"
)

// fakeListener hands out prepared connections; a plain struct, as the real vsock listener
// cannot be used on a host kernel without vsock loopback.
type fakeListener struct {
	conns chan net.Conn
}

func (f *fakeListener) Accept() (net.Conn, error) {
	c, ok := <-f.conns
	if !ok {
		return nil, net.ErrClosed
	}
	return c, nil
}
func (f *fakeListener) Close() error   { return nil }
func (f *fakeListener) Addr() net.Addr { return &vsock.Addr{ContextID: CIDAny, Port: 5000} }

type fakeConn struct {
	net.Conn
	remote *vsock.Addr
	closed bool
	read   bool
}

func (c *fakeConn) RemoteAddr() net.Addr       { return c.remote }
func (c *fakeConn) Close() error               { c.closed = true; return nil }
func (c *fakeConn) Read(b []byte) (int, error) { c.read = true; return 0, nil }

func TestCIDFilterRefusesOtherVMs(t *testing.T) {
	fl := &fakeListener{conns: make(chan net.Conn, 4)}
	intruder1 := &fakeConn{remote: &vsock.Addr{ContextID: 4, Port: 1}}
	intruder2 := &fakeConn{remote: &vsock.Addr{ContextID: 2, Port: 1}} // the host itself
	ours := &fakeConn{remote: &vsock.Addr{ContextID: 3, Port: 1}}
	fl.conns <- intruder1
	fl.conns <- intruder2
	fl.conns <- ours
	f := &CIDFilter{Listener: fl, CID: 3}
	got, err := f.Accept()
	if err != nil || got != ours {
		t.Fatalf("Accept = %v, %v", got, err)
	}
	if !intruder1.closed || !intruder2.closed || intruder1.read || intruder2.read || f.Refused.Load() != 2 {
		t.Errorf("intruders: closed %v %v, read %v %v, refused %d", intruder1.closed, intruder2.closed, intruder1.read, intruder2.read, f.Refused.Load())
	}
	if f.Port() != 5000 {
		t.Errorf("Port = %d", f.Port())
	}
	close(fl.conns)
	if _, err := f.Accept(); err == nil {
		t.Error("Accept after close succeeded")
	}
}

func TestUnixRefusesNonSocket(t *testing.T) {
	p := t.TempDir() + "/file"
	if err := writeTestFile(p); err != nil {
		t.Fatal(err)
	}
	if _, err := Unix(p); err == nil {
		t.Fatal("Unix replaced a regular file")
	}
	// A stale socket is replaced.
	s := t.TempDir() + "/s"
	l, err := net.Listen("unix", s)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	l2, err := Unix(s)
	if err != nil {
		t.Fatalf("stale socket: %v", err)
	}
	l2.Close()
}

func writeTestFile(p string) error { return os.WriteFile(p, []byte("x"), 0o600) }
