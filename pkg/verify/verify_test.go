package verify

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/credlink/credlink/pkg/credential"
	"github.com/credlink/credlink/pkg/manifest"
)

func mustManifest(t *testing.T, src string) *manifest.Manifest {
	t.Helper()
	m, err := manifest.Parse([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func set(source string, kv ...string) *credential.Set {
	s := &credential.Set{}
	for i := 0; i < len(kv); i += 2 {
		_ = s.Add(credential.Credential{Name: kv[i], Value: credential.NewValue([]byte(kv[i+1])), Source: source})
	}
	return s
}

func TestVerifyStatuses(t *testing.T) {
	env := "production"
	sum := sha256.Sum256([]byte(env))
	m := fmt.Sprintf(`{"credentials":{
		"EXACT":{"bytes":4}, "RANGE":{"min_bytes":2,"max_bytes":3}, "DIGEST":{"secret":false,"sha256":%q},
		"OPT":{"optional":true}, "OPT_BAD":{"optional":true,"bytes":1}}, "unexpected":"%%s"}`, hex.EncodeToString(sum[:]))
	tests := []struct {
		name    string
		policy  string
		in      Input
		ok      bool
		want    string // NAME=status,… in finding order
		summary string
	}{
		{
			name: "all ok", policy: "warn",
			in: Input{Set: set("smbios", "EXACT", "abcd", "RANGE", "ab", "DIGEST", env, "credlink.key", "k", "credlink.ack", "unix:/x")},
			ok: true, want: "EXACT=ok RANGE=ok DIGEST=ok OPT=missing OPT_BAD=missing",
			summary: "3/3 credentials verified",
		},
		{
			name: "every failure", policy: "warn",
			in:   Input{Set: set("smbios", "EXACT", "abc", "RANGE", "abcd", "DIGEST", "staging", "OPT_BAD", "xx", "EXTRA", "e")},
			want: "EXACT=wrong_length RANGE=wrong_length DIGEST=digest_mismatch OPT=missing OPT_BAD=wrong_length EXTRA=unexpected",
			summary: "0/4 credentials verified; FAILED: EXACT wrong_length (3 bytes, want 4), RANGE wrong_length (4 bytes, want 2..3), " +
				"DIGEST digest_mismatch (sha256 differs from the manifest), OPT_BAD wrong_length (2 bytes, want 1: 1 byte more, a trailing newline in the host file?)",
		},
		{
			name: "missing required", policy: "warn", in: Input{Set: set("smbios", "RANGE", "ab", "DIGEST", env)},
			want:    "EXACT=missing RANGE=ok DIGEST=ok OPT=missing OPT_BAD=missing",
			summary: "2/3 credentials verified; FAILED: EXACT missing (not received)",
		},
		{
			name: "unexpected fails", policy: "fail", in: Input{Set: set("smbios", "EXACT", "abcd", "RANGE", "ab", "DIGEST", env, "EXTRA", "e")},
			want:    "EXACT=ok RANGE=ok DIGEST=ok OPT=missing OPT_BAD=missing EXTRA=unexpected",
			summary: "3/3 credentials verified; FAILED: EXTRA unexpected (not in the manifest)",
		},
		{
			name: "unexpected ignored", policy: "ignore", ok: true, in: Input{Set: set("smbios", "EXACT", "abcd", "RANGE", "ab", "DIGEST", env, "EXTRA", "e")},
			want:    "EXACT=ok RANGE=ok DIGEST=ok OPT=missing OPT_BAD=missing",
			summary: "3/3 credentials verified",
		},
		{
			name: "invalid in source", policy: "warn",
			in: func() Input {
				s := credential.ParseOEMStrings([]string{"io.systemd.credential.binary:EXACT=!!!", "io.systemd.credential:RANGE=ab", "io.systemd.credential:DIGEST=" + env}, credential.SystemdLatest)
				return Input{Set: s}
			}(),
			want:    "EXACT=invalid RANGE=ok DIGEST=ok OPT=missing OPT_BAD=missing",
			summary: "2/3 credentials verified; FAILED: EXACT invalid (smbios: invalid base64 at character 0 of 3)",
		},
		{
			name: "dropped by systemd", policy: "warn",
			in: Input{
				Set: set("credentials", "RANGE", "ab", "DIGEST", env),
				Compare: map[string]*credential.Set{
					"credentials": set("credentials", "RANGE", "ab", "DIGEST", env),
					"smbios":      set("smbios", "EXACT", "abcd", "RANGE", "ab", "DIGEST", env),
				},
			},
			want:    "EXACT=source_mismatch RANGE=ok DIGEST=ok OPT=missing OPT_BAD=missing",
			summary: "2/3 credentials verified; FAILED: EXACT source_mismatch (smbios has 4 bytes, credentials has none)",
		},
		{
			name: "source mismatch", policy: "warn",
			in: Input{
				Set: set("credentials", "EXACT", "abcd", "RANGE", "ab", "DIGEST", env),
				Compare: map[string]*credential.Set{
					"credentials": set("credentials", "EXACT", "abcd", "RANGE", "ab", "DIGEST", env),
					"smbios":      set("smbios", "EXACT", "abce", "RANGE", "ab", "DIGEST", env),
				},
			},
			want:    "EXACT=source_mismatch RANGE=ok DIGEST=ok OPT=missing OPT_BAD=missing",
			summary: "2/3 credentials verified; FAILED: EXACT source_mismatch (credentials has 4 bytes, smbios has 4 different bytes)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Verify(mustManifest(t, fmt.Sprintf(m, tt.policy)), tt.in, time.Unix(1, 0))
			var got []string
			for _, f := range r.Findings {
				got = append(got, fmt.Sprintf("%s=%s", f.Name, f.Status))
			}
			if strings.Join(got, " ") != tt.want {
				t.Errorf("findings %s\nwant     %s", strings.Join(got, " "), tt.want)
			}
			if r.OK != tt.ok {
				t.Errorf("OK = %v", r.OK)
			}
			if r.Summary() != tt.summary {
				t.Errorf("summary %q\nwant    %q", r.Summary(), tt.summary)
			}
		})
	}
}

// TestCutShort: a credential the guest's systemd imports cut short (its read limit ends the
// SMBIOS entry inside the value) is wrong_length even when the manifest's range accepts the
// cut size, whether the cut is seen in the verified set or in a compared one.
func TestCutShort(t *testing.T) {
	m := mustManifest(t, `{"credentials": {"BUNDLE": {"min_bytes": 4}, "KEY": {"bytes": 3}}}`)
	cut := &credential.Set{}
	_ = cut.Add(credential.Credential{Name: "BUNDLE", Value: credential.NewValue([]byte("abcdef")), Source: "smbios", Cut: "systemd 252 reads only the first 4096 bytes of entries/11-0"})
	_ = cut.Add(credential.Credential{Name: "KEY", Value: credential.NewValue([]byte("abc")), Source: "smbios"})
	dir := set("credentials", "BUNDLE", "abcdef", "KEY", "abc")
	for name, in := range map[string]Input{
		"in the verified set": {Set: cut},
		"in a compared set":   {Set: dir, Compare: map[string]*credential.Set{"credentials": dir, "smbios": cut}},
	} {
		t.Run(name, func(t *testing.T) {
			res := Verify(m, in, time.Now())
			if res.OK || res.Findings[0].Status != credential.StatusWrongLength || res.Findings[0].Detail != "6 bytes: cut short, systemd 252 reads only the first 4096 bytes of entries/11-0" {
				t.Errorf("BUNDLE: %+v", res.Findings[0])
			}
			if res.Findings[1].Status != credential.StatusOK {
				t.Errorf("KEY: %+v", res.Findings[1])
			}
		})
	}
}
