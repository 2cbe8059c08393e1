package ack

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"sync"
)

// Frame layout (all integers big-endian):
//
//	0   4  magic "CLAK"
//	4   1  protocol version (1)
//	5   1  message type
//	6   2  reserved, zero
//	8   4  payload length, at most MaxPayload
//	12  4  CRC-32C of bytes 0..11
//	16  n  payload
//	16+n 4 CRC-32C of the payload
//
// The header checksum lets a reader on a stream without connection boundaries (virtio-serial)
// reject a false magic in garbage at once instead of waiting for a bogus payload length; the
// payload checksum lets it resynchronise after a torn frame. Checksums are for framing only:
// authenticity comes from the MACs inside the messages.
const (
	Version    = 1
	headerLen  = 16
	trailerLen = 4
	// MaxPayload bounds every message. The largest report is not 255 credentials with 255-byte
	// names (~100 KiB) but the most credentials the SMBIOS budget admits, now that several Type
	// 11 structures carry them: ~2,360 empty ones with 1–2 byte names, ~270 KiB
	// (TestReportFitsTheLargestDelivery).
	MaxPayload = 512 << 10
	// MaxUnprovenPayload bounds every frame a peer sends before it holds a challenge, i.e.
	// before it has proven the key: only a hello is expected then, and a hello is under 200
	// bytes (two base64 32-byte values and a boot id of at most 64 bytes). Without it each
	// unauthenticated connection could make the launcher buffer MaxPayload.
	MaxUnprovenPayload = 1 << 10
)

var magic = [4]byte{'C', 'L', 'A', 'K'}

// crc32c is CRC-32C (Castagnoli), the frames' checksum. Short inputs — headers, hellos,
// challenges, verdicts, reports of a few credentials — go through a plain 256-entry table:
// hash/crc32's Castagnoli tables (the SSE4.2 three-way path) cost about 1.3 million instructions
// to build on first use, a quarter of guest-agent's start-up to its first ack byte (make bench,
// "instr"), while this table costs about 10,000. From crc32cLong bytes on, hash/crc32 is used
// (built once, then ~20× faster per byte), so that a peer sending large frames costs the host
// no more than before.
func crc32c(b []byte) uint32 {
	if len(b) >= crc32cLong {
		return crc32.Checksum(b, castagnoli())
	}
	crc := ^uint32(0)
	for _, c := range b {
		crc = crc32cTable[byte(crc)^c] ^ (crc >> 8)
	}
	return ^crc
}

const crc32cLong = 4096

var castagnoli = sync.OnceValue(func() *crc32.Table { return crc32.MakeTable(crc32.Castagnoli) })

var crc32cTable = func() (t [256]uint32) {
	for i := range t {
		c := uint32(i)
		for range 8 {
			if c&1 == 1 {
				c = c>>1 ^ crc32.Castagnoli
			} else {
				c >>= 1
			}
		}
		t[i] = c
	}
	return t
}()

// Message types.
const (
	TypeHello     byte = 1 // guest → host: please challenge me
	TypeChallenge byte = 2 // host → guest: nonce for the next report
	TypeReport    byte = 3 // guest → host: MAC || JSON report
	TypeVerdict   byte = 4 // host → guest: MAC || JSON verdict
)

// Framing errors.
var (
	ErrBadFrame   = errors.New("malformed frame")
	ErrFrameLarge = errors.New("frame exceeds size limit")
	ErrVersion    = errors.New("unsupported protocol version")
)

// appendFrame encodes one frame.
func appendFrame(dst []byte, typ byte, payload []byte) []byte {
	var h [headerLen]byte
	copy(h[:4], magic[:])
	h[4] = Version
	h[5] = typ
	binary.BigEndian.PutUint32(h[8:], uint32(len(payload)))
	binary.BigEndian.PutUint32(h[12:], crc32c(h[:12]))
	dst = append(dst, h[:]...)
	dst = append(dst, payload...)
	return binary.BigEndian.AppendUint32(dst, crc32c(payload))
}

// WriteFrame writes one frame in a single Write call, so that frames from concurrent writers on
// a stream never interleave below the frame level.
func WriteFrame(w io.Writer, typ byte, payload []byte) error {
	if len(payload) > MaxPayload {
		return fmt.Errorf("%w: %d bytes", ErrFrameLarge, len(payload))
	}
	_, err := w.Write(appendFrame(make([]byte, 0, headerLen+len(payload)+trailerLen), typ, payload))
	return err
}

// FrameReader reads frames from a byte stream.
//
// In strict mode (connection transports: Unix, vsock) the first malformed byte is an error and
// the caller drops the connection. In resync mode (virtio-serial, where the stream outlives guest
// reboots and may carry half a frame from before) it skips bytes until a valid frame starts, and
// counts what it skipped.
type FrameReader struct {
	r io.Reader
	// buf is the unconsumed bytes, a window into a backing array: consuming bytes moves its
	// start (no copy); reserve compacts or grows the array only when the tail runs short, and
	// compacts only when the consumed head is at least as long as what it keeps, so every byte
	// is moved O(1) times on average however a hostile stream makes the reader resynchronise.
	buf    []byte
	base   []byte // the backing array
	resync bool
	// Limit bounds the payload length a header may announce; 0 means MaxPayload. A larger one
	// is ErrFrameLarge (in resync mode: skipped). Server lowers it until a challenge is out.
	Limit   int
	Skipped int // bytes discarded while resynchronising
	moved   int // bytes copied by compaction and growth, for tests of the resync's cost
}

// NewFrameReader returns a reader; resync selects stream mode (see FrameReader).
func NewFrameReader(r io.Reader, resync bool) *FrameReader {
	return &FrameReader{r: r, resync: resync}
}

// reserve makes room for at least 512 more bytes after buf and for buf to reach n bytes.
func (f *FrameReader) reserve(n int) {
	if cap(f.buf)-len(f.buf) >= 512 && cap(f.buf) >= n {
		return
	}
	head := 0 // consumed bytes before buf in the backing array
	if f.base != nil {
		head = cap(f.base) - cap(f.buf)
	}
	need := max(n, len(f.buf)+512)
	if head >= len(f.buf) && cap(f.base) >= need {
		f.buf = f.base[:copy(f.base, f.buf)]
	} else {
		f.base = make([]byte, len(f.buf), max(2*cap(f.base), len(f.buf)+4096, need))
		f.buf = f.base[:copy(f.base, f.buf)]
	}
	f.moved += len(f.buf)
}

// fill reads until at least n bytes are buffered.
func (f *FrameReader) fill(n int) error {
	for len(f.buf) < n {
		f.reserve(n)
		m, err := f.r.Read(f.buf[len(f.buf):cap(f.buf)])
		f.buf = f.buf[:len(f.buf)+m]
		if err != nil {
			if len(f.buf) >= n {
				return nil
			}
			if errors.Is(err, io.EOF) && len(f.buf) > 0 {
				return io.ErrUnexpectedEOF
			}
			return err
		}
	}
	return nil
}

// ErrTornFrame is a frame cut short on a stream: a valid header for the next frame arrived
// before this one's payload was complete (its writer died mid-frame, or a guest rebooted).
var ErrTornFrame = fmt.Errorf("%w: torn frame", ErrBadFrame)

// fillWatching is fill for the payload of a frame on a resynchronising stream: while the
// payload is incomplete it watches the arriving bytes for the start of another frame — a magic
// followed by a header whose checksum holds — and gives up on this one as torn when it sees
// one, so that the next frame (the agent's retry) is read at once instead of being swallowed
// as payload until the announced length has arrived. A valid 16-byte header inside a genuine
// payload would need a 32-bit magic and a 32-bit checksum to match by chance: payloads are
// JSON, which carries no raw control bytes, behind at most a 32-byte MAC.
func (f *FrameReader) fillWatching(total int) error {
	scanned := headerLen
	for len(f.buf) < total {
		// Read whatever is available, at most up to the end of this frame.
		f.reserve(0)
		end := min(cap(f.buf), total)
		if end <= len(f.buf) {
			end = cap(f.buf)
		}
		m, err := f.r.Read(f.buf[len(f.buf):end])
		f.buf = f.buf[:len(f.buf)+m]
		for ; scanned+headerLen <= len(f.buf) && scanned < total; scanned++ {
			if f.buf[scanned] == magic[0] && validHeader(f.buf[scanned:scanned+headerLen]) {
				return ErrTornFrame
			}
		}
		if err != nil {
			if len(f.buf) >= total {
				return nil
			}
			if errors.Is(err, io.EOF) && len(f.buf) > 0 {
				return io.ErrUnexpectedEOF
			}
			return err
		}
	}
	return nil
}

func validHeader(h []byte) bool {
	return [4]byte(h[:4]) == magic && binary.BigEndian.Uint32(h[12:]) == crc32c(h[:12])
}

// discard consumes n buffered bytes without copying (see buf).
func (f *FrameReader) discard(n int) {
	f.buf = f.buf[n:]
}

// Next returns the next frame's type and payload. The payload is a fresh slice.
func (f *FrameReader) Next() (byte, []byte, error) {
	for {
		typ, payload, err := f.try()
		if err == nil {
			return typ, payload, nil
		}
		if !f.resync || !(errors.Is(err, ErrBadFrame) || errors.Is(err, ErrFrameLarge) || errors.Is(err, ErrVersion)) {
			return 0, nil, err
		}
		// Drop one byte and skip to the next magic in one pass over what is buffered.
		f.discard(1)
		f.Skipped++
		i := bytes.Index(f.buf, magic[:])
		if i < 0 {
			i = max(len(f.buf)-3, 0) // a magic may straddle the next read
		}
		f.discard(i)
		f.Skipped += i
	}
}

func (f *FrameReader) try() (byte, []byte, error) {
	if err := f.fill(headerLen); err != nil {
		return 0, nil, err
	}
	h := f.buf[:headerLen]
	if [4]byte(h[:4]) != magic {
		return 0, nil, fmt.Errorf("%w: bad magic", ErrBadFrame)
	}
	if binary.BigEndian.Uint32(h[12:]) != crc32c(h[:12]) {
		return 0, nil, fmt.Errorf("%w: header checksum", ErrBadFrame)
	}
	if h[4] != Version {
		return 0, nil, fmt.Errorf("%w: %d", ErrVersion, h[4])
	}
	typ := h[5]
	n := binary.BigEndian.Uint32(h[8:])
	limit := MaxPayload
	if f.Limit > 0 {
		limit = min(f.Limit, MaxPayload)
	}
	if n > uint32(limit) {
		return 0, nil, fmt.Errorf("%w: %d bytes announced", ErrFrameLarge, n)
	}
	total := headerLen + int(n) + trailerLen
	if f.resync {
		if err := f.fillWatching(total); err != nil {
			return 0, nil, err
		}
	} else if err := f.fill(total); err != nil {
		return 0, nil, err
	}
	payload := f.buf[headerLen : headerLen+int(n)]
	if binary.BigEndian.Uint32(f.buf[headerLen+int(n):]) != crc32c(payload) {
		return 0, nil, fmt.Errorf("%w: payload checksum", ErrBadFrame)
	}
	out := append([]byte(nil), payload...)
	f.discard(total)
	return typ, out, nil
}
