package ack

import (
	"context"

	"github.com/mdlayher/vsock"
)

// VsockDialer connects over AF_VSOCK from the guest.
type VsockDialer struct{ CID, Port uint32 }

func (d VsockDialer) Dial(ctx context.Context) (Conn, error) {
	return vsock.DialContext(ctx, d.CID, d.Port, nil)
}

func (VsockDialer) Stream() bool { return false }
