package launch

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
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

// guestNotifyDeadline bounds one notification connection.
const guestNotifyDeadline = 2 * time.Second

// guestNotifyConns bounds the notification connections served at once; further ones are closed
// at once. PID 1 sends one at a time; on cloud-hypervisor's hybrid vsock any guest process can
// connect, and each connection may take guestNotifyDeadline.
const guestNotifyConns = 64

// serveGuestNotify accepts notification connections until ctx ends and sends every parsed
// message to out (dropping them if nobody listens). Refusals go to lim: the peer is not
// authenticated.
func serveGuestNotify(ctx context.Context, l net.Listener, out chan<- sdnotify.Message, lim *logging.Limiter) {
	stop := context.AfterFunc(ctx, func() { l.Close() })
	defer stop()
	busy := make(chan struct{}, guestNotifyConns)
	for {
		c, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(5 * time.Millisecond) // out of descriptors under a flood: do not spin
			continue
		}
		select {
		case busy <- struct{}{}:
		default:
			c.Close()
			lim.Warn("refused guest notification: too many at once")
			continue
		}
		go func() {
			defer func() { <-busy }()
			defer c.Close()
			// The guest's PID 1 binds a privileged source port; anything else on this vsock
			// port is not systemd (hybrid vsock tells us nothing about the peer: the socket
			// path is the identity).
			if a, ok := c.RemoteAddr().(*vsock.Addr); ok && a.Port >= 1024 {
				lim.Warn("refused guest notification from an unprivileged port", "peer", a.String())
				return
			}
			_ = c.SetDeadline(time.Now().Add(guestNotifyDeadline))
			b, err := io.ReadAll(io.LimitReader(c, 4096))
			if err != nil && len(b) == 0 {
				return
			}
			m := sdnotify.Parse(string(b), time.Now())
			select {
			case out <- m:
			default:
			}
		}()
	}
}

// logGuestMessage logs what the guest's systemd said. Its words are a peer's: bounded, escaped
// (sdnotify.Text) and rate-limited like everything unauthenticated.
func logGuestMessage(lim *logging.Limiter, m sdnotify.Message) {
	if s, ok := m.Fields["STATUS"]; ok {
		lim.Log(slog.LevelInfo, "guest systemd", "status", sdnotify.Text(s, 256))
	}
	if s, ok := m.Fields["EXIT_STATUS"]; ok {
		lim.Log(slog.LevelInfo, "guest systemd is shutting down", "exit_status", sdnotify.Text(s, 64))
	}
	if m.Fields["READY"] == "1" {
		lim.Log(slog.LevelInfo, "guest systemd reported READY=1")
	}
}
