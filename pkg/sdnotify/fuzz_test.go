package sdnotify

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzText: whatever the bytes, Text's result is valid UTF-8 without control characters, at
// most max bytes, and Encode accepts it as a STATUS= value.
func FuzzText(f *testing.F) {
	f.Add("Failed: X: wrong_length\nREADY=1\nMAINPID=1", 64)
	f.Add("\xff\xfe\x00\x1b[2J\u0085\u2028", 8)
	f.Add(strings.Repeat("é", 100), 3)
	f.Fuzz(func(t *testing.T, s string, max int) {
		if max < 0 || max > 1<<16 {
			return
		}
		out := Text(s, max)
		if len(out) > max {
			t.Fatalf("Text(%q, %d) = %d bytes", s, max, len(out))
		}
		if !utf8.ValidString(out) {
			t.Fatalf("Text(%q) = %q is not UTF-8", s, out)
		}
		if max <= MaxValue {
			if _, err := Encode(Status(out)); err != nil {
				t.Fatalf("Encode(Text(%q)) = %v", s, err)
			}
		}
	})
}
