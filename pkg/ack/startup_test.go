package ack

import (
	"crypto/hmac"
	"crypto/sha256"
	"hash/crc32"
	"math/rand/v2"
	"strings"
	"testing"
)

// The frames' own CRC-32C must equal the standard library's on every length and content.
func TestCRC32CMatchesStdlib(t *testing.T) {
	tab := crc32.MakeTable(crc32.Castagnoli)
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 2, 3, 7, 8, 9, 12, 15, 16, 17, 100, 585, crc32cLong - 1, crc32cLong, crc32cLong + 1, 20000, 1 << 16} {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		if got, want := crc32c(b), crc32.Checksum(b, tab); got != want {
			t.Fatalf("%d bytes: crc32c %08x, hash/crc32 %08x", len(b), got, want)
		}
	}
	if got := crc32c([]byte("123456789")); got != 0xe3069283 { // the CRC-32C check value
		t.Fatalf("check value %08x", got)
	}
}

// A reused MAC state must give each credential the MAC a fresh one gives, in any order.
func TestNewCredentialMACReuse(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	fresh := func(name string, v []byte) []byte {
		m := hmac.New(sha256.New, key)
		lengthPrefixed(m, []byte(labelCredential), []byte(name), v)
		return m.Sum(nil)
	}
	mac := NewCredentialMAC(key)
	for i, c := range []struct{ name, value string }{{"A", "x"}, {"B", ""}, {"A", "x"}, {"LONG", strings.Repeat("v", 300)}, {"B", "y"}} {
		if got, want := mac(c.name, []byte(c.value)), fresh(c.name, []byte(c.value)); !hmac.Equal(got, want) {
			t.Fatalf("credential %d (%s): reused state gives %x, fresh %x", i, c.name, got, want)
		}
	}
}
