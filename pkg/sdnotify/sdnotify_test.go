package sdnotify

import (
	"errors"
	"maps"
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

func TestParse(t *testing.T) {
	tests := []struct {
		raw  string
		want map[string]string
	}{
		{"READY=1", map[string]string{"READY": "1"}},
		{"READY=1\nSTATUS=a=b", map[string]string{"READY": "1", "STATUS": "a=b"}},
		{"STATUS=one\nSTATUS=two", map[string]string{"STATUS": "two"}},
		{"garbage\n\nREADY=1\n", map[string]string{"READY": "1"}},
		{"", map[string]string{}},
	}
	for _, tt := range tests {
		m := Parse(tt.raw, time.Time{})
		if m.Raw != tt.raw || !maps.Equal(m.Fields, tt.want) {
			t.Errorf("Parse(%q) = %v, want %v", tt.raw, m.Fields, tt.want)
		}
	}
}
