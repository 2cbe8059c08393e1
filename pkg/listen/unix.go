package listen

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
)

// MaxUnixPath is sun_path's size minus the terminating NUL on Linux.
const MaxUnixPath = 107

// ErrPathTooLong is returned for socket paths Linux cannot bind.
var ErrPathTooLong = errors.New("socket path too long")

// Unix listens on a Unix socket at path, replacing a stale socket (never another kind of
// file), with mode 0600 so only the launcher's user can connect. The socket is removed on Close.
func Unix(path string) (*net.UnixListener, error) {
	if len(path) > MaxUnixPath {
		return nil, fmt.Errorf("listen %s: %w: %d bytes, the limit is %d", path, ErrPathTooLong, len(path), MaxUnixPath)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != fs.ModeSocket {
			return nil, fmt.Errorf("listen %s: exists and is not a socket", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, err
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, err
	}
	l.SetUnlinkOnClose(true)
	return l, nil
}

// HybridVsock listens where a cloud-hypervisor or Firecracker guest's connection to
// CID 2, port arrives: the Unix socket "<socket>_<port>" next to the VM's vsock socket. The
// socket path identifies the VM, since hybrid vsock tells the host nothing about the peer.
func HybridVsock(socket string, port uint32) (*net.UnixListener, error) {
	return Unix(fmt.Sprintf("%s_%d", socket, port))
}
