package credential

import (
	"errors"
	"strings"
	"testing"
)

func TestValidName(t *testing.T) {
	tests := []struct {
		name string
		err  string
	}{
		{"API_KEY", ""},
		{"credlink.key", ""},
		{"with space and ~!@#$%^&*()", ""},
		{strings.Repeat("n", 255), ""},
		{"", "invalid credential name: empty"},
		{".", `invalid credential name: "." is reserved`},
		{"..", `invalid credential name: ".." is reserved`},
		{"...", ""},
		{strings.Repeat("n", 256), "invalid credential name: 256 bytes, limit 255"},
		{"a/b", "invalid credential name: '/' at byte 1"},
		{"a:b", "invalid credential name: ':' at byte 1"},
		{"tab\there", "invalid credential name: byte 0x09 at 3 is not printable ASCII"},
		{"del\x7f", "invalid credential name: byte 0x7f at 3 is not printable ASCII"},
		{"ümlaut", "invalid credential name: byte 0xc3 at 0 is not printable ASCII"},
	}
	for _, tt := range tests {
		err := ValidName(tt.name)
		if tt.err == "" && err != nil || tt.err != "" && (err == nil || err.Error() != tt.err || !errors.Is(err, ErrInvalidName)) {
			t.Errorf("ValidName(%q) = %v, want %q", tt.name, err, tt.err)
		}
	}
}

func TestParseOEMStrings(t *testing.T) {
	big := strings.Repeat("x", MaxSize)
	tests := []struct {
		name     string
		in       []string
		want     map[string]string
		ignored  int
		problems []string
	}{
		{name: "text", in: []string{"io.systemd.credential:A=hello world"}, want: map[string]string{"A": "hello world"}},
		{name: "value verbatim, newline kept", in: []string{"io.systemd.credential:A= x\n"}, want: map[string]string{"A": " x\n"}},
		{name: "name to first equals", in: []string{"io.systemd.credential:A=b=c"}, want: map[string]string{"A": "b=c"}},
		{name: "empty value", in: []string{"io.systemd.credential:A="}, want: map[string]string{"A": ""}},
		{name: "binary", in: []string{"io.systemd.credential.binary:B=AAEC/w=="}, want: map[string]string{"B": "\x00\x01\x02\xff"}},
		{name: "binary whitespace", in: []string{"io.systemd.credential.binary:B= AA\tEC\r\n/w= =\n"}, want: map[string]string{"B": "\x00\x01\x02\xff"}},
		{name: "binary empty", in: []string{"io.systemd.credential.binary:B="}, want: map[string]string{"B": ""}},
		{name: "others ignored", in: []string{"vendor:x", "io.systemd.credentialX:A=1", "io.systemd.credential", ""}, want: map[string]string{}, ignored: 4},
		{name: "first wins", in: []string{"io.systemd.credential:A=1", "io.systemd.credential.binary:A=Mg==", "io.systemd.credential:A=3"},
			want:     map[string]string{"A": "1"},
			problems: []string{`credential "A" from smbios skipped: duplicate credential: an earlier one (from smbios) wins`, `credential "A" from smbios skipped: duplicate credential: an earlier one (from smbios) wins`}},
		{name: "no equals", in: []string{"io.systemd.credential:JUSTAVALUE"}, want: map[string]string{},
			problems: []string{"credential from smbios skipped: OEM string lacks '='"}},
		{name: "bad names", in: []string{"io.systemd.credential:=x", "io.systemd.credential:a/b=x", "io.systemd.credential:a:b=x", "io.systemd.credential:..=x"}, want: map[string]string{},
			problems: []string{
				"credential from smbios skipped: invalid credential name: empty",
				"credential <invalid name, 3 bytes> from smbios skipped: invalid credential name: '/' at byte 1",
				"credential <invalid name, 3 bytes> from smbios skipped: invalid credential name: ':' at byte 1",
				`credential <invalid name, 2 bytes> from smbios skipped: invalid credential name: ".." is reserved`}},
		{name: "bad base64", in: []string{
			"io.systemd.credential.binary:A=AAE",      // no padding
			"io.systemd.credential.binary:B=AAE=AAAA", // data after padding
			"io.systemd.credential.binary:C=AAF=",     // leftover bits
			"io.systemd.credential.binary:E=A===",
		}, want: map[string]string{},
			problems: []string{
				`credential "A" from smbios skipped: invalid base64 at character 0 of 3`,
				`credential "B" from smbios skipped: invalid base64 at character 4 of 8`,
				`credential "C" from smbios skipped: invalid base64 at character 3 of 4`,
				`credential "E" from smbios skipped: invalid base64 at character 1 of 4`}},
		{name: "size limits", in: []string{"io.systemd.credential:BIG=" + big + "y", "io.systemd.credential:A=" + big[:MaxSize-3], "io.systemd.credential:B=1234", "io.systemd.credential:C=123"},
			want: map[string]string{"A": big[:MaxSize-3], "C": "123"},
			problems: []string{
				`credential "BIG" from smbios skipped: credential larger than 1 MiB (1048577 bytes)`,
				`credential "B" from smbios skipped: credentials exceed 1 MiB in total (4 bytes do not fit in the 3 left)`}},
		{name: "oversize duplicate does not block", in: []string{"io.systemd.credential:A=" + big + "y", "io.systemd.credential:A=ok"}, want: map[string]string{"A": "ok"},
			problems: []string{`credential "A" from smbios skipped: credential larger than 1 MiB (1048577 bytes)`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := ParseOEMStrings(tt.in, SystemdLatest)
			if s.Len() != len(tt.want) {
				t.Errorf("got %d credentials %v, want %d", s.Len(), s.Names(), len(tt.want))
			}
			for name, want := range tt.want {
				c, ok := s.Get(name)
				if !ok || string(c.Value.Bytes()) != want || c.Source != SourceSMBIOS {
					t.Errorf("%s: got %v (present %v), want %d bytes", name, c.Value, ok, len(want))
				}
			}
			if s.Ignored != tt.ignored {
				t.Errorf("Ignored = %d, want %d", s.Ignored, tt.ignored)
			}
			if len(s.Problems) != len(tt.problems) {
				t.Fatalf("problems = %v, want %q", s.Problems, tt.problems)
			}
			for i, p := range s.Problems {
				if p.Error() != tt.problems[i] {
					t.Errorf("problem %d = %q, want %q", i, p.Error(), tt.problems[i])
				}
			}
		})
	}
}

// TestParseOEMStringsBySystemd holds the rules that differ between systemd versions; the agent
// applies the ones of the systemd it runs under.
func TestParseOEMStringsBySystemd(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		v       Systemd
		want    string // decoded value; "" with problem set means skipped
		problem string
	}{
		{name: "URL-safe base64, systemd 255", in: "io.systemd.credential.binary:TOKEN=-_-_AQ==", v: 255, want: "\xfb\xff\xbf\x01"},
		{name: "URL-safe base64, systemd 257", in: "io.systemd.credential.binary:TOKEN=-_-_AQ==", v: 257, want: "\xfb\xff\xbf\x01"},
		{name: "URL-safe base64, version unknown (newest rules)", in: "io.systemd.credential.binary:TOKEN=-_-_AQ==", v: 0, want: "\xfb\xff\xbf\x01"},
		{name: "URL-safe base64, systemd 254", in: "io.systemd.credential.binary:TOKEN=-_-_AQ==", v: 254,
			problem: `credential "TOKEN" from smbios skipped: invalid base64 at character 0 of 8 (the value uses the URL-safe alphabet, which systemd 254 does not accept; systemd >= 255 does)`},
		{name: "URL-safe base64, systemd 252", in: "io.systemd.credential.binary:TOKEN=-_-_AQ==", v: 252,
			problem: `credential "TOKEN" from smbios skipped: invalid base64 at character 0 of 8 (the value uses the URL-safe alphabet, which systemd 252 does not accept; systemd >= 255 does)`},
		{name: "alphabets mixed, systemd 255", in: "io.systemd.credential.binary:M=+_/-AQ==", v: 255, want: "\xfb\xff\xfe\x01"},
		{name: "URL-safe still needs padding, systemd 257", in: "io.systemd.credential.binary:P=-_-_AQ", v: 257,
			problem: `credential "P" from smbios skipped: invalid base64 at character 4 of 6`},
		{name: "standard alphabet, systemd 252", in: "io.systemd.credential.binary:S=+/+/AQ==", v: 252, want: "\xfb\xff\xbf\x01"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := ParseOEMStrings([]string{tt.in}, tt.v)
			if tt.problem != "" {
				if s.Len() != 0 || len(s.Problems) != 1 || s.Problems[0].Error() != tt.problem {
					t.Fatalf("got %d credentials, problems %v; want %q", s.Len(), s.Problems, tt.problem)
				}
				return
			}
			if s.Len() != 1 || len(s.Problems) != 0 || string(s.All()[0].Value.Bytes()) != tt.want {
				t.Fatalf("got %d credentials, problems %v", s.Len(), s.Problems)
			}
		})
	}
}

// Problems must never carry the value, even when the value is what made the string bad.
func TestProblemsNeverHoldValues(t *testing.T) {
	secret := "S3CR3T-VALUE-bytes"
	in := []string{
		"io.systemd.credential:" + secret,                // no '='
		"io.systemd.credential.binary:X=" + secret + "!", // bad base64
		"io.systemd.credential:Y=" + secret + strings.Repeat("z", MaxSize),
		"io.systemd.credential:Y=" + secret, "io.systemd.credential:Y=" + secret, // duplicate
	}
	s := ParseOEMStrings(in, SystemdLatest)
	for _, p := range s.Problems {
		if strings.Contains(p.Error(), secret) || strings.Contains(p.Error(), "S3CR") {
			t.Errorf("problem leaks the value: %s", p.Error())
		}
	}
	if len(s.Problems) != 4 {
		t.Errorf("want 4 problems, got %v", s.Problems)
	}
}

func FuzzParseOEMStrings(f *testing.F) {
	f.Add("io.systemd.credential:A=b", "io.systemd.credential.binary:B=AAEC", uint8(0))
	f.Add("io.systemd.credential.binary:B= AA\tEC\n", "io.systemd.credential:A", uint8(2))
	f.Add("io.systemd.credential:a/b=x", "vendor", uint8(5))
	f.Add("io.systemd.credential.binary:T=-_-_AQ==", "io.systemd.credential.binary:U=+_/-AQ==", uint8(3))
	f.Fuzz(func(t *testing.T, a, b string, version uint8) {
		v := Systemd(252 + int(version%7)) // 252..258: every rule boundary
		s := ParseOEMStrings([]string{a, b}, v)
		// The URL-safe alphabet only ever adds credentials: what 254 imports, 255 imports too.
		if v >= SystemdURLSafeBase64 {
			if old := ParseOEMStrings([]string{a, b}, 254); old.Len() > s.Len() {
				t.Fatalf("systemd %d imports %d credentials, 254 imports %d", v, s.Len(), old.Len())
			}
		}
		if s.Len()+len(s.Problems)+s.Ignored != 2 {
			t.Fatalf("%d credentials + %d problems + %d ignored != 2 strings", s.Len(), len(s.Problems), s.Ignored)
		}
		for _, c := range s.All() {
			if ValidName(c.Name) != nil || c.Value.Len() > MaxSize {
				t.Fatalf("imported an invalid credential %q (%d bytes)", c.Name, c.Value.Len())
			}
		}
		for _, p := range s.Problems {
			if !errors.Is(p, ErrInvalidName) && !errors.Is(p, ErrNoEquals) && !errors.Is(p, ErrBadBase64) &&
				!errors.Is(p, ErrTooLarge) && !errors.Is(p, ErrTotalTooLarge) && !errors.Is(p, ErrDuplicate) {
				t.Fatalf("problem without a sentinel: %v", p)
			}
		}
	})
}

func TestRedactOEMString(t *testing.T) {
	tests := map[string]string{
		"io.systemd.credential:API_KEY=s3cr3t-value":  "io.systemd.credential:API_KEY=[redacted 12 bytes]",
		"io.systemd.credential.binary:KEY=AAECAwQ=":   "io.systemd.credential.binary:KEY=[redacted 5 bytes]",
		"io.systemd.credential.binary:KEY=!!s3cr3t":   "io.systemd.credential.binary:KEY=[redacted, invalid base64]",
		"io.systemd.credential:s3cr3t-without-a-name": "[redacted malformed credential]",
		"vendor:acme":                  "vendor:acme",
		"io.systemd.credential:EMPTY=": "io.systemd.credential:EMPTY=[redacted 0 bytes]",
	}
	for in, want := range tests {
		if got := RedactOEMString(in); got != want {
			t.Errorf("RedactOEMString(%q) = %q, want %q", in, got, want)
		}
		if strings.Contains(RedactOEMString(in), "s3cr3t") {
			t.Errorf("%q leaks its value", in)
		}
	}
}
