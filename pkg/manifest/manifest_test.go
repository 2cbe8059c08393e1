package manifest

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestParseExample(t *testing.T) {
	src := `{"credentials": {
	   "API_KEY": {"bytes": 44}, "DB_PASSWORD": {"bytes": 44},
	   "JWT_SECRET": {"min_bytes": 64, "max_bytes": 128},
	   "ENVIRONMENT": {"secret": false, "sha256": "4c1d2ec7e5b0b6a4d4b5b8d2d0f6b56f0d6f5a7c54b6e0a5d7e0d5d6c5b4a3f2"},
	   "CLUSTER": {"secret": false, "optional": true}},
	 "unexpected": "fail"}`
	m, err := Parse([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(m.Names, []string{"API_KEY", "DB_PASSWORD", "JWT_SECRET", "ENVIRONMENT", "CLUSTER"}) {
		t.Errorf("names = %v", m.Names)
	}
	if m.Unexpected != Fail || !slices.Equal(m.Required(), []string{"API_KEY", "DB_PASSWORD", "JWT_SECRET", "ENVIRONMENT"}) {
		t.Errorf("unexpected=%v required=%v", m.Unexpected, m.Required())
	}
	if r := m.Credentials["API_KEY"]; *r.Bytes != 44 || !r.Secret || r.Optional {
		t.Errorf("API_KEY = %+v", r)
	}
	if r := m.Credentials["ENVIRONMENT"]; r.Secret || len(r.SHA256) != 32 {
		t.Errorf("ENVIRONMENT = %+v", r)
	}
	if m, _ := Parse([]byte(`{"credentials":{}}`)); m.Unexpected != Warn {
		t.Errorf("default policy = %v", m.Unexpected)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ src, err string }{
		{`{"credentials":{"A":{"bytes":1}},"credentials":{}}`, `invalid manifest: credentials (line 1): duplicate key`},
		{"{\"credentials\":{\n\"A\":{},\n\"A\":{}}}", `invalid manifest: credentials.A (line 3): duplicate key`},
		{`{"credentials":{"A":{"byts":1}}}`, `invalid manifest: credentials.A.byts (line 1): unknown field`},
		{`{"credentals":{}}`, `invalid manifest: credentals (line 1): unknown field`},
		{`{"credentials":{"a/b":{}}}`, `invalid manifest: credentials["a/b"] (line 1): invalid credential name: '/' at byte 1`},
		{`{"credentials":{"":{}}}`, `invalid manifest: credentials[""] (line 1): invalid credential name: empty`},
		{`{"credentials":{"credlink.key":{}}}`, `invalid manifest: credentials["credlink.key"] (line 1): "credlink.key" is a credlink control credential and cannot be listed`},
		{`{"credentials":{"A":{"bytes":4,"min_bytes":1}}}`, `invalid manifest: credentials.A (line 1): "bytes" cannot be combined with "min_bytes"/"max_bytes"`},
		{`{"credentials":{"A":{"min_bytes":9,"max_bytes":1}}}`, `invalid manifest: credentials.A (line 1): "min_bytes" 9 is greater than "max_bytes" 1`},
		{`{"credentials":{"A":{"bytes":-1}}}`, `invalid manifest: credentials.A.bytes (line 1): must be a whole number from 0 to 1048576, not -1`},
		{`{"credentials":{"A":{"bytes":1.5}}}`, `invalid manifest: credentials.A.bytes (line 1): must be a whole number from 0 to 1048576, not 1.5`},
		{`{"credentials":{"A":{"bytes":2000000}}}`, `invalid manifest: credentials.A.bytes (line 1): must be a whole number from 0 to 1048576, not 2000000`},
		{`{"credentials":{"A":{"bytes":"44"}}}`, `invalid manifest: credentials.A.bytes (line 1): must be a number`},
		{`{"credentials":{"A":{"secret":"no"}}}`, `invalid manifest: credentials.A.secret (line 1): must be true or false`},
		{`{"credentials":{"A":{"sha256":"abc"}}}`, `invalid manifest: credentials.A.sha256 (line 1): must be 64 hex digits`},
		{`{"credentials":{"A":[]}}`, `invalid manifest: credentials.A (line 1): must be an object`},
		{`{"credentials":{},"unexpected":"explode"}`, `invalid manifest: unexpected (line 1): must be "ignore", "warn" or "fail", not "explode"`},
		{`{"unexpected":"warn"}`, `invalid manifest: missing "credentials"`},
		{`[]`, `invalid manifest: (top level) (line 1): must be an object`},
		{``, `invalid manifest: (top level) (line 1): unexpected end of file`},
		{`{"credentials":{}} {}`, `invalid manifest: (top level) (line 1): data after the top-level object`},
		{"{\"credentials\":{\n\"A\":{\"bytes\":1,}}}", `invalid manifest: credentials.A (line 2): JSON syntax: invalid character ',' at start of value`},
		// a syntax error names its own line, not the last good token's
		{"{\"credentials\": {\n\"A\": {\"bytes\": 1}\n\n\"B\": {}}}", `invalid manifest: credentials (line 4): JSON syntax: invalid character '"' after object value (expecting ',' or '}')`},
		{"{\"credentials\": {}}\n\n\ngarbage", `invalid manifest: (top level) (line 4): data after the top-level object`},
		// a long key is cut in the path
		{`{"credentials":{"` + strings.Repeat("K", 100000) + `":{"byts":1}}}`, `invalid manifest: credentials["` + strings.Repeat("K", 64) + `…(100000 bytes)"] (line 1): invalid credential name: 100000 bytes, limit 255`},
		{`{"credentials":{"A":{"` + strings.Repeat("b", 100) + `":1}}}`, `invalid manifest: credentials.A["` + strings.Repeat("b", 64) + `…(100 bytes)"] (line 1): unknown field`},
		{`{"credentials":{"A":{"bytes":1,"bytes":2}}}`, `invalid manifest: credentials.A.bytes (line 1): duplicate key`},
		{`{"credentials":{},"unexpected":"warn","unexpected":"fail"}`, `invalid manifest: unexpected (line 1): duplicate key`},
		{"{\"credentials\":{\"A\xff\":{}}}", `invalid manifest: credentials (line 1): JSON syntax: invalid UTF-8`},
		{`{"credentials":{"A":{"bytes":1e3}}}`, `invalid manifest: credentials.A.bytes (line 1): must be a whole number from 0 to 1048576, not 1e3`},
	}
	for _, tt := range tests {
		_, err := Parse([]byte(tt.src))
		if err == nil || err.Error() != tt.err || !errors.Is(err, ErrInvalid) {
			src := strings.ReplaceAll(tt.src, "\n", " ")
			if len(src) > 200 {
				src = src[:200] + "…"
			}
			t.Errorf("Parse(%s)\n  err  = %.300v\n  want = %.300s", src, err, tt.err)
		}
	}
}

func TestLoad(t *testing.T) {
	p := filepath.Join(t.TempDir(), "m.json")
	os.WriteFile(p, []byte(`{"credentials":{"A":{"bytes":"x"}}}`), 0o600)
	if _, err := Load(p); err == nil || !strings.HasPrefix(err.Error(), p+": invalid manifest: credentials.A.bytes") {
		t.Errorf("Load: %v", err)
	}
	if _, err := Load(p + ".missing"); err == nil || !strings.HasPrefix(err.Error(), "manifest: "+p+".missing: stat: no such file or directory") {
		t.Errorf("Load missing: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"credentials":{"A":{"bytes":44},"B":{"min_bytes":1,"max_bytes":9,"optional":true,"secret":false}},"unexpected":"fail"}`))
	f.Add([]byte(`{"credentials":{"A":{"sha256":"00"}}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Parse(b)
		if err == nil && !json.Valid(b) {
			t.Fatalf("accepted what encoding/json calls invalid: %q", b)
		}
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error without ErrInvalid: %v", err)
			}
			return
		}
		if len(m.Names) != len(m.Credentials) {
			t.Fatal("names and rules disagree")
		}
	})
}

// BenchmarkParse255 parses a manifest listing 255 credentials, the most one SMBIOS Type 11
// structure carries: guest-agent parses it on its way to the first acknowledgement byte.
func BenchmarkParse255(b *testing.B) {
	var src strings.Builder
	src.WriteString(`{"credentials": {`)
	for i := range 255 {
		if i > 0 {
			src.WriteString(",\n")
		}
		fmt.Fprintf(&src, `"CRED_%03d": {"bytes": %d}`, i, 40+i%20)
	}
	src.WriteString("}}")
	b.ReportAllocs()
	for b.Loop() {
		if m, err := Parse([]byte(src.String())); err != nil || len(m.Names) != 255 {
			b.Fatal(m, err)
		}
	}
}
