package ack

import (
	"context"
	"crypto/hmac"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"syscall"
	"time"
)

// Conn is what a transport gives the agent: a byte stream with deadlines.
type Conn interface {
	io.ReadWriteCloser
	SetDeadline(time.Time) error
}

// Dialer opens a transport to the host. Each call starts a new exchange.
type Dialer interface {
	Dial(ctx context.Context) (Conn, error)
	// Stream reports whether the transport is a stream without connection boundaries
	// (virtio-serial), where stale frames may arrive and must be skipped.
	Stream() bool
}

// ErrBusy marks an attempt the host turned away before its challenge: the listener's backlog was
// full (EAGAIN from connect on a Unix socket, a reset on vsock) or the connection was closed
// before the challenge (evicted by a flood). Acknowledge retries these at once, without growing
// its backoff, so a flood from inside the guest delays the real agent by one short retry.
var ErrBusy = errors.New("host busy")

// ErrRejected is returned when the host answered with an authenticated rejection; retrying the
// same report cannot change the answer.
var ErrRejected = errors.New("host rejected the report")

// Client is the agent side of one acknowledgement.
type Client struct {
	Key    []byte
	Dialer Dialer
	// Timeout bounds one exchange (dial, hello, challenge, report, verdict). Default 5s.
	Timeout time.Duration
}

// Exchange performs one hello/challenge/report/verdict round. It fills in the report's version
// and nonce. It returns the verdict when the host's answer is authentic; an authentic rejection
// is returned together with ErrRejected.
func (c *Client) Exchange(ctx context.Context, r Report) (Verdict, error) {
	if err := checkKey(c.Key); err != nil {
		return Verdict{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, durationOr(c.Timeout, 5*time.Second))
	defer cancel()
	conn, err := c.Dialer.Dial(ctx)
	if err != nil {
		if errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.ECONNRESET) {
			return Verdict{}, fmt.Errorf("dial: %w: %w", ErrBusy, err)
		}
		return Verdict{}, fmt.Errorf("dial: %w", err)
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	// The hello nonce only tells this exchange's challenge from stale ones on a stream; it need
	// not be unpredictable. It must not wait for entropy: early in a guest's boot getrandom(2)
	// blocks until the kernel's CRNG is ready, about a second in a TCG guest without virtio-rng.
	// math/rand/v2's generator is seeded from the auxiliary vector and never blocks.
	helloNonce := make([]byte, NonceSize)
	for i := range helloNonce {
		helloNonce[i] = byte(mrand.Uint32())
	}
	body, _ := json.Marshal(Hello{Nonce: helloNonce, BootID: r.BootID, MAC: HelloMAC(c.Key, helloNonce, r.BootID)})
	if err := WriteFrame(conn, TypeHello, body); err != nil {
		return Verdict{}, fmt.Errorf("send hello: %w", err)
	}
	fr := NewFrameReader(conn, c.Dialer.Stream())
	var ch Challenge
	for {
		typ, payload, err := fr.Next()
		if err != nil {
			if ctx.Err() == nil && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET)) {
				return Verdict{}, fmt.Errorf("wait for challenge: %w: closed by the host: %w", ErrBusy, err)
			}
			return Verdict{}, fmt.Errorf("wait for challenge: %w", ctxErr(ctx, err))
		}
		if typ != TypeChallenge {
			continue // on a stream: a verdict meant for an earlier run of the agent
		}
		if err := decodeStrict(payload, &ch); err != nil || len(ch.Nonce) != NonceSize {
			return Verdict{}, fmt.Errorf("challenge: %w", ErrBadMessage)
		}
		if hmac.Equal(ch.HelloNonce, helloNonce) {
			break
		}
	}
	r.Version = Version
	r.Nonce = ch.Nonce
	sealed, err := seal(c.Key, labelReport, ch.Nonce, r)
	if err != nil {
		return Verdict{}, err
	}
	if err := WriteFrame(conn, TypeReport, sealed); err != nil {
		return Verdict{}, fmt.Errorf("send report: %w", err)
	}
	for {
		typ, payload, err := fr.Next()
		if err != nil {
			return Verdict{}, fmt.Errorf("wait for verdict: %w", ctxErr(ctx, err))
		}
		if typ != TypeVerdict {
			continue
		}
		var v Verdict
		if err := open(c.Key, labelVerdict, ch.Nonce, payload, &v); err != nil {
			if c.Dialer.Stream() && errors.Is(err, ErrBadMAC) {
				continue // a stale verdict for another nonce
			}
			return Verdict{}, fmt.Errorf("verdict: %w", err)
		}
		if !v.Accepted {
			return v, ErrRejected
		}
		return v, nil
	}
}

func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// Backoff is a capped exponential backoff with jitter.
type Backoff struct {
	Initial time.Duration // first wait; default 100ms
	Max     time.Duration // cap; default 5s
	Jitter  float64       // ± fraction; default 0.2
	Busy    time.Duration // wait after ErrBusy, which does not grow; default 10ms
	// BusyFor is how long a run of ErrBusy attempts is retried at Busy before the growing
	// backoff applies to them too; default 2s.
	BusyFor time.Duration
}

// BusyDelay returns the wait after an attempt the host turned away (ErrBusy): short and
// jittered, so that the agent keeps trying while a flood lasts without spinning.
func (b Backoff) BusyDelay() time.Duration {
	d := durationOr(b.Busy, 10*time.Millisecond)
	return d/2 + time.Duration(mrand.Int64N(int64(d)))
}

// Delay returns the wait before retry n (n ≥ 1).
func (b Backoff) Delay(n int) time.Duration {
	d := durationOr(b.Initial, 100*time.Millisecond)
	limit := durationOr(b.Max, 5*time.Second)
	for i := 1; i < n && d < limit; i++ {
		d *= 2
	}
	d = min(d, limit)
	j := b.Jitter
	if j == 0 {
		j = 0.2
	}
	return time.Duration(float64(d) * (1 + j*(2*mrand.Float64()-1)))
}

// AttemptResult is how one acknowledgement attempt ended. guest-agent exports it as the result
// label of credlink_ack_attempts_total.
type AttemptResult string

const (
	ResultAccepted AttemptResult = "accepted" // the host accepted the report
	ResultRejected AttemptResult = "rejected" // the host refused it authentically: retrying cannot help
	ResultError    AttemptResult = "error"    // transport, timeout or an unauthenticated answer
)

// AttemptResults lists every result, for metrics that export one series per result.
var AttemptResults = []AttemptResult{ResultAccepted, ResultRejected, ResultError}

// Attempt describes one exchange, for metrics and logs.
type Attempt struct {
	N      int
	Result AttemptResult
	RTT    time.Duration
	Err    error
}

// Acknowledge repeats Exchange with backoff until the host accepts, the host rejects
// authentically (retrying cannot help), or ctx ends (the caller's deadline). observe, if not nil,
// sees every attempt.
func (c *Client) Acknowledge(ctx context.Context, r Report, b Backoff, observe func(Attempt)) (Verdict, error) {
	slow := 0               // attempts that failed for a reason other than ErrBusy
	var busySince time.Time // start of the current run of ErrBusy attempts
	for n := 1; ; n++ {
		start := time.Now()
		v, err := c.Exchange(ctx, r)
		a := Attempt{N: n, RTT: time.Since(start), Err: err}
		switch {
		case err == nil:
			a.Result = ResultAccepted
		case errors.Is(err, ErrRejected):
			a.Result = ResultRejected
		default:
			a.Result = ResultError
		}
		if observe != nil {
			observe(a)
		}
		if a.Result != ResultError {
			return v, err
		}
		// Turned away by a flood: retry at once, for a while. A host that keeps resetting
		// (no listener on a vsock port looks the same) gets the growing backoff after BusyFor.
		var delay time.Duration
		if errors.Is(err, ErrBusy) {
			if busySince.IsZero() {
				busySince = time.Now()
			}
		} else {
			busySince = time.Time{}
		}
		if !busySince.IsZero() && time.Since(busySince) < durationOr(b.BusyFor, 2*time.Second) {
			delay = b.BusyDelay()
		} else {
			slow++
			delay = b.Delay(slow)
		}
		select {
		case <-ctx.Done():
			return Verdict{}, fmt.Errorf("no acknowledgement after %d attempts: %w (last: %v)", n, ctx.Err(), err)
		case <-time.After(delay):
		}
	}
}
