package ack

import (
	"bytes"
	"strings"
	"testing"

	"github.com/credlink/credlink/pkg/credential"
)

// TestReasonsEchoOnlyKnownWords: an authentic report from a hostile guest cannot put its own
// words into the reasons the launcher copies into STATUS=: a newline there would start a new
// notify assignment (READY=1). Known statuses and valid names still come through; an unknown
// status or an invalid name makes the whole report malformed (validateReport).
func TestReasonsEchoOnlyKnownWords(t *testing.T) {
	key := bytes.Repeat([]byte{7}, KeySize)
	nonce := bytes.Repeat([]byte{1}, NonceSize)
	value := []byte("value-of-A")
	s := &Server{Key: key, Sent: []credential.Credential{{Name: "A", Value: credential.NewValue(value)}}}
	tests := []struct {
		name, status, extraName, extraStatus string
		want, wantNot                        []string
	}{
		{"known words", "wrong_length", "EXTRA", "missing",
			[]string{"A: wrong_length in the guest", "EXTRA: missing in the guest"}, nil},
		{"hostile status", "x\nREADY=1", "EXTRA", "y\nREADY=1",
			[]string{"malformed report: credential 0: status is not one of"}, []string{"READY", "\n"}},
		{"hostile name", "ok", "B\nREADY=1", "missing",
			[]string{"malformed report: credential 1: name is not a valid systemd credential name"}, []string{"READY", "\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Report{Version: Version, Nonce: nonce, BootID: "b", Credentials: []CredentialReport{
				{Name: "A", Bytes: len(value), Status: credential.Status(tt.status), MAC: CredentialMAC(key, "A", value)},
				{Name: tt.extraName, Status: credential.Status(tt.extraStatus)},
			}}
			payload, err := seal(key, labelReport, nonce, r)
			if err != nil {
				t.Fatal(err)
			}
			res := s.check(payload, nonce)
			if !res.Authenticated || res.Accepted {
				t.Fatalf("result %+v: want authenticated and rejected", res)
			}
			got := strings.Join(res.Reasons, "; ")
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("reasons %q lack %q", got, w)
				}
			}
			for _, w := range tt.wantNot {
				if strings.Contains(got, w) {
					t.Errorf("reasons %q contain %q", got, w)
				}
			}
		})
	}
}
