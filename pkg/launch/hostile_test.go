package launch

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/credlink/credlink/pkg/ack"
	"github.com/credlink/credlink/pkg/credential"
	"github.com/credlink/credlink/pkg/logging"
	"github.com/credlink/credlink/pkg/sdnotify"
	"github.com/credlink/credlink/pkg/sources"
	"github.com/credlink/credlink/pkg/testkit"
)

// smuggle is what a key holder in the guest would like the host's service manager to read.
const smuggle = "\nREADY=1\nMAINPID=1"

func init() {
	// The test binary doubles as a hostile guest-agent that holds credlink.key (guest root, a
	// compromised agent): it reads the generated firmware table like the real agent and sends
	// an authentic report whose strings try to add fields to the host's notification.
	if os.Getenv("CREDLINK_FAKE") == "agent-hostile" {
		hostileAgent()
		os.Exit(0)
	}
}

func hostileAgent() {
	sysfs := ""
	for i, a := range os.Args {
		if a == "--sysfs" && i+1 < len(os.Args) {
			sysfs = os.Args[i+1]
		}
	}
	set, err := sources.SMBIOS{Sysfs: sysfs, Systemd: credential.SystemdLatest}.Read()
	if err != nil {
		fmt.Fprintln(os.Stderr, "hostile agent:", err)
		os.Exit(1)
	}
	addrC, _ := set.Get(credential.AckCredential)
	keyC, _ := set.Get(credential.KeyCredential)
	addr, err := ack.ParseAddress(string(addrC.Value.Bytes()))
	if err != nil {
		fmt.Fprintln(os.Stderr, "hostile agent:", err)
		os.Exit(1)
	}
	key := keyC.Value.Bytes()
	r := ack.Report{BootID: "boot-1", Agent: "hostile", OK: false}
	for _, c := range set.All() {
		if credential.IsControl(c.Name) {
			continue
		}
		r.Credentials = append(r.Credentials, ack.CredentialReport{Name: c.Name, Bytes: c.Value.Len(),
			Status: credential.Status("wrong_length" + smuggle), MAC: ack.CredentialMAC(key, c.Name, c.Value.Bytes())})
	}
	r.Credentials = append(r.Credentials, ack.CredentialReport{Name: "NEVER_SENT" + smuggle, Status: credential.StatusMissing})
	cl := &ack.Client{Key: key, Dialer: addr.Dialer(), Timeout: 5 * time.Second}
	_, err = cl.Exchange(context.Background(), r)
	fmt.Fprintln(os.Stderr, "hostile agent: exchange:", err)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM)
	<-sig
}

// TestHostileGuestTextNeverReachesNotify: an authentic report from a key holder whose status
// and credential names carry newlines must not set a single field on the host's notify socket
// (systemd splits datagrams at newlines: READY=1, MAINPID= of a root service), nor start a log
// line of its own.
func TestHostileGuestTextNeverReachesNotify(t *testing.T) {
	e := newEnv(t)
	c := e.config(&Local{Agent: testBin})
	t.Setenv("CREDLINK_FAKE", "agent-hostile")
	out, err := c.Run(context.Background(), nil)
	if err == nil || out.Ready {
		t.Fatalf("hostile report accepted: %+v %v", out, err)
	}
	allowed := map[string]bool{"STATUS": true, "STOPPING": true, "READY": true}
	sawFailure := false
	for _, m := range e.notify.Messages() {
		for k, v := range m.Fields {
			if !allowed[k] {
				t.Errorf("notification set %s=%s: %q", k, v, m.Raw)
			}
		}
		if m.Fields["READY"] == "1" {
			t.Errorf("READY=1 after a hostile report: %q", m.Raw)
		}
		if strings.Contains(m.Raw, "MAINPID") {
			t.Errorf("guest text in a notification: %q", m.Raw)
		}
		if strings.HasPrefix(m.Fields["STATUS"], "Failed") {
			sawFailure = true
		}
	}
	if !sawFailure {
		t.Errorf("no failure status among %q", e.statuses())
	}
	for _, line := range strings.Split(e.logs.String(), "\n") {
		if strings.HasPrefix(line, "READY=") || strings.HasPrefix(line, "MAINPID=") {
			t.Errorf("guest text starts a log line: %q", line)
		}
	}
	t.Logf("reasons: %q", out.Reasons)
}

// TestUnauthenticatedAckFloodLogsBounded: 2,000 bogus exchanges on the ack channel during a
// launch (no key: junk hellos, reports without a challenge, hellos that prove nothing) write a
// handful of log lines, not 2,000, and the launch goes on.
func TestUnauthenticatedAckFloodLogsBounded(t *testing.T) {
	e := newEnv(t)
	c := e.config(&Local{Agent: testBin})
	t.Setenv("CREDLINK_FAKE", "agent-sleep")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := c.Run(ctx, nil); done <- err }()
	var sock string
	for deadline := time.Now().Add(10 * time.Second); sock == "" && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if m, _ := filepath.Glob(filepath.Join(e.dir, "credlink-vm1-*", "ack.sock")); len(m) > 0 {
			sock = m[0]
		}
	}
	if sock == "" {
		t.Fatal("no ack socket")
	}
	junk := []func(c net.Conn){
		func(c net.Conn) { ack.WriteFrame(c, ack.TypeHello, []byte("not json")) },
		func(c net.Conn) { ack.WriteFrame(c, ack.TypeReport, make([]byte, 64)) },
		func(c net.Conn) {
			ack.WriteFrame(c, ack.TypeHello, []byte(`{"nonce":"AAAAAAAAAAAAAAAAAAAAAA==","boot_id":"b","mac":"AAAA"}`))
		},
	}
	for i := range 2000 {
		conn, err := net.Dial("unix", sock)
		if err != nil {
			continue
		}
		junk[i%len(junk)](conn)
		conn.SetReadDeadline(time.Now().Add(time.Second))
		conn.Read(make([]byte, 1)) // until the host closes it
		conn.Close()
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	var lines int
	for _, l := range strings.Split(e.logs.String(), "\n") {
		if strings.Contains(l, "refused") || strings.Contains(l, "unauthenticated") {
			lines++
		}
	}
	if lines > 20 {
		t.Fatalf("2,000 unauthenticated exchanges wrote %d log lines", lines)
	}
	t.Logf("2,000 unauthenticated exchanges: %d log lines", lines)
}

// TestGuestNotifyFloodBounded: the guest notify socket (--wait-guest-boot) is open to any guest
// process on cloud-hypervisor's hybrid vsock. Connections beyond the limit are closed at once,
// and what is logged of the messages is escaped and rate-limited.
func TestGuestNotifyFloodBounded(t *testing.T) {
	dir := shortTempDir(t)
	path := filepath.Join(dir, "n.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	var logs testkit.SyncBuffer
	lim := &logging.Limiter{Logger: logging.New(&logs, true, slog.LevelInfo)}
	out := make(chan guestMessage, 1024)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go serveGuestNotify(ctx, l, out, lim)

	// Silent connections hold their slot until the deadline; the ones past the limit are
	// closed at once.
	var held []net.Conn
	closedAtOnce := 0
	for range guestNotifyConns + 36 {
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	var eofs atomic.Int64
	var wg sync.WaitGroup
	for _, c := range held {
		wg.Add(1)
		go func() { // each read on its own: an expired deadline hides a pending EOF
			defer wg.Done()
			c.SetReadDeadline(time.Now().Add(300 * time.Millisecond)) // well before guestNotifyDeadline
			if _, err := c.Read(make([]byte, 1)); err == io.EOF {
				eofs.Add(1)
			}
			c.Close()
		}()
	}
	wg.Wait()
	closedAtOnce = int(eofs.Load())
	if closedAtOnce < 30 || closedAtOnce > 36 {
		t.Errorf("%d of %d connections past the limit were closed at once; log:\n%s", closedAtOnce, 36, logs.String())
	}

	// 500 messages whose STATUS carries control characters: few lines, all escaped.
	var st statusLog
	for i := range 500 { // each a new status, so the repeat folding does not hide the flood
		m := sdnotify.Parse(fmt.Sprintf("READY=1\nSTATUS=booting %c\r\x1b[2J", 'a'+i%26)+smuggle, time.Now())
		logGuestMessage(lim, &st, guestMessage{Message: m})
	}
	got := logs.String()
	if n := strings.Count(got, "\n"); n > 12 {
		t.Errorf("500 guest messages wrote %d log lines", n)
	}
	if strings.ContainsAny(got, "\r\x1b") {
		t.Errorf("control characters from the guest in the log: %q", got)
	}
}

// TestRejectionsAfterReadyAreRateLimited: after READY=1 the guest's key holder may send rejected
// reports in a loop (an agent restarted by systemd, a crafted one); the journal gets at most a
// burst of them, then the count; reboots that acknowledge are logged each time.
func TestRejectionsAfterReadyAreRateLimited(t *testing.T) {
	rejected := ack.Result{Authenticated: true, Reasons: []string{"db: missing in the guest", "guest verification failed"}}
	rebooted := ack.Result{Authenticated: true, Accepted: true, NewBoot: true, Report: &ack.Report{BootID: "b2"}}
	forged := ack.Result{Reasons: []string{"report not authenticated"}}
	for _, tc := range []struct {
		name      string
		results   []ack.Result
		wantLines int
	}{
		{"one rejection", []ack.Result{rejected}, 1},
		{"a loop of rejections", repeat(rejected, 500), 10},
		{"unauthenticated", repeat(forged, 50), 0},
		{"reboots", repeat(rebooted, 20), 20},
	} {
		var buf testkit.SyncBuffer
		log := slog.New(slog.NewTextHandler(&buf, nil))
		lim := &logging.Limiter{Logger: log, Now: func() time.Time { return time.Unix(0, 0) }}
		for _, r := range tc.results {
			logAfterReady(log, lim, r)
		}
		if got := strings.Count(buf.String(), "\n"); got != tc.wantLines {
			t.Errorf("%s: %d log lines, want %d:\n%s", tc.name, got, tc.wantLines, buf.String())
		}
	}
}

func repeat(r ack.Result, n int) []ack.Result {
	out := make([]ack.Result, n)
	for i := range out {
		out[i] = r
	}
	return out
}
