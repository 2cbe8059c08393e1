package credential

import (
	"crypto/subtle"
	"fmt"
	"io"
	"log/slog"
	"strconv"
)

// Value is the content of a credential. Every way Go has of printing or encoding a value
// (String, GoString, fmt verbs, JSON, text, slog) shows only its length, so a secret cannot leak
// through a stray %v. Use Bytes to get at the content deliberately.
//
// The bytes are reachable only through a closure: fmt prints a Value kept in an unexported
// struct field without consulting its methods, and would print a plain slice or pointer target
// there, but it prints a func as an address. Copies of a Value share the same bytes.
type Value struct {
	box func() []byte
}

// NewValue wraps b without copying it; the caller must not modify b afterwards.
func NewValue(b []byte) Value { return Value{box: func() []byte { return b }} }

// Bytes returns the content. The caller must not modify it.
func (v Value) Bytes() []byte {
	if v.box == nil {
		return nil
	}
	return v.box()
}

// Len is the length of the content in bytes.
func (v Value) Len() int { return len(v.Bytes()) }

// Equal reports whether v and o hold the same bytes, in time that depends only on the lengths.
func (v Value) Equal(o Value) bool {
	a, b := v.Bytes(), o.Bytes()
	return len(a) == len(b) && subtle.ConstantTimeCompare(a, b) == 1
}

// Wipe overwrites the content with zeros; every copy of v sees the zeros.
func (v Value) Wipe() {
	clear(v.Bytes())
}

func (v Value) redacted() string { return "[redacted " + strconv.Itoa(v.Len()) + " bytes]" }

// String implements fmt.Stringer without revealing the content.
func (v Value) String() string { return v.redacted() }

// GoString implements fmt.GoStringer without revealing the content.
func (v Value) GoString() string { return "credential.Value(" + v.redacted() + ")" }

// Format makes every fmt verb (%s, %q, %x, %v, %+v, %#v, %d …) print the redacted form.
func (v Value) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		_, _ = io.WriteString(f, v.GoString())
		return
	}
	_, _ = io.WriteString(f, v.redacted())
}

// MarshalJSON encodes the redacted form, never the content.
func (v Value) MarshalJSON() ([]byte, error) { return []byte(strconv.Quote(v.redacted())), nil }

// MarshalText encodes the redacted form, never the content.
func (v Value) MarshalText() ([]byte, error) { return []byte(v.redacted()), nil }

// LogValue makes log/slog print the redacted form.
func (v Value) LogValue() slog.Value { return slog.StringValue(v.redacted()) }

// Credential is one named credential and where it was read from.
type Credential struct {
	Name   string
	Value  Value
	Source string // one of the Source* names (sourcename.go); empty for what the host delivers
	// Cut says why the value is known to be cut short the way the guest's systemd imports it
	// (its read limit ended the entry inside the value), or is empty.
	Cut string
}
