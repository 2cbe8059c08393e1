package ack

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The descriptor PID 1 passes (OpenFile=) outlives every exchange: each Dial is a duplicate, a
// closed exchange leaves the port usable, and deadlines apply to the duplicate.
func TestSerialFileDialer(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	port := os.NewFile(uintptr(fds[0]), "credlink.0") // what the agent got from the service manager
	host := os.NewFile(uintptr(fds[1]), "host")
	defer port.Close()
	defer host.Close()
	d := SerialFileDialer{File: port}
	for i := 0; i < 2; i++ {
		c, err := d.Dial(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write([]byte("x")); err != nil {
			t.Fatalf("exchange %d: write: %v", i, err)
		}
		b := make([]byte, 1)
		if _, err := host.Read(b); err != nil || b[0] != 'x' {
			t.Fatalf("exchange %d: host read %q %v", i, b, err)
		}
		c.SetDeadline(time.Now().Add(50 * time.Millisecond))
		start := time.Now()
		if _, err := c.Read(b); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("exchange %d: read with nothing to read: %v, want a deadline error", i, err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("deadline ignored: read returned after %v", d)
		}
		c.Close()
	}
}

func TestWaitSerialPort(t *testing.T) {
	dir := t.TempDir()
	go func() {
		time.Sleep(100 * time.Millisecond)
		os.WriteFile(filepath.Join(dir, "credlink.0"), nil, 0o600)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := WaitSerialPort(ctx, dir, "credlink.0"); err != nil {
		t.Fatalf("port appeared but: %v", err)
	}
	short, cancel2 := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel2()
	if err := WaitSerialPort(short, dir, "other.0"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("absent port: %v", err)
	}
	for _, bad := range []string{"", ".", "..", "../credlink.0", "a/b"} {
		if err := WaitSerialPort(ctx, dir, bad); err == nil {
			t.Errorf("name %q accepted", bad)
		}
	}
}
