package sdnotify

import (
	"errors"
	"testing"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

// The go-systemd sender and this receiver agree on a real unixgram socket.
func TestWithGoSystemd(t *testing.T) {
	l, err := Listen(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	t.Setenv("NOTIFY_SOCKET", l.Path)
	if sent, err := daemon.SdNotify(false, "READY=1\nSTATUS=5/5 credentials verified"); !sent || err != nil {
		t.Fatalf("SdNotify: %v %v", sent, err)
	}
	m, err := l.Wait(time.Second, Has("READY", "1"))
	if err != nil || m.Fields["STATUS"] != "5/5 credentials verified" {
		t.Fatalf("%+v %v", m, err)
	}
	if _, err := l.Wait(50*time.Millisecond, Has("STOPPING", "1")); !errors.Is(err, ErrTimeout) {
		t.Errorf("Wait for an absent message: %v", err)
	}
}
