package testkit

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"testing"
)

// pieceLen is the length of the leading and trailing pieces of a value that are searched for on
// their own: long enough not to occur by chance in logs, short enough to catch a truncated or
// wrapped leak.
const pieceLen = 12

// Secrets is a set of secret values and the recognisable forms of each that a leak check
// searches for: the value, its first and last pieceLen bytes, and its hex, Go-quoted and
// base64 encodings.
type Secrets struct {
	probes map[string][]string // name → probes
}

// NewSecrets makes the probes for values (name → value).
func NewSecrets[V ~string | ~[]byte](values map[string]V) Secrets {
	s := Secrets{probes: map[string][]string{}}
	for name, v := range values {
		s.Add(name, []byte(v))
	}
	return s
}

// Add adds one value.
func (s Secrets) Add(name string, v []byte) {
	if len(v) == 0 {
		return
	}
	p := []string{string(v), hex.EncodeToString(v), fmt.Sprintf("%q", v)}
	if b64 := base64.StdEncoding.EncodeToString(v); len(b64) > 2*pieceLen {
		p = append(p, b64[:2*pieceLen])
	} else {
		p = append(p, b64)
	}
	if len(v) > pieceLen {
		p = append(p, string(v[:pieceLen]), string(v[len(v)-pieceLen:]))
	}
	s.probes[name] = append(s.probes[name], p...)
}

// Find returns the names of the values any form of which occurs in data, sorted.
func (s Secrets) Find(data []byte) []string {
	var found []string
	for name, probes := range s.probes {
		for _, p := range probes {
			if strings.Contains(string(data), p) {
				found = append(found, name)
				break
			}
		}
	}
	sort.Strings(found)
	return found
}

// Check fails t if data (described by what: "stderr", "/proc/1/environ" …) holds any form of
// any value. The message names the credential, never its value.
func (s Secrets) Check(t testing.TB, what string, data []byte) {
	t.Helper()
	for _, name := range s.Find(data) {
		t.Errorf("%s contains (a form of) the %s value", what, name)
	}
}

// CheckString is Check for a string.
func (s Secrets) CheckString(t testing.TB, what, data string) {
	t.Helper()
	s.Check(t, what, []byte(data))
}
