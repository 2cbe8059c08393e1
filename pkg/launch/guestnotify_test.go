package launch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/credlink/credlink/pkg/logging"
	"github.com/credlink/credlink/pkg/sdnotify"
)

// The host must read each notification to EOF and close at once: a slow close stalls the
// guest's boot.
func TestServeGuestNotify(t *testing.T) {
	dir := shortTempDir(t)
	l, err := net.Listen("unix", filepath.Join(dir, "n.sock"))
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan guestMessage, 4)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go serveGuestNotify(ctx, l, out, &logging.Limiter{})

	c, err := net.Dial("unix", filepath.Join(dir, "n.sock"))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	c.Write([]byte("READY=1\nSTATUS=Startup finished in 3s"))
	c.(*net.UnixConn).CloseWrite()
	io.ReadAll(c) // like PID 1: wait for the host to close
	if d := time.Since(start); d > 200*time.Millisecond {
		t.Errorf("host closed after %v", d)
	}
	select {
	case m := <-out:
		if m.Fields["READY"] != "1" || m.Fields["STATUS"] != "Startup finished in 3s" {
			t.Errorf("message %+v", m.Fields)
		}
	case <-time.After(time.Second):
		t.Fatal("no message")
	}

	// A peer that never half-closes is cut off at the deadline.
	c2, _ := net.Dial("unix", filepath.Join(dir, "n.sock"))
	c2.Write([]byte("READY=1"))
	start = time.Now()
	io.ReadAll(c2)
	if d := time.Since(start); d < guestNotifyDeadline-100*time.Millisecond || d > guestNotifyDeadline+time.Second {
		t.Errorf("silent peer closed after %v", d)
	}
}

func TestWaitGuestBootNeedsVsock(t *testing.T) {
	e := newEnv(t)
	c := e.local()
	c.WaitGuestBoot = true
	_, err := c.Run(context.Background(), nil)
	if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "--wait-guest-boot needs a vsock channel to the guest") {
		t.Errorf("err = %v", err)
	}
	e.assertClean()
}

// With --wait-guest-boot on cloud-hypervisor, READY=1 waits for the guest systemd's own
// READY=1 (sent by the fake's guest over hybrid vsock), and a guest that never sends it fails.
func TestCloudHypervisorWaitGuestBoot(t *testing.T) {
	for _, tt := range []struct {
		name, after string
		ready       bool
	}{{"guest reports", "1500ms", true}, {"guest silent", "", false}} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			t.Setenv("CREDLINK_FAKE", "cloud-hypervisor")
			t.Setenv("FAKE_CH_AGENT", agentBin)
			t.Setenv("FAKE_CH_MANIFEST", filepath.Join(e.dir, "manifest.json"))
			t.Setenv("FAKE_CH_GUEST_READY_AFTER", tt.after)
			c := chConfig(e, vmConfig)
			c.WaitGuestBoot, c.AckTimeout = true, 4*time.Second
			ctx, cancel := context.WithCancel(context.Background())
			start := time.Now()
			out, err := c.Run(ctx, func(Outcome) { cancel() })
			if tt.ready {
				if err != nil || !out.Ready || !out.GuestBootWaited {
					t.Fatalf("Run: %v %+v\n%s", err, out, e.logs.String())
				}
				if d := out.ReadyAt.Sub(start); d < 1500*time.Millisecond {
					t.Errorf("READY=1 after %v, before the guest's own READY=1", d)
				}
				if _, err := e.notify.Wait(time.Second, sdnotify.Has("STATUS", "Acknowledged; waiting for the guest's systemd to report READY=1")); err != nil {
					t.Error("no intermediate STATUS")
				}
				if !strings.Contains(e.logs.String(), "guest systemd reported READY=1") {
					t.Errorf("log:\n%s", e.logs.String())
				}
				// The fake PID 1 measured how long the host kept its connection open.
				m, _ := e.logs.WaitFor(5*time.Second, regexp.MustCompile(`host closed after (\S+)`))
				if m == nil {
					t.Errorf("the guest's notification was not answered:\n%s", e.logs.String())
				} else if d, _ := time.ParseDuration(m[1]); d > 200*time.Millisecond {
					t.Errorf("host kept the guest's notification open for %v", d)
				}
			} else {
				if !errors.Is(err, ErrNotDelivered) || !strings.Contains(err.Error(), "guest systemd did not report READY=1 within 4s") {
					t.Fatalf("err = %v", err)
				}
			}
			e.assertClean()
		})
	}
}

// systemd 254's STATUS flood while a start job waits: two lines a second that differ only in
// their counters must cost the host's journal one line, then one summary a minute.
func TestStatusLogFlood(t *testing.T) {
	var s statusLog
	t0 := time.Unix(1000, 0)
	logged := 0
	for i := 0; i < 240; i++ { // 2 min at 2/s
		d := (time.Duration(i) * 500 * time.Millisecond).Truncate(time.Second)
		el := fmt.Sprintf("%ds", int(d.Seconds())) // systemd's format: 59s, 1min, 1min 1s
		if d >= time.Minute {
			el = fmt.Sprintf("%dmin", int(d.Minutes()))
			if sec := int(d.Seconds()) % 60; sec > 0 {
				el += fmt.Sprintf(" %ds", sec)
			}
		}
		if _, ok := s.observe("User job nested-never-ready.service/start running ("+el+" / no limit)...", t0.Add(time.Duration(i)*500*time.Millisecond)); ok {
			logged++
		}
	}
	if logged < 2 || logged > 3 {
		t.Errorf("logged %d lines for a 2-minute flood, want 2–3", logged)
	}
	if s.total != 240-logged {
		t.Errorf("counted %d repeats, want %d", s.total, 240-logged)
	}
	// A different status is logged at once, with the repeats it ends.
	repeats, ok := s.observe("Startup finished in 41.2s", t0.Add(121*time.Second))
	if !ok || repeats == 0 {
		t.Errorf("change: %d %v", repeats, ok)
	}
}

// TestGuestNotifyHoldersDoNotStarvePID1: any guest process can connect to the notify port on
// cloud-hypervisor's hybrid vsock. Holders of every slot — silent, or having sent a byte — are
// evicted oldest first (silent ones before the others), so PID 1's READY=1 still arrives, well
// within one holder's deadline; silent holders are dropped after guestNotifyFirstByte.
func TestGuestNotifyHoldersDoNotStarvePID1(t *testing.T) {
	for _, tc := range []struct {
		name  string
		first string // what each holder sends before idling
	}{
		{"silent holders", ""},
		{"holders that sent a byte", "X"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := shortTempDir(t)
			path := filepath.Join(dir, "n.sock")
			l, err := net.Listen("unix", path)
			if err != nil {
				t.Fatal(err)
			}
			out := make(chan guestMessage, guestNotifyConns+1)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go serveGuestNotify(ctx, l, out, &logging.Limiter{})
			var held []net.Conn
			defer func() {
				for _, c := range held {
					c.Close()
				}
			}()
			for range guestNotifyConns {
				c, err := net.Dial("unix", path)
				if err != nil {
					t.Fatal(err)
				}
				c.Write([]byte(tc.first))
				held = append(held, c)
			}
			// Every holder has been accepted once the server has closed a later probe (read or
			// refused): it accepts in order.
			probe, _ := net.Dial("unix", path)
			probe.Write([]byte("STATUS=probe"))
			probe.(*net.UnixConn).CloseWrite()
			probe.SetReadDeadline(time.Now().Add(guestNotifyDeadline))
			if _, err := io.ReadAll(probe); err != nil && !errors.Is(err, syscall.ECONNRESET) {
				t.Fatal(err)
			}
			select { // the probe's own message, if it was read
			case <-out:
			default:
			}
			start := time.Now()
			c, err := net.Dial("unix", path)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.Write([]byte("READY=1\n"))
			c.(*net.UnixConn).CloseWrite()
			// Evicted holders' bytes may arrive too (as after a deadline): wait for READY=1.
			timeout := time.After(guestNotifyDeadline - guestNotifyFirstByte)
			for ready := false; !ready; {
				select {
				case m := <-out:
					ready = m.Fields["READY"] == "1"
				case <-timeout:
					t.Fatalf("PID 1's READY=1 not read within %v: the holders starve it", time.Since(start))
				}
			}
			if tc.first == "" { // silent holders are gone after the first-byte deadline
				c := held[len(held)-1]
				c.SetReadDeadline(time.Now().Add(guestNotifyDeadline))
				if _, err := c.Read(make([]byte, 1)); err != io.EOF {
					t.Errorf("silent holder: %v, want closed after %v", err, guestNotifyFirstByte)
				}
			}
		})
	}
}
