package sdnotify

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/coreos/go-systemd/v22/daemon"
)

// Field is one KEY=VALUE assignment of a notification datagram.
type Field struct {
	Key   string
	Value string
}

// The fields credlink sends (sd_notify(3)).
var (
	Ready    = Field{"READY", "1"}
	Stopping = Field{"STOPPING", "1"}
	Watchdog = Field{"WATCHDOG", "1"}
)

// Status is the STATUS= field; s must already be safe (see Encode).
func Status(s string) Field { return Field{"STATUS", s} }

// ErrUnsafeField is returned by Encode for a field that would change the datagram's meaning.
var ErrUnsafeField = errors.New("unsafe notification field")

// MaxValue bounds one field's value. systemd accepts datagrams up to its receive buffer, but a
// STATUS= longer than this is not useful to anyone reading systemctl status.
const MaxValue = 4096

// Encode joins fields into one datagram. systemd splits a datagram at every newline and reads
// each line as its own assignment (src/core/manager.c manager_dispatch_notify_fd →
// strv_split_newlines), so a newline inside a value would let whoever chose that value set
// READY=1, MAINPID= or any other field: Encode refuses it, along with NUL (which ends the
// datagram for C readers), other control characters, values over MaxValue bytes, and keys that
// are not upper-case letters, digits and underscores.
func Encode(fields ...Field) (string, error) {
	if len(fields) == 0 {
		return "", fmt.Errorf("%w: no fields", ErrUnsafeField)
	}
	var b strings.Builder
	for i, f := range fields {
		if f.Key == "" || strings.IndexFunc(f.Key, func(r rune) bool {
			return !(r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_')
		}) >= 0 {
			return "", fmt.Errorf("%w: key %q", ErrUnsafeField, f.Key)
		}
		if len(f.Value) > MaxValue {
			return "", fmt.Errorf("%w: %s= is %d bytes, the limit is %d", ErrUnsafeField, f.Key, len(f.Value), MaxValue)
		}
		if i := strings.IndexFunc(f.Value, func(r rune) bool { return r < 0x20 || r == 0x7f }); i >= 0 {
			return "", fmt.Errorf("%w: %s= contains control character %#x at byte %d", ErrUnsafeField, f.Key, f.Value[i], i)
		}
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(f.Key)
		b.WriteByte('=')
		b.WriteString(f.Value)
	}
	return b.String(), nil
}

// Notify sends fields to $NOTIFY_SOCKET (nothing when it is unset), refusing unsafe fields
// without sending any of them.
func Notify(fields ...Field) error {
	s, err := Encode(fields...)
	if err != nil {
		return err
	}
	_, err = daemon.SdNotify(false, s)
	return err
}

// Text makes text whose bytes the caller did not choose (error messages, anything derived from
// a peer) safe for a field value and a log line: control characters, backslashes, invalid UTF-8
// and non-printable runes become Go escapes (\n, \x00, \u0085), and the result is at most max
// bytes, a cut marked with "…".
func Text(s string, max int) string {
	var pieces []string
	total := 0
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		piece := s[i : i+n]
		switch {
		case r == utf8.RuneError && n <= 1:
			piece = fmt.Sprintf(`\x%02x`, s[i])
		case r == '\\' || !unicode.IsPrint(r):
			q := strconv.QuoteRune(r)
			piece = q[1 : len(q)-1]
		}
		pieces = append(pieces, piece)
		total += len(piece)
		i += n
		if total > max {
			break // the result is cut within what is already escaped
		}
	}
	if total <= max {
		return strings.Join(pieces, "")
	}
	var b strings.Builder
	for _, p := range pieces {
		if b.Len()+len(p) > max-len("…") {
			break
		}
		b.WriteString(p)
	}
	if max >= len("…") {
		b.WriteString("…")
	}
	return b.String()
}
