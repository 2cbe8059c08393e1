package ack

import (
	"bytes"
	"encoding/binary"
	"io"
	"testing"
	"testing/iotest"
)

// header is a frame header whose checksum holds, announcing n payload bytes.
func header(typ byte, n int) []byte {
	var h [headerLen]byte
	copy(h[:4], magic[:])
	h[4], h[5] = Version, typ
	binary.BigEndian.PutUint32(h[8:], uint32(n))
	binary.BigEndian.PutUint32(h[12:], crc32c(h[:12]))
	return h[:]
}

// TestResyncCostIsLinear: whatever a guest writes on the virtio-serial stream, resynchronising
// moves each byte O(1) times. The hostile input is one valid header announcing MaxPayload, a
// payload of magics with no valid header among them, and a wrong payload checksum: a reader
// that copied the buffer down per skipped byte or magic moved ~130k x 512 KiB here.
func TestResyncCostIsLinear(t *testing.T) {
	magics := bytes.Repeat(magic[:], MaxPayload/4)
	hostile := append(append(header(TypeReport, MaxPayload), magics...), 0, 0, 0, 0)
	var headers []byte // valid headers announcing MaxPayload, each torn by the next
	for len(headers) < MaxPayload {
		headers = append(headers, header(TypeReport, MaxPayload)...)
	}
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"magics inside a frame with a bad checksum", hostile},
		{"magics alone", magics},
		{"torn headers", headers},
		{"zeros", make([]byte, 2<<20)},
	} {
		for _, chunked := range []bool{false, true} {
			var r io.Reader = bytes.NewReader(tc.in)
			if chunked {
				r = iotest.HalfReader(r) // short reads, as from a serial port
			}
			fr := NewFrameReader(r, true)
			_, _, err := fr.Next()
			if err != io.EOF && err != io.ErrUnexpectedEOF {
				t.Errorf("%s: Next: %v, want end of stream", tc.name, err)
			}
			if fr.moved > 4*len(tc.in) {
				t.Errorf("%s (chunked %v): %d input bytes moved %d bytes (%.0fx): resync is not linear", tc.name, chunked, len(tc.in), fr.moved, float64(fr.moved)/float64(len(tc.in)))
			}
			if fr.Skipped > len(tc.in) {
				t.Errorf("%s: skipped %d of %d bytes", tc.name, fr.Skipped, len(tc.in))
			}
		}
	}
}
