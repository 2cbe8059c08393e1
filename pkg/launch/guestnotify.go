package launch

import (
	"container/list"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"regexp"
	"sync"
	"time"

	"github.com/mdlayher/vsock"

	"github.com/credlink/credlink/pkg/logging"
	"github.com/credlink/credlink/pkg/sdnotify"
)

// The guest's own readiness (--wait-guest-boot): systemd ≥ 254 in the guest sends READY=1,
// STATUS=… and at shutdown EXIT_STATUS=… to the address in the vmm.notify_socket credential.
// On stream sockets it opens one connection per message, half-closes and waits for EOF, so a
// host that does not close at once stalls the guest's boot (microvm.nix issue 568: 117 s → 5.7 s):
// every connection here is read to EOF and closed immediately, with a short deadline.

// guestMessage is one notification from the guest's PID 1 and where it came from (for the log:
// PID 1 connects from a privileged port).
type guestMessage struct {
	sdnotify.Message
	Peer string
}

// guestNotifyDeadline bounds one notification connection.
const guestNotifyDeadline = 2 * time.Second

// guestNotifyFirstByte bounds the wait for a connection's first byte: PID 1 writes its whole
// message right after connecting, so a connection silent for this long is not systemd, and
// holds a slot no longer.
const guestNotifyFirstByte = 500 * time.Millisecond

// guestNotifyConns bounds the notification connections served at once. PID 1 sends one at a
// time; on cloud-hypervisor's hybrid vsock any guest process can connect, and each connection
// may take guestNotifyDeadline. When all are busy, a new connection evicts the oldest one that
// has sent nothing yet, else the oldest one: PID 1's message is read within microseconds of its
// connection, so holders cannot crowd it out (as ack.Server.admit does for the ack).
const guestNotifyConns = 64

// notifySlots is the table of served notification connections, oldest first.
type notifySlots struct {
	mu    sync.Mutex
	conns list.List // of *notifyConn
}

type notifyConn struct {
	c     net.Conn
	spoke bool          // has sent a byte
	elem  *list.Element // nil once evicted or released
}

// admit adds c, evicting one connection first when max are served; it returns the evicted one's
// state for the log (spoke), and whether one was evicted.
func (t *notifySlots) admit(c net.Conn, max int) (nc *notifyConn, evicted, evictedSpoke bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.conns.Len() >= max {
		victim := t.conns.Front()
		for e := victim; e != nil; e = e.Next() {
			if !e.Value.(*notifyConn).spoke {
				victim = e
				break
			}
		}
		old := t.conns.Remove(victim).(*notifyConn)
		old.elem = nil
		old.c.Close()
		evicted, evictedSpoke = true, old.spoke
	}
	nc = &notifyConn{c: c}
	nc.elem = t.conns.PushBack(nc)
	return nc, evicted, evictedSpoke
}

func (t *notifySlots) spoke(nc *notifyConn) {
	t.mu.Lock()
	nc.spoke = true
	t.mu.Unlock()
}

func (t *notifySlots) release(nc *notifyConn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if nc.elem != nil {
		t.conns.Remove(nc.elem)
		nc.elem = nil
	}
}

// serveGuestNotify accepts notification connections until ctx ends and sends every parsed
// message to out (dropping them if nobody listens). Refusals go to lim: the peer is not
// authenticated.
func serveGuestNotify(ctx context.Context, l net.Listener, out chan<- guestMessage, lim *logging.Limiter) {
	stop := context.AfterFunc(ctx, func() { l.Close() })
	defer stop()
	var t notifySlots
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				t.closeAll()
				return
			}
			time.Sleep(5 * time.Millisecond) // out of descriptors under a flood: do not spin
			continue
		}
		nc, evicted, spoke := t.admit(c, guestNotifyConns)
		if evicted {
			lim.Warn("guest notification connection closed: too many at once", "had_sent", spoke)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer t.release(nc)
			defer c.Close()
			// The guest's PID 1 binds a privileged source port; anything else on this vsock
			// port is not systemd (hybrid vsock tells us nothing about the peer: the socket
			// path is the identity).
			if a, ok := c.RemoteAddr().(*vsock.Addr); ok && a.Port >= 1024 {
				lim.Warn("refused guest notification from an unprivileged port", "peer", a.String())
				return
			}
			accepted := time.Now()
			_ = c.SetDeadline(accepted.Add(guestNotifyFirstByte))
			b := make([]byte, 4096)
			n, err := c.Read(b)
			if n == 0 {
				return
			}
			t.spoke(nc)
			if err == nil {
				_ = c.SetDeadline(accepted.Add(guestNotifyDeadline))
				rest, _ := io.ReadAll(io.LimitReader(c, int64(len(b)-n)))
				n += copy(b[n:], rest)
			}
			m := guestMessage{sdnotify.Parse(string(b[:n]), time.Now()), c.RemoteAddr().String()}
			select {
			case out <- m:
			default:
			}
		}()
	}
}

func (t *notifySlots) closeAll() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for e := t.conns.Front(); e != nil; e = e.Next() {
		e.Value.(*notifyConn).c.Close()
	}
}

// logGuestMessage logs what the guest's systemd said. Its words are a peer's: bounded, escaped
// (sdnotify.Text) and rate-limited like everything unauthenticated; a status that repeats the
// last one but for its numbers is only counted (st).
func logGuestMessage(lim *logging.Limiter, st *statusLog, m guestMessage) {
	if s, ok := m.Fields["STATUS"]; ok {
		if repeats, ok := st.observe(s, m.Received); ok {
			lim.Log(slog.LevelInfo, "guest systemd", "status", sdnotify.Text(s, 256), "repeats_suppressed", repeats)
		}
	}
	if s, ok := m.Fields["EXIT_STATUS"]; ok {
		lim.Log(slog.LevelInfo, "guest systemd is shutting down", "exit_status", sdnotify.Text(s, 64))
	}
	if m.Fields["READY"] == "1" {
		lim.Log(slog.LevelInfo, "guest systemd reported READY=1", "peer", m.Peer)
	}
}

// statusLog decides which of the guest's STATUS= lines reach the host's log. systemd 254 sends
// "User job X/start running (43s / no limit)..." twice a second, each over a new connection,
// for as long as a start job waits (measured: shared/reference/nested-lab, 2 min 22 s of it;
// test/nested TestSystemd254), and an agent that never gets READY waits forever. A line is
// logged when it differs from the last logged one other than in its numbers and durations;
// repeats are counted, and an unchanged status is logged again at most once per
// statusRepeatEvery, so the journal gets O(changes + minutes) lines, not two a second.
type statusLog struct {
	last       string    // the last logged status, numbers folded
	suppressed int       // repeats since the last log line
	since      time.Time // when the last line was logged
	total      int       // repeats suppressed over the launch
}

// statusRepeatEvery bounds how often an unchanged status is logged again.
const statusRepeatEvery = time.Minute

// observe reports whether status should be logged, and how many repeats it ends.
func (s *statusLog) observe(status string, now time.Time) (repeats int, ok bool) {
	folded := foldDigits(status)
	if folded == s.last && now.Sub(s.since) < statusRepeatEvery {
		s.suppressed++
		s.total++
		return 0, false
	}
	repeats, s.suppressed = s.suppressed, 0
	s.last, s.since = folded, now
	return repeats, true
}

// numbersAndDurations matches numbers and systemd's formatted durations ("43s", "1min 1s",
// "2h 5min 3.5s").
var numbersAndDurations = regexp.MustCompile(`\d+(\.\d+)?(y|month|w|d|h|min|ms|us|s)?( \d+(\.\d+)?(y|month|w|d|h|min|ms|us|s)?)*`)

// foldDigits replaces every number or duration with '#': "43s / no limit" and "1min 1s / no
// limit" are the same status.
func foldDigits(s string) string {
	return numbersAndDurations.ReplaceAllLiteralString(s, "#")
}
