package ack

import (
	"container/list"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/credlink/credlink/pkg/credential"
	"github.com/credlink/credlink/pkg/logging"
)

// Result is the outcome of one report the host received.
type Result struct {
	// Authenticated reports carry a valid MAC under this launch's key and the exchange's nonce;
	// only they say anything about the VM. Unauthenticated ones come from garbage, other VMs,
	// other launches or replays.
	Authenticated bool
	Accepted      bool
	Reasons       []string // why not accepted; names only, never values
	Report        *Report  // set when Authenticated
	NewBoot       bool     // accepted, and the first acceptance for this guest boot id
	Peer          string
	Started       time.Time // when the hello arrived
	Received      time.Time // when the report frame was complete
}

// Server is the host side of the acknowledgement: it challenges every hello that proves the
// key, verifies reports against what the launcher sent, and answers with a MACed verdict.
type Server struct {
	Key  []byte
	Sent []credential.Credential // what was delivered, control credentials excluded
	VM   string                  // expected VM name; empty accepts any

	// HelloTimeout bounds the wait for a connection's first frame, a hello whose MAC verifies;
	// a connection that has not sent one by then is closed. Default 2s.
	HelloTimeout time.Duration
	// ExchangeTimeout bounds the rest of an exchange on a connection transport (hello to
	// verdict). Default 10s.
	ExchangeTimeout time.Duration
	// WriteTimeout bounds each write. Default 5s.
	WriteTimeout time.Duration
	// MaxConns bounds concurrently served connections. When all are busy, a new connection
	// evicts the oldest one that has not yet proven the key (Evicted); only when every slot is
	// held by a key holder is the new one closed at once (Dropped). Default 1024.
	MaxConns int
	// OnResult is called for every report, authenticated or not, from the serving goroutine.
	OnResult func(Result)
	Logger   *slog.Logger
	// Unauthenticated logs what peers without the key cause, rate-limited. Default: Logger,
	// 10 lines a minute, the rest counted.
	Unauthenticated *logging.Limiter

	mu       sync.Mutex
	lastBoot string
	limOnce  sync.Once
	// Evicted counts connections closed to make room because they had not proven the key.
	Evicted atomic.Int64
	// Dropped counts connections closed at once because every slot was held by a key holder.
	Dropped atomic.Int64
	// Refused counts hellos and frames refused before the key was proven.
	Refused atomic.Int64
}

func (s *Server) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.New(slog.DiscardHandler)
}

func (s *Server) unauth() *logging.Limiter {
	s.limOnce.Do(func() {
		if s.Unauthenticated == nil {
			s.Unauthenticated = &logging.Limiter{Logger: s.logger()}
		}
	})
	return s.Unauthenticated
}

func durationOr(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// slots is Serve's connection table: how many connections are served, and which of them have
// not yet proven the key, oldest first — the ones a new connection may evict.
type slots struct {
	mu      sync.Mutex
	active  int
	pending list.List // of *slot
}

type slot struct {
	c       net.Conn
	elem    *list.Element // in pending until the hello verifies; nil after
	evicted bool
}

// admit makes room for c, evicting the oldest unproven connection when all max slots are
// busy; it returns nil when every slot is held by a key holder.
func (s *Server) admit(t *slots, c net.Conn, max int) *slot {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.active >= max {
		e := t.pending.Front()
		if e == nil {
			return nil
		}
		old := t.pending.Remove(e).(*slot)
		old.elem, old.evicted = nil, true
		old.c.Close()
		t.active--
		s.Evicted.Add(1)
	}
	t.active++
	sl := &slot{c: c}
	sl.elem = t.pending.PushBack(sl)
	return sl
}

// prove moves sl out of the evictable set; false if it was evicted meanwhile.
func (t *slots) prove(sl *slot) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if sl.evicted {
		return false
	}
	if sl.elem != nil { // a second hello on the same connection is already proven
		t.pending.Remove(sl.elem)
		sl.elem = nil
	}
	return true
}

func (t *slots) release(sl *slot) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if sl.evicted {
		return
	}
	if sl.elem != nil {
		t.pending.Remove(sl.elem)
	}
	t.active--
}

// Serve accepts connections until ctx ends or the listener fails, serving each in its own
// goroutine. A connection must open with a hello that proves the key within HelloTimeout;
// until it has, it may be evicted by a newer connection when MaxConns are busy, so a peer
// without the key can hold at most the slots nobody else needs. It closes l when ctx ends.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	if err := checkKey(s.Key); err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { l.Close() })
	defer stop()
	maxConns := s.MaxConns
	if maxConns <= 0 {
		maxConns = 1024
	}
	var t slots
	var wg sync.WaitGroup
	defer wg.Wait()
	var pause time.Duration // after running out of file descriptors or memory
	for {
		c, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			// Out of descriptors or memory is the flood's doing, and passes: the listener must
			// outlive it (as net/http's Server does), not hand the VM's ack to the attacker.
			if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) || errors.Is(err, syscall.ENOBUFS) ||
				errors.Is(err, syscall.ENOMEM) || errors.Is(err, syscall.ECONNABORTED) {
				pause = min(max(2*pause, 5*time.Millisecond), time.Second)
				s.unauth().Warn("ack: accept failed; retrying", "err", err, "pause", pause)
				select {
				case <-time.After(pause):
				case <-ctx.Done():
					return nil
				}
				continue
			}
			return fmt.Errorf("accept: %w", err)
		}
		pause = 0
		sl := s.admit(&t, c, maxConns)
		if sl == nil {
			s.Dropped.Add(1)
			c.Close()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer t.release(sl)
			defer c.Close()
			stop := context.AfterFunc(ctx, func() { c.Close() })
			defer stop()
			_ = c.SetDeadline(time.Now().Add(durationOr(s.HelloTimeout, 2*time.Second)))
			s.serve(c, c.RemoteAddr().String(), false, func() bool {
				if !t.prove(sl) {
					return false
				}
				_ = c.SetDeadline(time.Now().Add(durationOr(s.ExchangeTimeout, 10*time.Second)))
				return true
			})
		}()
	}
}

// ServeStream serves a byte stream without connection boundaries (the host end of a
// virtio-serial port) until ctx ends or the stream closes: frames are resynchronised after
// garbage, and any number of exchanges (agent restarts, guest reboots) follow one another.
func (s *Server) ServeStream(ctx context.Context, rw io.ReadWriteCloser, peer string) error {
	if err := checkKey(s.Key); err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { rw.Close() })
	defer stop()
	err := s.serve(rw, peer, true, nil)
	if ctx.Err() != nil {
		return nil
	}
	return err
}

type deadliner interface{ SetWriteDeadline(time.Time) error }

// serve runs exchanges on one stream. On connection transports (resync false) it returns after
// the first verdict or the first frame that is not what the exchange expects. proven, if not
// nil, is told when a hello has proven the key; it returns false to end the connection.
func (s *Server) serve(rw io.ReadWriter, peer string, resync bool, proven func() bool) error {
	log := s.logger().With("peer", peer)
	fr := NewFrameReader(rw, resync)
	var nonce []byte // the outstanding challenge; single use
	var helloAt time.Time
	write := func(typ byte, payload []byte) error {
		if d, ok := rw.(deadliner); ok && resync {
			_ = d.SetWriteDeadline(time.Now().Add(durationOr(s.WriteTimeout, 5*time.Second)))
		}
		return WriteFrame(rw, typ, payload)
	}
	refuse := func(what string, err error) error {
		s.Refused.Add(1)
		args := []any{"peer", peer}
		if err != nil {
			args = append(args, "err", err)
		}
		s.unauth().Warn("ack: refused "+what, args...)
		if resync {
			return nil
		}
		return ErrBadMessage
	}
	for {
		// Only a report, which needs the outstanding challenge, may be large.
		fr.Limit = MaxPayload
		if nonce == nil {
			fr.Limit = MaxUnprovenPayload
		}
		typ, payload, err := fr.Next()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				log.Debug("ack stream ended", "err", err)
			}
			return err
		}
		switch typ {
		case TypeHello:
			var h Hello
			if err := decodeStrict(payload, &h); err != nil || len(h.Nonce) != NonceSize {
				if err := refuse("malformed hello", err); err != nil {
					return err
				}
				continue
			}
			if !hmac.Equal(h.MAC, HelloMAC(s.Key, h.Nonce, h.BootID)) {
				if err := refuse("hello without proof of the key", nil); err != nil {
					return err
				}
				continue
			}
			if proven != nil && !proven() {
				return nil
			}
			helloAt = time.Now()
			nonce = make([]byte, NonceSize)
			_, _ = rand.Read(nonce)
			body, _ := json.Marshal(Challenge{HelloNonce: h.Nonce, Nonce: nonce})
			if err := write(TypeChallenge, body); err != nil {
				return err
			}
		case TypeReport:
			if nonce == nil {
				if err := refuse("report without a challenge", nil); err != nil {
					return err
				}
				continue
			}
			res := s.check(payload, nonce)
			res.Peer = peer
			res.Started, res.Received = helloAt, time.Now()
			// The launcher learns the result before the guest does, so READY=1 is not held up by
			// the verdict's write.
			if s.OnResult != nil {
				s.OnResult(res)
			}
			if res.Authenticated {
				v := Verdict{Nonce: nonce, Accepted: res.Accepted, Reasons: res.Reasons, NewBoot: res.NewBoot}
				sealed, _ := seal(s.Key, labelVerdict, nonce, v)
				if err := write(TypeVerdict, sealed); err != nil {
					// A key holder can hang up before every verdict: rate-limited.
					s.unauth().Warn("ack: could not send verdict", "peer", peer, "err", err)
				}
			} else {
				s.Refused.Add(1)
				s.unauth().Warn("ack: refused unauthenticated report", "peer", peer, "reason", res.Reasons[0])
			}
			nonce = nil
			if !resync {
				return nil
			}
		default:
			if !resync {
				return refuse(fmt.Sprintf("unexpected message type %d", typ), nil)
			}
		}
	}
}

// check authenticates a report against the outstanding nonce and compares it with what was sent.
func (s *Server) check(payload, nonce []byte) Result {
	if nonce == nil {
		return Result{Reasons: []string{"report without a challenge"}}
	}
	var r Report
	if err := open(s.Key, labelReport, nonce, payload, &r); err != nil {
		// Wrong key (another launch or VM), wrong nonce (a replay) or a forgery look alike here.
		return Result{Reasons: []string{"report not authenticated: " + err.Error()}}
	}
	if err := validateReport(&r); err != nil {
		// Authentic, so the guest's key holder sent it; but none of it is fit to be repeated.
		return Result{Authenticated: true, Reasons: []string{"malformed report: " + err.Error()}}
	}
	res := Result{Authenticated: true, Report: &r}
	if r.Version != Version {
		res.Reasons = append(res.Reasons, fmt.Sprintf("report version %d, want %d", r.Version, Version))
	}
	if !hmac.Equal(r.Nonce, nonce) {
		res.Reasons = append(res.Reasons, "report nonce does not match the challenge")
	}
	if s.VM != "" && r.VM != "" && r.VM != s.VM {
		res.Reasons = append(res.Reasons, fmt.Sprintf("report is for VM %q, this is %q", r.VM, s.VM))
	}
	got := make(map[string]CredentialReport, len(r.Credentials))
	for _, c := range r.Credentials {
		if _, dup := got[c.Name]; dup {
			res.Reasons = append(res.Reasons, fmt.Sprintf("%s: reported twice", c.Name))
		}
		got[c.Name] = c
	}
	sent := make(map[string]bool, len(s.Sent))
	mac := NewCredentialMAC(s.Key)
	for _, c := range s.Sent {
		sent[c.Name] = true
		g, ok := got[c.Name]
		switch {
		case !ok || len(g.MAC) == 0 && (g.Status == credential.StatusOK || g.Status == ""):
			res.Reasons = append(res.Reasons, fmt.Sprintf("%s: not received by the guest", c.Name))
		case len(g.MAC) == 0:
			res.Reasons = append(res.Reasons, fmt.Sprintf("%s: %s in the guest", c.Name, g.Status))
		case !hmac.Equal(g.MAC, mac(c.Name, c.Value.Bytes())) || g.Bytes != c.Value.Len():
			res.Reasons = append(res.Reasons, fmt.Sprintf("%s: guest received %d bytes that differ from the %d sent", c.Name, g.Bytes, c.Value.Len()))
		case g.Status != credential.StatusOK && g.Status != credential.StatusUnexpected:
			// "unexpected" only means the guest's manifest does not list it; whether that
			// matters is the guest's policy, reflected in Report.OK.
			res.Reasons = append(res.Reasons, fmt.Sprintf("%s: %s in the guest", c.Name, g.Status))
		}
	}
	if !r.OK {
		for _, c := range r.Credentials {
			if c.Status != credential.StatusOK && !sent[c.Name] {
				res.Reasons = append(res.Reasons, fmt.Sprintf("%s: %s in the guest", c.Name, c.Status))
			}
		}
		res.Reasons = append(res.Reasons, "guest verification failed")
	}
	res.Reasons = boundReasons(res.Reasons)
	if len(res.Reasons) == 0 {
		res.Accepted = true
		s.mu.Lock()
		res.NewBoot = r.BootID != s.lastBoot
		s.lastBoot = r.BootID
		s.mu.Unlock()
	}
	return res
}

// Bounds of Result.Reasons: a key holder chooses the names its report repeats (up to
// MaxReportCredentials of them, each up to 255 bytes), and the reasons become STATUS=, a log
// line and the verdict.
const (
	MaxReasons      = 16   // reasons kept; the rest are counted in a last "and N more"
	MaxReasonsBytes = 4096 // total bytes of the reasons kept
)

// boundReasons keeps the first reasons within MaxReasons and MaxReasonsBytes and sums up the
// rest as "and N more".
func boundReasons(rs []string) []string {
	total, keep := 0, 0
	for keep < len(rs) && keep < MaxReasons && total+len(rs[keep]) <= MaxReasonsBytes {
		total += len(rs[keep])
		keep++
	}
	if keep == len(rs) {
		return rs
	}
	return append(rs[:keep:keep], fmt.Sprintf("and %d more", len(rs)-keep))
}

// ServeStreamListener accepts stream connections (QEMU connecting to the launcher's chardev
// socket for a virtio-serial port) and serves each with ServeStream, one after another, until
// ctx ends.
func (s *Server) ServeStreamListener(ctx context.Context, l net.Listener) error {
	stop := context.AfterFunc(ctx, func() { l.Close() })
	defer stop()
	for {
		c, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("accept: %w", err)
		}
		_ = s.ServeStream(ctx, c, KindSerial)
		c.Close()
	}
}
