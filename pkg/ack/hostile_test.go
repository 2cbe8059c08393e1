package ack

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/credlink/credlink/pkg/credential"
	"github.com/credlink/credlink/pkg/listen"
	"github.com/credlink/credlink/pkg/logging"
	"github.com/credlink/credlink/pkg/testkit"
)

// A key holder (guest root, a compromised agent) controls every string of its report. None of
// them may reach the host's reasons — which become STATUS= and log lines — unless it passed
// systemd's name rules or the closed set of statuses; anything else makes the whole report
// malformed, with a reason the host wrote itself.
func TestKeyHolderReportTextIsValidated(t *testing.T) {
	key := newKey(t)
	h := startServer(t, key)
	smuggle := "\nREADY=1\nMAINPID=1"
	tests := map[string]func(r *Report){
		"status with newline": func(r *Report) { r.Credentials[0].Status = credential.Status("wrong_length" + smuggle) },
		"unknown status":      func(r *Report) { r.Credentials[0].Status = "fine_really" },
		"unsent name with newline": func(r *Report) {
			r.OK = false
			r.Credentials = append(r.Credentials, CredentialReport{Name: "X" + smuggle, Status: credential.StatusMissing})
		},
		"invalid name":         func(r *Report) { r.Credentials = append(r.Credentials, CredentialReport{Name: "../etc", Status: "ok"}) },
		"vm with newline":      func(r *Report) { r.VM = "vm1" + smuggle },
		"boot id with newline": func(r *Report) { r.BootID = "b" + smuggle },
		"agent with newline":   func(r *Report) { r.Agent = "a" + smuggle },
		"unknown source":       func(r *Report) { r.Credentials[0].Source = "smbios" + smuggle },
		"negative bytes":       func(r *Report) { r.Credentials[0].Bytes = -1 },
		"short MAC":            func(r *Report) { r.Credentials[0].MAC = []byte{1} },
		"huge vm":              func(r *Report) { r.VM = strings.Repeat("v", 100000) },
	}
	for name, mutate := range tests {
		t.Run(name, func(t *testing.T) {
			r := reportFor(key, sent, true)
			mutate(&r)
			v, err := h.client(key).Exchange(context.Background(), r)
			if err == nil || v.Accepted {
				t.Fatalf("accepted: %+v %v", v, err)
			}
			res := h.last()
			if !res.Authenticated || res.Accepted || len(res.Reasons) != 1 || !strings.HasPrefix(res.Reasons[0], "malformed report: ") {
				t.Fatalf("result %+v", res)
			}
			for _, bad := range []string{"\n", "READY", "MAINPID", "fine_really", "../etc", "vvvv"} {
				if strings.Contains(res.Reasons[0], bad) {
					t.Errorf("reason carries guest text %q: %q", bad, res.Reasons[0])
				}
			}
		})
	}
}

// Nothing a peer without the key sends may produce more than a few log lines: 2,000 bogus
// exchanges used to write 2,000 journal lines in about a second, for the VM's lifetime.
func TestUnauthenticatedFloodLogIsRateLimited(t *testing.T) {
	key := newKey(t)
	var buf testkit.SyncBuffer
	h := startServer(t, key, func(s *Server) { s.Logger = logging.New(&buf, true, slog.LevelInfo) })
	other := newKey(t)
	kinds := []func(c net.Conn){
		func(c net.Conn) { WriteFrame(c, TypeHello, []byte("not json")) },
		func(c net.Conn) { WriteFrame(c, TypeReport, make([]byte, 64)) },
		func(c net.Conn) { // a well-formed exchange under another key
			cl := &Client{Key: other, Dialer: connDialer{c}, Timeout: time.Second}
			_, _ = cl.Exchange(context.Background(), reportFor(other, sent, true))
		},
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for i := range 2000 {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := net.Dial("unix", h.path)
			if err != nil {
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(time.Second))
			kinds[i%len(kinds)](c)
			_, _ = c.Read(make([]byte, 1)) // until the host closes
		}()
	}
	wg.Wait()
	v, err := h.client(key).Exchange(context.Background(), reportFor(key, sent, true))
	if err != nil || !v.Accepted {
		t.Fatalf("real agent after the flood: %+v %v", v, err)
	}
	if lines := strings.Count(buf.String(), "\n"); lines > 20 {
		t.Fatalf("2,000 unauthenticated exchanges wrote %d log lines; first ones:\n%.2000s", lines, buf.String())
	}
}

// connDialer hands out one connection the test already opened.
type connDialer struct{ c net.Conn }

func (d connDialer) Dial(context.Context) (Conn, error) { return nopCloser{d.c}, nil }
func (connDialer) Stream() bool                         { return false }

// holdConnections keeps n connections open to path, re-opening each one as soon as the host
// closes it, until ctx ends: the cheap flood the review used (negligible CPU for the peer).
func holdConnections(ctx context.Context, path string, n int, open *atomic.Int64) *sync.WaitGroup {
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				c, err := net.Dial("unix", path)
				if err != nil {
					time.Sleep(time.Millisecond)
					continue
				}
				open.Add(1)
				stop := context.AfterFunc(ctx, func() { c.Close() })
				_, _ = c.Read(make([]byte, 1)) // blocks until the host closes it
				stop()
				c.Close()
				open.Add(-1)
			}
		}()
	}
	return &wg
}

// 1,024 connections held open (the listener's whole capacity) must not keep the real agent
// out: it used to wait until the 10 s exchange deadline freed a slot, and lose the race for it.
func TestAckThroughHeldConnections(t *testing.T) {
	key := newKey(t)
	h := startServer(t, key, func(s *Server) { s.ExchangeTimeout = 10 * time.Second })
	base := measureAck(t, h, key, 9, 0) // the peer: the same acknowledgement without a flood
	ctx, cancel := context.WithCancel(context.Background())
	var open atomic.Int64
	wg := holdConnections(ctx, h.path, 1024, &open)
	defer func() { cancel(); wg.Wait() }()
	for open.Load() < 1024 {
		time.Sleep(5 * time.Millisecond)
	}
	lat := measureAck(t, h, key, 9, 0)
	t.Logf("real ack with 1,024 held connections: median %v, max %v (%d attempts for 9 acks); without the flood: median %v, max %v; evicted %d, dropped %d",
		lat.median, lat.max, lat.attempts, base.median, base.max, h.srv.Evicted.Load(), h.srv.Dropped.Load())
	if lat.max > 2*time.Second {
		t.Fatalf("real ack took %v with 1,024 held connections", lat.max)
	}
}

// A peer reconnecting 10,000 times a second (each connection closed at once, or left for the
// host to evict): the real ack still gets through quickly.
func TestAckThroughReconnectStorm(t *testing.T) {
	key := newKey(t)
	h := startServer(t, key)
	base := measureAck(t, h, key, 9, 0) // the peer: the same acknowledgement without a flood
	ctx, cancel := context.WithCancel(context.Background())
	var dials atomic.Int64
	var wg sync.WaitGroup
	const workers, perWorker = 100, 100 // 10,000 connections/s
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(time.Second / perWorker)
			defer tick.Stop()
			for ctx.Err() == nil {
				<-tick.C
				c, err := net.Dial("unix", h.path)
				if err != nil {
					continue
				}
				dials.Add(1)
				if i%2 == 0 {
					c.Close()
				} else {
					go func() { <-ctx.Done(); c.Close() }() // held until evicted
				}
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	d0, t0 := dials.Load(), time.Now()
	lat := measureAck(t, h, key, 9, 100*time.Millisecond)
	rate := float64(dials.Load()-d0) / time.Since(t0).Seconds()
	cancel()
	wg.Wait()
	t.Logf("real ack during a reconnect storm of %.0f connections/s: median %v, max %v (%d attempts for 9 acks); without the storm: median %v, max %v; evicted %d, dropped %d",
		rate, lat.median, lat.max, lat.attempts, base.median, base.max, h.srv.Evicted.Load(), h.srv.Dropped.Load())
	if lat.max > 2*time.Second {
		t.Fatalf("real ack took %v during the storm", lat.max)
	}
}

type latencies struct {
	median, max time.Duration
	attempts    int
}

// measureAck runs n acknowledgements the way the agent does (with its retries) and returns
// their latency from the first dial to the verdict.
func measureAck(t *testing.T, h *harness, key []byte, n int, gap time.Duration) latencies {
	t.Helper()
	var all []time.Duration
	var out latencies
	for range n {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		start := time.Now()
		v, err := h.client(key).Acknowledge(ctx, reportFor(key, sent, true), Backoff{Initial: 50 * time.Millisecond, Max: 500 * time.Millisecond},
			func(a Attempt) {
				out.attempts++
				if a.Err != nil && testing.Verbose() {
					t.Logf("attempt %d after %v: %v", a.N, a.RTT, a.Err)
				}
			})
		cancel()
		if err != nil || !v.Accepted {
			t.Fatalf("real agent: %+v %v after %v", v, err, time.Since(start))
		}
		all = append(all, time.Since(start))
		time.Sleep(gap)
	}
	for i := range all { // tiny sort
		for j := i + 1; j < len(all); j++ {
			if all[j] < all[i] {
				all[i], all[j] = all[j], all[i]
			}
		}
	}
	out.median, out.max = all[len(all)/2], all[len(all)-1]
	return out
}

// A torn frame on virtio-serial (a header announcing 10 KB, then nothing: the agent died while
// writing) must not swallow what follows until 10 KB have arrived: the agent's next attempt
// gets through.
func TestSerialTornFrameResyncsWithinOneRetry(t *testing.T) {
	key := newKey(t)
	hostEnd, guestEnd := net.Pipe()
	srv := &Server{Key: key, Sent: sent}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.ServeStream(ctx, hostEnd, "serial") }()
	defer func() { cancel(); <-done }()

	body, _ := json.Marshal(reportFor(key, sent, true))
	torn := appendFrame(nil, TypeReport, append(make([]byte, 32), bytes.Repeat(body, 10240/len(body)+1)...))
	if _, err := guestEnd.Write(torn[:headerLen+100]); err != nil {
		t.Fatal(err)
	}
	client := &Client{Key: key, Dialer: &pipeDialer{c: guestEnd}, Timeout: 2 * time.Second}
	v, err := client.Exchange(ctx, reportFor(key, sent, true))
	if err != nil || !v.Accepted {
		t.Fatalf("first attempt after a torn %d-byte frame: %+v %v", len(torn), v, err)
	}
}

// emfileListener fails Accept with EMFILE a few times, as a listener does while a flood holds
// every descriptor of the process.
type emfileListener struct {
	net.Listener
	fails atomic.Int64
}

func (l *emfileListener) Accept() (net.Conn, error) {
	if l.fails.Add(-1) >= 0 {
		return nil, &net.OpError{Op: "accept", Net: "unix", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	}
	return l.Listener.Accept()
}

// Running out of file descriptors under a flood is transient: the listener outlives it (it
// used to return, and the VM's real ack then found nobody listening).
func TestServeOutlivesEMFILE(t *testing.T) {
	key := newKey(t)
	path := filepath.Join(t.TempDir(), "ack.sock")
	inner, err := listen.Unix(path)
	if err != nil {
		t.Fatal(err)
	}
	l := &emfileListener{Listener: inner}
	l.fails.Store(5)
	srv := &Server{Key: key, Sent: sent}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, l) }()
	v, err := (&Client{Key: key, Dialer: UnixDialer{Path: path}, Timeout: 5 * time.Second}).Exchange(context.Background(), reportFor(key, sent, true))
	if err != nil || !v.Accepted {
		t.Fatalf("after EMFILE: %+v %v", v, err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
}

// A key holder repeating its hello on one connection gets a fresh challenge each time and
// nothing breaks (the slot is proven once).
func TestRepeatedHello(t *testing.T) {
	key := newKey(t)
	h := startServer(t, key)
	c, err := net.Dial("unix", h.path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	fr := NewFrameReader(c, false)
	for range 3 {
		n := make([]byte, NonceSize)
		hello, _ := json.Marshal(Hello{Nonce: n, BootID: "b", MAC: HelloMAC(key, n, "b")})
		if err := WriteFrame(c, TypeHello, hello); err != nil {
			t.Fatal(err)
		}
		if typ, _, err := fr.Next(); err != nil || typ != TypeChallenge {
			t.Fatalf("challenge: %d %v", typ, err)
		}
	}
}

// busyDialer always fails as a full backlog (or a vsock port without a listener) does.
type busyDialer struct{ n atomic.Int64 }

func (d *busyDialer) Dial(context.Context) (Conn, error) {
	d.n.Add(1)
	return nil, os.NewSyscallError("connect", syscall.ECONNRESET)
}
func (*busyDialer) Stream() bool { return false }

// A host that keeps turning the agent away is retried quickly only for a while: after
// Backoff.BusyFor the agent backs off as for any other failure, instead of 100 attempts a
// second for its whole timeout.
func TestBusyRetriesAreBounded(t *testing.T) {
	d := &busyDialer{}
	b := Backoff{Initial: 100 * time.Millisecond, Max: time.Second, BusyFor: 500 * time.Millisecond}
	ctx, cancel := context.WithTimeout(context.Background(), b.BusyFor+2*time.Second)
	defer cancel()
	var last []time.Time
	_, err := (&Client{Key: newKey(t), Dialer: d}).Acknowledge(ctx, reportFor(newKey(t), sent, true), b,
		func(a Attempt) { last = append(last, time.Now()) })
	if err == nil {
		t.Fatal("acknowledged to nobody")
	}
	if n := d.n.Load(); n < 20 || n > 120 {
		t.Errorf("%d attempts in %v", n, b.BusyFor+2*time.Second)
	}
	// The last second saw the slow backoff: a few attempts, not a hundred.
	recent := 0
	for _, at := range last {
		if time.Since(at) < time.Second {
			recent++
		}
	}
	if recent > 5 {
		t.Errorf("%d attempts in the last second after the busy window", recent)
	}
}

// TestUnprovenFramesAreSmall: before a peer holds a challenge, a frame may announce at most
// MaxUnprovenPayload bytes (a hello is under 200): a larger announcement ends the connection at
// once instead of making the launcher buffer up to MaxPayload per connection for HelloTimeout.
func TestUnprovenFramesAreSmall(t *testing.T) {
	key := newKey(t)
	h := startServer(t, key, func(s *Server) { s.HelloTimeout = time.Minute })
	for _, tc := range []struct {
		typ byte
		n   int
	}{
		{TypeHello, MaxUnprovenPayload + 1},
		{TypeHello, MaxPayload},
		{TypeReport, 64 << 10},
	} {
		c, err := net.Dial("unix", h.path)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write(header(tc.typ, tc.n)); err != nil {
			t.Fatal(err)
		}
		// The host closes the connection without waiting for the payload; failing that, the
		// read below times out (HelloTimeout is a minute).
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err != io.EOF {
			t.Errorf("type %d announcing %d bytes before a challenge: read %v, want the host to close at once", tc.typ, tc.n, err)
		}
		c.Close()
	}
	// A whole exchange, with a report far over MaxUnprovenPayload, still goes through.
	r := reportFor(key, sent, true)
	for i := range 64 {
		r.Credentials = append(r.Credentials, CredentialReport{Name: fmt.Sprintf("extra-%02d", i), Status: credential.StatusUnexpected, Source: credential.SourceCredentials, MAC: make([]byte, 32)})
	}
	if b, _ := json.Marshal(r); len(b) < 4*MaxUnprovenPayload {
		t.Fatalf("report of %d bytes: not large enough to test the limit", len(b))
	}
	v, err := h.client(key).Acknowledge(context.Background(), r, Backoff{Initial: 20 * time.Millisecond}, nil)
	if err != nil || !v.Accepted {
		t.Fatalf("exchange after the refusals: %+v, %v", v, err)
	}
}

// TestMalformedHelloLogIsBounded: encoding/json's errors repeat the peer's text (a whole unknown
// key); the refusal's log line carries at most maxDecodeError bytes of it.
func TestMalformedHelloLogIsBounded(t *testing.T) {
	key := newKey(t)
	for _, tc := range []struct {
		name    string
		payload string
	}{
		{"unknown key", `{"` + strings.Repeat("GUEST-TEXT", (MaxUnprovenPayload-8)/10) + `":1}`},
		{"bad string", `{"boot_id":"` + strings.Repeat("GUEST-TEXT", 90) + `\q"}`},
		{"wrong type", `{"nonce":"` + strings.Repeat("GUEST-TEXT", 90) + `"}`},
	} {
		var buf testkit.SyncBuffer
		h := startServer(t, key, func(s *Server) { s.Logger = slog.New(slog.NewTextHandler(&buf, nil)) })
		c, err := net.Dial("unix", h.path)
		if err != nil {
			t.Fatal(err)
		}
		if err := WriteFrame(c, TypeHello, []byte(tc.payload)); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		c.Read(make([]byte, 1)) // the host logs, then closes
		c.Close()
		log := buf.String()
		if !strings.Contains(log, "malformed hello") {
			t.Errorf("%s: refusal not logged: %q", tc.name, log)
		}
		if len(log) > 200+maxDecodeError {
			t.Errorf("%s: one %d-byte frame gave a %d-byte log line: %s", tc.name, len(tc.payload), len(log), log)
		}
	}
}

// TestKeyHolderReasonsAreBounded: a key holder chooses how many names its report lists and how
// long they are; the reasons they turn into (STATUS=, a log line, the verdict) stay within
// MaxReasons and MaxReasonsBytes, and say how many were left out.
func TestKeyHolderReasonsAreBounded(t *testing.T) {
	key := newKey(t)
	s := &Server{Key: key, Sent: []credential.Credential{{Name: "db", Value: credential.NewValue([]byte("x"))}}}
	for _, tc := range []struct {
		name     string
		n        int // credentials the report lists as missing
		nameLen  int
		wantMore string // the summary line, "" if none
	}{
		{"few", 2, 10, ""},
		{"many short", 200, 3, "and 186 more"}, // 1 for db + 200 + "guest verification failed" = 202; 16 kept
		{"long names", MaxReportCredentials, 255, "more"},
	} {
		nonce := make([]byte, NonceSize)
		r := Report{Version: Version, Nonce: nonce, BootID: "b", Agent: "a"}
		for i := range tc.n {
			name := fmt.Sprintf("%04d%s", i, strings.Repeat("A", tc.nameLen))[:tc.nameLen]
			if tc.nameLen < 4 {
				name = fmt.Sprintf("%03x", i)[:tc.nameLen]
			}
			r.Credentials = append(r.Credentials, CredentialReport{Name: name, Status: credential.StatusMissing})
		}
		payload, err := seal(key, labelReport, nonce, r)
		if err != nil {
			t.Fatal(err)
		}
		res := s.check(payload, nonce)
		if !res.Authenticated || res.Accepted {
			t.Fatalf("%s: %+v", tc.name, res)
		}
		joined := strings.Join(res.Reasons, "; ")
		if len(res.Reasons) > MaxReasons+1 || len(joined) > MaxReasonsBytes+2*MaxReasons+32 {
			t.Errorf("%s: %d reasons, %d bytes joined", tc.name, len(res.Reasons), len(joined))
		}
		last := res.Reasons[len(res.Reasons)-1]
		if tc.wantMore == "" && strings.HasPrefix(last, "and ") || tc.wantMore != "" && (!strings.HasPrefix(last, "and ") || !strings.Contains(last, tc.wantMore)) {
			t.Errorf("%s: last reason %q, want %q", tc.name, last, tc.wantMore)
		}
	}
}
