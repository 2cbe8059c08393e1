package ack

import (
	"context"
	"net"
)

// UnixDialer connects to a Unix socket (local mode, tests, and the host end of hybrid vsock).
type UnixDialer struct{ Path string }

func (d UnixDialer) Dial(ctx context.Context) (Conn, error) {
	var nd net.Dialer
	c, err := nd.DialContext(ctx, "unix", d.Path)
	if err != nil {
		return nil, err
	}
	return c.(*net.UnixConn), nil
}

func (UnixDialer) Stream() bool { return false }
