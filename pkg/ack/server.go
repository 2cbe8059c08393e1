package ack

import (
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
	"time"

	"github.com/credlink/credlink/pkg/credential"
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

// Server is the host side of the acknowledgement: it challenges every hello, verifies reports
// against what the launcher sent, and answers with a MACed verdict.
type Server struct {
	Key  []byte
	Sent []credential.Credential // what was delivered, control credentials excluded
	VM   string                  // expected VM name; empty accepts any

	// ExchangeTimeout bounds a whole exchange on a connection transport (hello to verdict), so
	// silent or slow peers cannot hold the listener. Default 10s.
	ExchangeTimeout time.Duration
	// WriteTimeout bounds each write. Default 5s.
	WriteTimeout time.Duration
	// MaxConns bounds concurrently served connections; further ones are closed at once.
	// Default 1024.
	MaxConns int
	// OnResult is called for every report, authenticated or not, from the serving goroutine.
	OnResult func(Result)
	Logger   *slog.Logger

	mu       sync.Mutex
	lastBoot string
	active   atomic.Int64
	// Dropped counts connections closed at once because MaxConns were busy.
	Dropped atomic.Int64
}

func (s *Server) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.New(slog.DiscardHandler)
}

func durationOr(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// Serve accepts connections until ctx ends or the listener fails, serving each in its own
// goroutine under the exchange deadline. It closes l when ctx ends.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	if err := checkKey(s.Key); err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { l.Close() })
	defer stop()
	maxConns := int64(s.MaxConns)
	if maxConns <= 0 {
		maxConns = 1024
	}
	var wg sync.WaitGroup
	defer wg.Wait()
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
			return fmt.Errorf("accept: %w", err)
		}
		if s.active.Add(1) > maxConns {
			s.active.Add(-1)
			s.Dropped.Add(1)
			c.Close()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer s.active.Add(-1)
			defer c.Close()
			stop := context.AfterFunc(ctx, func() { c.Close() })
			defer stop()
			_ = c.SetDeadline(time.Now().Add(durationOr(s.ExchangeTimeout, 10*time.Second)))
			s.serve(c, c.RemoteAddr().String(), false)
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
	err := s.serve(rw, peer, true)
	if ctx.Err() != nil {
		return nil
	}
	return err
}

type deadliner interface{ SetWriteDeadline(time.Time) error }

// serve runs exchanges on one stream. On connection transports (resync false) it returns after
// the first verdict or the first malformed frame.
func (s *Server) serve(rw io.ReadWriter, peer string, resync bool) error {
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
	for {
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
				log.Warn("ack: malformed hello", "err", err)
				if !resync {
					return ErrBadMessage
				}
				continue
			}
			helloAt = time.Now()
			nonce = make([]byte, NonceSize)
			_, _ = rand.Read(nonce)
			body, _ := json.Marshal(Challenge{HelloNonce: h.Nonce, Nonce: nonce})
			if err := write(TypeChallenge, body); err != nil {
				return err
			}
		case TypeReport:
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
					log.Warn("ack: could not send verdict", "err", err)
				}
			} else {
				log.Warn("ack: refused unauthenticated report", "reason", res.Reasons[0])
			}
			nonce = nil
			if !resync {
				return nil
			}
		default:
			if !resync {
				return fmt.Errorf("%w: unexpected message type %d", ErrBadMessage, typ)
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
	for _, c := range s.Sent {
		sent[c.Name] = true
		g, ok := got[c.Name]
		switch {
		case !ok || len(g.MAC) == 0 && (g.Status == credential.StatusOK || g.Status == ""):
			res.Reasons = append(res.Reasons, fmt.Sprintf("%s: not received by the guest", c.Name))
		case len(g.MAC) == 0:
			res.Reasons = append(res.Reasons, fmt.Sprintf("%s: %s in the guest", c.Name, guestStatus(g.Status)))
		case !hmac.Equal(g.MAC, CredentialMAC(s.Key, c.Name, c.Value.Bytes())) || g.Bytes != c.Value.Len():
			res.Reasons = append(res.Reasons, fmt.Sprintf("%s: guest received %d bytes that differ from the %d sent", c.Name, g.Bytes, c.Value.Len()))
		case g.Status != credential.StatusOK && g.Status != credential.StatusUnexpected:
			// "unexpected" only means the guest's manifest does not list it; whether that
			// matters is the guest's policy, reflected in Report.OK.
			res.Reasons = append(res.Reasons, fmt.Sprintf("%s: %s in the guest", c.Name, guestStatus(g.Status)))
		}
	}
	if !r.OK {
		for _, c := range r.Credentials {
			if c.Status != credential.StatusOK && !sent[c.Name] {
				res.Reasons = append(res.Reasons, fmt.Sprintf("%s: %s in the guest", guestName(c.Name), guestStatus(c.Status)))
			}
		}
		res.Reasons = append(res.Reasons, "guest verification failed")
	}
	if len(res.Reasons) == 0 {
		res.Accepted = true
		s.mu.Lock()
		res.NewBoot = r.BootID != s.lastBoot
		s.lastBoot = r.BootID
		s.mu.Unlock()
	}
	return res
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
		_ = s.ServeStream(ctx, c, "serial")
		c.Close()
	}
}

// The reasons go into the launcher's STATUS= and logs; a report, even an authentic one, comes
// from a guest that may be hostile, so its words are echoed only when they are known ones (a
// newline in a STATUS= line would start a new notify assignment, such as READY=1).

// guestStatus is a reported status fit to echo: a known one, else a placeholder.
func guestStatus(s credential.Status) string {
	if s.Known() {
		return string(s)
	}
	return "an unknown status"
}

// guestName is a credential name the host did not send, fit to echo: a valid systemd name
// (printable ASCII, at most 255 bytes, see credential.ValidName), else a placeholder.
func guestName(name string) string {
	if credential.ValidName(name) == nil {
		return name
	}
	return "a credential with an invalid name"
}
