package ack

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// SerialDir is where Linux exposes named virtio-serial ports.
const SerialDir = "/dev/virtio-ports"

// SerialDialer opens a virtio-serial port in the guest. The port is one byte stream shared by
// every run of the agent and every boot of the guest, so exchanges on it resynchronise.
type SerialDialer struct{ Path string }

func (d SerialDialer) Dial(ctx context.Context) (Conn, error) {
	return os.OpenFile(d.Path, os.O_RDWR, 0)
}

func (SerialDialer) Stream() bool { return true }

// SerialFileDialer uses a virtio-serial port that the service manager opened for the agent
// (systemd's OpenFile=, ≥ 253; systemd/guest-agent.service): the sandboxed agent
// (PrivateDevices=yes, DynamicUser=yes) can neither see nor open /dev/virtio-ports/NAME itself.
// Each Dial duplicates the descriptor, so closing a failed exchange's connection keeps the port.
type SerialFileDialer struct {
	File *os.File // kept open for the dialer's lifetime
}

func (d SerialFileDialer) Dial(ctx context.Context) (Conn, error) {
	sc, err := d.File.SyscallConn()
	if err != nil {
		return nil, err
	}
	fd := -1
	var dupErr error
	if err := sc.Control(func(raw uintptr) { fd, dupErr = unix.FcntlInt(raw, unix.F_DUPFD_CLOEXEC, 3) }); err != nil {
		return nil, err
	}
	if dupErr != nil {
		return nil, fmt.Errorf("dup %s: %w", d.File.Name(), dupErr)
	}
	// Non-blocking, so that os.NewFile registers it with the runtime poller and the
	// exchange's deadlines apply (the description is shared; the original is never read).
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("%s: %w", d.File.Name(), err)
	}
	return os.NewFile(uintptr(fd), d.File.Name()), nil
}

func (SerialFileDialer) Stream() bool { return true }

// WaitSerialPort waits until SerialDir/name exists (udev creates the link once the
// virtio-console driver found the port) or ctx ends. It polls: the port appears once per boot.
func WaitSerialPort(ctx context.Context, dir, name string) error {
	if name == "" || name != filepath.Base(name) || name == "." || name == ".." {
		return fmt.Errorf("invalid virtio-serial port name %q", name)
	}
	p := filepath.Join(dir, name)
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		_, err := os.Stat(p)
		if err == nil {
			return nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s did not appear: %w", p, ctx.Err())
		case <-t.C:
		}
	}
}
