package sdnotify

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Message is one datagram, split into its KEY=VALUE assignments.
type Message struct {
	Raw      string
	Fields   map[string]string
	Received time.Time
}

// Parse splits a notification into its newline-separated KEY=VALUE assignments, as systemd's
// manager does (src/core/manager.c, manager_dispatch_notify_fd → strv_split_newlines): lines
// without '=' are ignored and a later assignment of a key replaces an earlier one. The values
// are the sender's bytes: a caller that echoes them must bound and escape them.
func Parse(raw string, received time.Time) Message {
	m := Message{Raw: raw, Fields: map[string]string{}, Received: received}
	for _, line := range strings.Split(raw, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			m.Fields[k] = v
		}
	}
	return m
}

// Listener receives notifications.
type Listener struct {
	Path string
	conn *net.UnixConn

	mu   sync.Mutex
	all  []Message
	cond *sync.Cond
	err  error
}

// Listen creates a notify socket named "notify" in dir and starts collecting messages.
func Listen(dir string) (*Listener, error) {
	p := filepath.Join(dir, "notify")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: p, Net: "unixgram"})
	if err != nil {
		return nil, err
	}
	l := &Listener{Path: p, conn: c}
	l.cond = sync.NewCond(&l.mu)
	go l.loop()
	return l, nil
}

func (l *Listener) loop() {
	buf := make([]byte, 64<<10)
	for {
		n, err := l.conn.Read(buf)
		l.mu.Lock()
		if err != nil {
			l.err = err
			l.cond.Broadcast()
			l.mu.Unlock()
			return
		}
		l.all = append(l.all, Parse(string(buf[:n]), time.Now()))
		l.cond.Broadcast()
		l.mu.Unlock()
	}
}

// Send delivers one notification to the listener, as a service would to $NOTIFY_SOCKET. It is
// the Notify hook of code that must not rely on the process-wide environment (tests, the demo,
// benchmarks running many launches in one process).
func (l *Listener) Send(state string) error {
	c, err := net.Dial("unixgram", l.Path)
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.Write([]byte(state))
	return err
}

// Close stops listening and removes the socket.
func (l *Listener) Close() error {
	err := l.conn.Close()
	os.Remove(l.Path)
	return err
}

// Messages returns every message received so far.
func (l *Listener) Messages() []Message {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Message(nil), l.all...)
}

// ErrTimeout is returned by Wait when no matching message arrived in time.
var ErrTimeout = errors.New("no matching notification")

// Wait returns the first message (from the start) for which match is true, waiting up to d.
func (l *Listener) Wait(d time.Duration, match func(Message) bool) (Message, error) {
	return l.WaitNth(d, 1, match)
}

// WaitNth returns the n-th message (from the start, n ≥ 1) for which match is true, waiting up
// to d: the second STATUS= of a daemon is the event that says its first reload is done.
func (l *Listener) WaitNth(d time.Duration, n int, match func(Message) bool) (Message, error) {
	deadline := time.Now().Add(d)
	t := time.AfterFunc(d, func() { l.mu.Lock(); l.cond.Broadcast(); l.mu.Unlock() })
	defer t.Stop()
	l.mu.Lock()
	defer l.mu.Unlock()
	for {
		seen := 0
		for _, m := range l.all {
			if match(m) {
				if seen++; seen == n {
					return m, nil
				}
			}
		}
		if l.err != nil || time.Now().After(deadline) {
			return Message{}, fmt.Errorf("%w within %v (got %d messages)", ErrTimeout, d, len(l.all))
		}
		l.cond.Wait()
	}
}

// Has matches messages that set key to value.
func Has(key, value string) func(Message) bool {
	return func(m Message) bool { v, ok := m.Fields[key]; return ok && v == value }
}

// HasPrefix matches messages that set key to a value starting with prefix.
func HasPrefix(key, prefix string) func(Message) bool {
	return func(m Message) bool { v, ok := m.Fields[key]; return ok && strings.HasPrefix(v, prefix) }
}
