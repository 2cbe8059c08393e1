package ack

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/credlink/credlink/pkg/credential"
	"github.com/credlink/credlink/pkg/listen"
)

func newKey(t testing.TB) []byte {
	k := make([]byte, KeySize)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

var sent = []credential.Credential{
	{Name: "API_KEY", Value: credential.NewValue([]byte("api-secret-value-0123456789"))},
	{Name: "DB_PASSWORD", Value: credential.NewValue([]byte("db\x00binary\xffpass"))},
}

// reportFor builds the agent's report as if the guest received creds.
func reportFor(key []byte, creds []credential.Credential, ok bool) Report {
	r := Report{VM: "vm1", BootID: "boot-1", Agent: "test", OK: ok}
	for _, c := range creds {
		r.Credentials = append(r.Credentials, CredentialReport{Name: c.Name, Bytes: c.Value.Len(), Status: "ok", MAC: CredentialMAC(key, c.Name, c.Value.Bytes())})
	}
	return r
}

type harness struct {
	srv     *Server
	path    string
	mu      sync.Mutex
	results []Result
	cancel  context.CancelFunc
	done    chan error
}

func startServer(t testing.TB, key []byte, configure ...func(*Server)) *harness {
	t.Helper()
	h := &harness{path: filepath.Join(t.TempDir(), "ack.sock"), done: make(chan error, 1)}
	h.srv = &Server{Key: key, Sent: sent, VM: "vm1", ExchangeTimeout: time.Second,
		OnResult: func(r Result) { h.mu.Lock(); h.results = append(h.results, r); h.mu.Unlock() }}
	for _, f := range configure {
		f(h.srv)
	}
	l, err := listen.Unix(h.path)
	if err != nil {
		t.Fatal(err)
	}
	var ctx context.Context
	ctx, h.cancel = context.WithCancel(context.Background())
	go func() { h.done <- h.srv.Serve(ctx, l) }()
	t.Cleanup(func() {
		h.cancel()
		if err := <-h.done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return h
}

func (h *harness) client(key []byte) *Client {
	return &Client{Key: key, Dialer: UnixDialer{Path: h.path}, Timeout: 2 * time.Second}
}

func (h *harness) last() Result {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.results) == 0 {
		return Result{}
	}
	return h.results[len(h.results)-1]
}

func TestExchangeAccepted(t *testing.T) {
	key := newKey(t)
	h := startServer(t, key)
	v, err := h.client(key).Exchange(context.Background(), reportFor(key, sent, true))
	if err != nil || !v.Accepted || !v.NewBoot {
		t.Fatalf("verdict %+v, %v", v, err)
	}
	// The same boot acknowledging again (agent restart) is accepted, not as a new boot.
	v, err = h.client(key).Exchange(context.Background(), reportFor(key, sent, true))
	if err != nil || !v.Accepted || v.NewBoot {
		t.Fatalf("second verdict %+v, %v", v, err)
	}
	// A reboot is a new boot.
	r := reportFor(key, sent, true)
	r.BootID = "boot-2"
	if v, err = h.client(key).Exchange(context.Background(), r); err != nil || !v.NewBoot {
		t.Fatalf("reboot verdict %+v, %v", v, err)
	}
}

func TestExchangeRejections(t *testing.T) {
	key := newKey(t)
	short := []credential.Credential{sent[0], {Name: "DB_PASSWORD", Value: credential.NewValue([]byte("db\x00binary"))}}
	tests := []struct {
		name    string
		report  func() Report
		reasons []string
	}{
		{"wrong bytes", func() Report { return reportFor(key, short, true) },
			[]string{"DB_PASSWORD: guest received 9 bytes that differ from the 14 sent"}},
		{"missing", func() Report { return reportFor(key, sent[:1], true) },
			[]string{"DB_PASSWORD: not received by the guest"}},
		{"other credentials", func() Report {
			return reportFor(key, []credential.Credential{{Name: "OTHER", Value: credential.NewValue([]byte("x"))}}, true)
		}, []string{"API_KEY: not received by the guest", "DB_PASSWORD: not received by the guest"}},
		{"guest verification failed", func() Report {
			r := reportFor(key, sent, false)
			r.Credentials = append(r.Credentials, CredentialReport{Name: "JWT_SECRET", Status: "missing"})
			return r
		}, []string{"JWT_SECRET: missing in the guest", "guest verification failed"}},
		{"guest status", func() Report {
			r := reportFor(key, sent, false)
			r.Credentials[0].Status = "wrong_length"
			return r
		}, []string{"API_KEY: wrong_length in the guest", "guest verification failed"}},
		{"reported without a MAC", func() Report {
			r := reportFor(key, sent, false)
			r.Credentials[1].MAC, r.Credentials[1].Bytes, r.Credentials[1].Status = nil, 0, "source_mismatch"
			return r
		}, []string{"DB_PASSWORD: source_mismatch in the guest", "guest verification failed"}},
		{"other VM", func() Report { r := reportFor(key, sent, true); r.VM = "vm2"; return r },
			[]string{`report is for VM "vm2", this is "vm1"`}},
		{"same length, other bytes", func() Report {
			return reportFor(key, []credential.Credential{sent[0], {Name: "DB_PASSWORD", Value: credential.NewValue([]byte("db\x00binary\xffPASS"))}}, true)
		}, []string{"DB_PASSWORD: guest received 14 bytes that differ from the 14 sent"}},
		{"lying length", func() Report { r := reportFor(key, sent, true); r.Credentials[0].Bytes = 5; return r },
			[]string{"API_KEY: guest received 5 bytes that differ from the 27 sent"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := startServer(t, key)
			v, err := h.client(key).Exchange(context.Background(), tt.report())
			if !errors.Is(err, ErrRejected) || v.Accepted {
				t.Fatalf("verdict %+v, %v", v, err)
			}
			if strings.Join(v.Reasons, "\n") != strings.Join(tt.reasons, "\n") {
				t.Errorf("reasons:\n%s\nwant:\n%s", strings.Join(v.Reasons, "\n"), strings.Join(tt.reasons, "\n"))
			}
			if res := h.last(); !res.Authenticated || res.Accepted {
				t.Errorf("result %+v", res)
			}
			for _, r := range v.Reasons {
				for _, c := range sent {
					if strings.Contains(r, string(c.Value.Bytes())) {
						t.Errorf("reason leaks a value: %s", r)
					}
				}
			}
		})
	}
}

// A peer with another key (another VM, an earlier launch, a forger) fails at its hello: no
// challenge, no result, only a refusal counted (and logged, rate-limited). A report MACed with
// another key after a genuine hello is not authenticated and gets no verdict.
func TestForgedReport(t *testing.T) {
	key := newKey(t)
	h := startServer(t, key)
	other := newKey(t)
	_, err := (&Client{Key: other, Dialer: UnixDialer{Path: h.path}, Timeout: time.Second}).Exchange(context.Background(), reportFor(other, sent, true))
	if err == nil || errors.Is(err, ErrRejected) {
		t.Fatalf("forged exchange: %v", err)
	}
	if res := h.last(); res.Reasons != nil || h.srv.Refused.Load() != 1 {
		t.Errorf("result %+v, refused %d", res, h.srv.Refused.Load())
	}
	_, _, err = rawExchange(t, key, h.path, func(ch Challenge) []byte {
		r := reportFor(other, sent, true)
		r.Version, r.Nonce = Version, ch.Nonce
		p, _ := seal(other, labelReport, ch.Nonce, r)
		return p
	})
	if err == nil {
		t.Error("forged report got an answer")
	}
	if res := h.last(); res.Authenticated || res.Accepted || !strings.Contains(res.Reasons[0], "MAC does not verify") {
		t.Errorf("result %+v", res)
	}
}

// fakeHost is a host that holds the launch's key and speaks the protocol correctly up to the
// verdict, whose payload forge makes from the challenge nonce and the authentic report (sealed
// is the verdict the real server would send). On a stream it may send several frames.
func fakeHost(t *testing.T, c net.Conn, key []byte, forge func(nonce []byte, sealed []byte) [][]byte) {
	t.Helper()
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fr := NewFrameReader(c, false)
	typ, payload, err := fr.Next()
	if err != nil || typ != TypeHello {
		t.Errorf("fake host: hello: %d %v", typ, err)
		return
	}
	var h Hello
	if err := decodeStrict(payload, &h); err != nil {
		t.Errorf("fake host: %v", err)
		return
	}
	nonce := newKey(t)[:NonceSize]
	body, _ := json.Marshal(Challenge{HelloNonce: h.Nonce, Nonce: nonce})
	WriteFrame(c, TypeChallenge, body)
	if typ, payload, err = fr.Next(); err != nil || typ != TypeReport {
		t.Errorf("fake host: report: %d %v", typ, err)
		return
	}
	var r Report
	if err := open(key, labelReport, nonce, payload, &r); err != nil {
		t.Errorf("fake host: the agent's report does not verify: %v", err)
		return
	}
	sealed, _ := seal(key, labelVerdict, nonce, Verdict{Nonce: nonce, Accepted: true, NewBoot: true})
	for _, p := range forge(nonce, sealed) {
		WriteFrame(c, TypeVerdict, p)
	}
	io.Copy(io.Discard, c) // until the agent hangs up
}

// TestForgedVerdict: the agent believes only a verdict MACed under the launch's key, for this
// exchange's nonce, as a verdict, with exactly the body that was MACed. The fake host holds the
// right key and received an authentic report, so every failure below is the agent's own check
// of the verdict. A forged verdict must not look like an authentic rejection either: that
// would stop the agent's retries (ErrRejected is final).
func TestForgedVerdict(t *testing.T) {
	key := newKey(t)
	reseal := func(k []byte, label string, nonce []byte, v any) []byte { p, _ := seal(k, label, nonce, v); return p }
	accept := func(nonce []byte) Verdict { return Verdict{Nonce: nonce, Accepted: true} }
	tests := []struct {
		name  string
		forge func(nonce, sealed []byte) []byte
		err   error
	}{
		{"MAC flipped", func(_, sealed []byte) []byte { sealed[0] ^= 1; return sealed }, ErrBadMAC},
		{"body changed after sealing", func(nonce, _ []byte) []byte {
			p := reseal(key, labelVerdict, nonce, Verdict{Nonce: nonce, Accepted: false, Reasons: []string{"x"}})
			body, _ := json.Marshal(accept(nonce))
			return append(p[:sha256.Size:sha256.Size], body...)
		}, ErrBadMAC},
		{"for another nonce", func(nonce, _ []byte) []byte {
			other := bytes.Repeat([]byte{7}, NonceSize)
			return reseal(key, labelVerdict, other, accept(other))
		}, ErrBadMAC},
		{"right nonce inside, sealed under another", func(nonce, _ []byte) []byte {
			return reseal(key, labelVerdict, bytes.Repeat([]byte{7}, NonceSize), accept(nonce))
		}, ErrBadMAC},
		{"sealed as a report", func(nonce, _ []byte) []byte { return reseal(key, labelReport, nonce, accept(nonce)) }, ErrBadMAC},
		{"sealed as a credential MAC", func(nonce, _ []byte) []byte {
			body, _ := json.Marshal(accept(nonce))
			return append(CredentialMAC(key, "verdict", body), body...)
		}, ErrBadMAC},
		{"another key", func(nonce, _ []byte) []byte { return reseal(newKey(t), labelVerdict, nonce, accept(nonce)) }, ErrBadMAC},
		{"no MAC", func(nonce, _ []byte) []byte { b, _ := json.Marshal(accept(nonce)); return b }, ErrBadMAC},
		{"shorter than a MAC", func(_, sealed []byte) []byte { return sealed[:sha256.Size-1] }, ErrBadMessage},
		{"authentic MAC over a body with an unknown field", func(nonce, _ []byte) []byte {
			body := []byte(`{"nonce":null,"accepted":true,"admin":true}`)
			return append(messageMAC(key, labelVerdict, nonce, body), body...)
		}, ErrBadMessage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hostEnd, agentEnd := net.Pipe()
			go fakeHost(t, hostEnd, key, func(nonce, sealed []byte) [][]byte { return [][]byte{tt.forge(nonce, sealed)} })
			v, err := (&Client{Key: key, Dialer: connDialer{c: agentEnd}, Timeout: 5 * time.Second}).Exchange(context.Background(), reportFor(key, sent, true))
			agentEnd.Close() // connDialer's connection outlives the exchange
			if !errors.Is(err, tt.err) || errors.Is(err, ErrRejected) || v.Accepted {
				t.Errorf("agent's verdict %+v, err %v; want %v", v, err, tt.err)
			}
		})
	}

	// The same fake host with the genuine verdict is believed: the failures above are the
	// forgeries', not the harness's.
	hostEnd, agentEnd := net.Pipe()
	go fakeHost(t, hostEnd, key, func(_, sealed []byte) [][]byte { return [][]byte{sealed} })
	if v, err := (&Client{Key: key, Dialer: connDialer{c: agentEnd}}).Exchange(context.Background(), reportFor(key, sent, true)); err != nil || !v.Accepted || !v.NewBoot {
		t.Errorf("genuine verdict: %+v %v", v, err)
	}
	agentEnd.Close()

	// On a stream a verdict that does not verify may be a stale one for an earlier nonce: it is
	// skipped, never believed, and the genuine one that follows is.
	hostEnd, agentEnd = net.Pipe()
	go fakeHost(t, hostEnd, key, func(nonce, sealed []byte) [][]byte {
		stale := reseal(key, labelVerdict, bytes.Repeat([]byte{7}, NonceSize), Verdict{Accepted: false, Reasons: []string{"stale"}})
		forged := append([]byte(nil), sealed...)
		forged[len(forged)-2] ^= 1
		return [][]byte{stale, forged, sealed}
	})
	if v, err := (&Client{Key: key, Dialer: &pipeDialer{c: agentEnd}}).Exchange(context.Background(), reportFor(key, sent, true)); err != nil || !v.Accepted || len(v.Reasons) != 0 {
		t.Errorf("stream with stale and forged verdicts before the genuine one: %+v %v", v, err)
	}
	agentEnd.Close() // a stream's Dialer never closes it
	// Only forgeries on a stream: no verdict, so no answer within the exchange timeout.
	hostEnd, agentEnd = net.Pipe()
	go fakeHost(t, hostEnd, key, func(nonce, sealed []byte) [][]byte {
		body, _ := json.Marshal(accept(nonce))
		return [][]byte{append(sealed[:sha256.Size:sha256.Size], body...)}
	})
	if v, err := (&Client{Key: key, Dialer: &pipeDialer{c: agentEnd}, Timeout: 300 * time.Millisecond}).Exchange(context.Background(), reportFor(key, sent, true)); err == nil || errors.Is(err, ErrRejected) || v.Accepted {
		t.Errorf("stream with only a forged verdict: %+v %v", v, err)
	}
	agentEnd.Close()
}

// rawExchange speaks the protocol by hand: hello, read challenge, then send payload as a report.
func rawExchange(t *testing.T, key []byte, path string, report func(ch Challenge) []byte) (byte, []byte, error) {
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	hn := make([]byte, NonceSize)
	hello, _ := json.Marshal(Hello{Nonce: hn, BootID: "b", MAC: HelloMAC(key, hn, "b")})
	WriteFrame(c, TypeHello, hello)
	fr := NewFrameReader(c, false)
	typ, payload, err := fr.Next()
	if err != nil || typ != TypeChallenge {
		t.Fatalf("challenge: %d %v", typ, err)
	}
	var ch Challenge
	if err := decodeStrict(payload, &ch); err != nil {
		t.Fatal(err)
	}
	WriteFrame(c, TypeReport, report(ch))
	return fr.Next()
}

// A report recorded from one exchange and replayed in the next does not verify: its MAC binds
// the old nonce.
func TestReplayedReport(t *testing.T) {
	key := newKey(t)
	h := startServer(t, key)
	var recorded []byte
	typ, _, err := rawExchange(t, key, h.path, func(ch Challenge) []byte {
		r := reportFor(key, sent, true)
		r.Version, r.Nonce = Version, ch.Nonce
		recorded, _ = seal(key, labelReport, ch.Nonce, r)
		return recorded
	})
	if err != nil || typ != TypeVerdict || !h.last().Accepted {
		t.Fatalf("original exchange: %d %v %+v", typ, err, h.last())
	}
	_, _, err = rawExchange(t, key, h.path, func(Challenge) []byte { return recorded })
	if err == nil {
		t.Error("replayed report got an answer")
	}
	if res := h.last(); res.Authenticated || res.Accepted {
		t.Errorf("replay result %+v", res)
	}
	// A report sealed with a different nonce but carrying the right one inside fails the same way.
	_, _, _ = rawExchange(t, key, h.path, func(ch Challenge) []byte {
		r := reportFor(key, sent, true)
		r.Version, r.Nonce = Version, ch.Nonce
		p, _ := seal(key, labelReport, make([]byte, NonceSize), r)
		return p
	})
	if res := h.last(); res.Authenticated {
		t.Errorf("mis-sealed result %+v", res)
	}
}

// A challenge answers one report: on a stream (where the server keeps reading after a verdict)
// the same authentic report sent again under the used nonce is refused as unchallenged.
func TestChallengeSingleUse(t *testing.T) {
	key := newKey(t)
	hostEnd, guestEnd := net.Pipe()
	results := make(chan Result, 4)
	srv := &Server{Key: key, Sent: sent, OnResult: func(r Result) { results <- r }}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go srv.ServeStream(ctx, hostEnd, "serial")
	defer guestEnd.Close()
	guestEnd.SetDeadline(time.Now().Add(5 * time.Second))
	fr := NewFrameReader(guestEnd, true)
	hello := func() Challenge {
		t.Helper()
		hn := make([]byte, NonceSize)
		rand.Read(hn)
		body, _ := json.Marshal(Hello{Nonce: hn, BootID: "b", MAC: HelloMAC(key, hn, "b")})
		go WriteFrame(guestEnd, TypeHello, body)
		typ, payload, err := fr.Next()
		var ch Challenge
		if err != nil || typ != TypeChallenge || decodeStrict(payload, &ch) != nil {
			t.Fatalf("want a challenge, got frame type %d, %v", typ, err)
		}
		return ch
	}
	ch := hello()
	r := reportFor(key, sent, true)
	r.Version, r.Nonce = Version, ch.Nonce
	sealed, _ := seal(key, labelReport, ch.Nonce, r)
	go WriteFrame(guestEnd, TypeReport, sealed)
	if typ, _, err := fr.Next(); err != nil || typ != TypeVerdict {
		t.Fatalf("verdict: %d %v", typ, err)
	}
	if first := <-results; !first.Accepted {
		t.Fatalf("first report: %+v", first)
	}
	// Replayed within the stream; net.Pipe's Write returns once the server has read it all.
	if err := WriteFrame(guestEnd, TypeReport, sealed); err != nil {
		t.Fatal(err)
	}
	// The server handles a stream's frames in order: the challenge to the next hello means the
	// replayed report has been dealt with.
	hello()
	if len(results) != 0 || srv.Refused.Load() != 1 {
		t.Errorf("the report sent again under a used nonce: %d more results, %d refused", len(results), srv.Refused.Load())
	}
}

// Hostile peers on the listener: each misbehaves, and the real agent still gets its verdict
// quickly afterwards (or meanwhile), and nothing panics.
func TestHostilePeers(t *testing.T) {
	key := newKey(t)
	h := startServer(t, key)
	frame := func(typ byte, p []byte) []byte { return appendFrame(nil, typ, p) }
	big := appendFrame(nil, TypeHello, nil)
	big[8], big[9], big[10], big[11] = 0x7f, 0xff, 0xff, 0xff // announce 2 GiB
	peers := map[string]func(c net.Conn){
		"silent": func(c net.Conn) { time.Sleep(1500 * time.Millisecond) },
		"slow": func(c net.Conn) {
			for _, b := range frame(TypeHello, []byte(`{}`)) {
				c.Write([]byte{b})
				time.Sleep(100 * time.Millisecond)
			}
		},
		"garbage":   func(c net.Conn) { g := make([]byte, 4096); rand.Read(g); c.Write(g) },
		"oversize":  func(c net.Conn) { c.Write(big) },
		"bad hello": func(c net.Conn) { c.Write(frame(TypeHello, []byte("not json"))) },
		"report first": func(c net.Conn) {
			c.Write(frame(TypeReport, make([]byte, 64)))
		},
		"verdict type": func(c net.Conn) { c.Write(frame(TypeVerdict, nil)) },
	}
	var wg sync.WaitGroup
	for name, misbehave := range peers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("unix", h.path)
			if err != nil {
				t.Errorf("%s: %v", name, err)
				return
			}
			defer c.Close()
			misbehave(c)
		}()
	}
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	v, err := h.client(key).Exchange(context.Background(), reportFor(key, sent, true))
	if err != nil || !v.Accepted {
		t.Fatalf("real agent: %+v %v", v, err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("real agent took %v among hostile peers", d)
	}
	wg.Wait()
}

// 1,000 junk connections at once while the real agent acknowledges.
func TestThousandJunkConnections(t *testing.T) {
	key := newKey(t)
	h := startServer(t, key)
	var wg sync.WaitGroup
	conns := make(chan net.Conn, 1000)
	for i := range 1000 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("unix", h.path)
			if err != nil {
				return // the backlog may refuse some; that is the kernel, not us
			}
			if i%2 == 0 {
				c.Write(bytes.Repeat([]byte("junk"), 100))
			}
			conns <- c
		}()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	v, err := h.client(key).Acknowledge(ctx, reportFor(key, sent, true), Backoff{Initial: 20 * time.Millisecond, Max: 200 * time.Millisecond}, nil)
	if err != nil || !v.Accepted {
		t.Fatalf("real agent among 1,000 junk connections: %+v %v", v, err)
	}
	t.Logf("accepted after %v; %d dropped over the connection cap", time.Since(start), h.srv.Dropped.Load())
	wg.Wait()
	close(conns)
	for c := range conns {
		c.Close()
	}
}

// The serial transport: one stream across agent restarts and guest reboots, with garbage.
func TestSerialStream(t *testing.T) {
	key := newKey(t)
	hostEnd, guestEnd := net.Pipe()
	var results []Result
	var mu sync.Mutex
	srv := &Server{Key: key, Sent: sent, OnResult: func(r Result) { mu.Lock(); results = append(results, r); mu.Unlock() }}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.ServeStream(ctx, hostEnd, "serial") }()

	stream := &pipeDialer{c: guestEnd}
	client := &Client{Key: key, Dialer: stream, Timeout: 2 * time.Second}
	// Garbage from a previous boot, including a torn frame and a fake magic.
	torn := appendFrame(nil, TypeHello, []byte(`{"nonce":"AAAAAAAAAAAAAAAAAAAAAA==","boot_id":"x"}`))
	go func() { guestEnd.Write(append([]byte("\x00\xffCLAKgarbage"), torn[:20]...)) }()
	time.Sleep(20 * time.Millisecond)
	for i, boot := range []string{"boot-1", "boot-1", "boot-2"} {
		r := reportFor(key, sent, true)
		r.BootID = boot
		v, err := client.Exchange(ctx, r)
		if err != nil || !v.Accepted {
			t.Fatalf("exchange %d: %+v %v", i, v, err)
		}
		if want := i != 1; v.NewBoot != want {
			t.Errorf("exchange %d: NewBoot = %v", i, v.NewBoot)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("ServeStream: %v", err)
	}
}

// pipeDialer hands out the same stream every time, like /dev/virtio-ports/NAME, and never closes it.
type pipeDialer struct{ c net.Conn }

func (p *pipeDialer) Dial(context.Context) (Conn, error) { return nopCloser{p.c}, nil }
func (p *pipeDialer) Stream() bool                       { return true }

type nopCloser struct{ net.Conn }

func (nopCloser) Close() error { return nil }

func TestBackoff(t *testing.T) {
	b := Backoff{Initial: 100 * time.Millisecond, Max: time.Second, Jitter: 0.2}
	for n, want := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 4: 800 * time.Millisecond, 5: time.Second, 50: time.Second} {
		for range 100 {
			d := b.Delay(n)
			if d < want*8/10 || d > want*12/10 {
				t.Fatalf("Delay(%d) = %v, want %v ±20%%", n, d, want)
			}
		}
	}
}

func TestAcknowledgeRetriesUntilListening(t *testing.T) {
	key := newKey(t)
	path := filepath.Join(t.TempDir(), "late.sock")
	var attempts []Attempt
	go func() {
		time.Sleep(300 * time.Millisecond)
		l, err := listen.Unix(path)
		if err != nil {
			t.Error(err)
			return
		}
		srv := &Server{Key: key, Sent: sent}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		srv.Serve(ctx, l)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	c := &Client{Key: key, Dialer: UnixDialer{Path: path}}
	v, err := c.Acknowledge(ctx, reportFor(key, sent, true), Backoff{Initial: 50 * time.Millisecond}, func(a Attempt) { attempts = append(attempts, a) })
	if err != nil || !v.Accepted {
		t.Fatalf("%+v %v", v, err)
	}
	if len(attempts) < 2 || attempts[0].Result != "error" || attempts[len(attempts)-1].Result != "accepted" {
		t.Errorf("attempts = %+v", attempts)
	}

	// An authentic rejection ends the retries at once.
	h := startServer(t, key)
	attempts = nil
	_, err = h.client(key).Acknowledge(ctx, reportFor(key, sent[:1], true), Backoff{}, func(a Attempt) { attempts = append(attempts, a) })
	if !errors.Is(err, ErrRejected) || len(attempts) != 1 {
		t.Errorf("rejection: %v after %d attempts", err, len(attempts))
	}

	// No listener at all: gives up at the deadline with the attempt count.
	short, cancel2 := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel2()
	_, err = (&Client{Key: key, Dialer: UnixDialer{Path: path + ".none"}}).Acknowledge(short, reportFor(key, sent, true), Backoff{Initial: 50 * time.Millisecond}, nil)
	if err == nil || !strings.Contains(err.Error(), "no acknowledgement after") {
		t.Errorf("deadline: %v", err)
	}
}

func TestParseAddress(t *testing.T) {
	good := map[string]Address{
		"vsock:2:1234":       {Kind: "vsock", CID: 2, Port: 1234},
		"vsock:3:4294967295": {Kind: "vsock", CID: 3, Port: 4294967295},
		"serial:credlink.0":  {Kind: "serial", Name: "credlink.0"},
		"unix:/run/x.sock\n": {Kind: "unix", Path: "/run/x.sock"},
	}
	for in, want := range good {
		got, err := ParseAddress(in)
		if err != nil || got != want {
			t.Errorf("ParseAddress(%q) = %+v, %v", in, got, err)
		}
		if again, _ := ParseAddress(got.String()); again != want {
			t.Errorf("String round trip of %q: %+v", in, again)
		}
	}
	long := strings.Repeat("p", 100000)
	for _, in := range []string{"", "vsock", "vsock:2", "vsock:x:1", "vsock:2:99999999999", "serial:", "serial:../x", "serial:a/b", "unix:", "tcp:1.2.3.4:5",
		"serial:" + long, "vsock:" + long, long, long + ":x"} {
		_, err := ParseAddress(in)
		if !errors.Is(err, ErrBadAddress) {
			t.Errorf("ParseAddress(%.40q…) err = %.200v", in, err)
		}
		// The value is the host's text, logged by the guest: errors repeat a bounded part of it.
		if err != nil && len(err.Error()) > 300 {
			t.Errorf("ParseAddress(%.40q…): %d-byte error", in, len(err.Error()))
		}
	}
}

func TestBadKey(t *testing.T) {
	srv := &Server{Key: []byte("short")}
	if err := srv.Serve(context.Background(), nil); !errors.Is(err, ErrBadKey) {
		t.Errorf("Serve: %v", err)
	}
	if _, err := (&Client{Key: nil}).Exchange(context.Background(), Report{}); !errors.Is(err, ErrBadKey) {
		t.Errorf("Exchange: %v", err)
	}
}
