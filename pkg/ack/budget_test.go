package ack

import (
	"errors"
	"testing"

	"github.com/credlink/credlink/pkg/credential"
)

// TestReportFitsTheLargestDelivery: more than 255 credentials can now reach a guest (several
// Type 11 structures), so the report naming each of them must still fit one frame. The most
// credentials the SMBIOS budget allows are empty ones with the shortest distinct names, reported
// with the longest source name.
func TestReportFitsTheLargestDelivery(t *testing.T) {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	name := func(i int) string {
		s := ""
		for {
			s = string(alphabet[i%len(alphabet)]) + s
			if i /= len(alphabet); i == 0 {
				return s
			}
			i--
		}
	}
	budget := credential.BudgetFor(credential.SystemdLatest, 0, "")
	var creds []credential.Credential
	for i := 0; ; i++ {
		next := append(creds, credential.Credential{Name: name(i), Value: credential.NewValue(nil)})
		if _, err := credential.Encode(next, budget); err != nil {
			if !errors.Is(err, credential.ErrBudget) {
				t.Fatal(err)
			}
			break
		}
		creds = next
	}
	r := Report{Version: Version, Nonce: make([]byte, 32), VM: "vm", BootID: "00000000-0000-0000-0000-000000000000", Agent: "guest-agent v0.0.0", OK: true}
	for _, c := range creds {
		r.Credentials = append(r.Credentials, CredentialReport{Name: c.Name, Status: credential.StatusOK, Source: credential.SourceCredentials, MAC: make([]byte, 32)})
	}
	payload, err := seal(make([]byte, KeySize), "report", r.Nonce, r)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d credentials fit the SMBIOS budget; their report is %d bytes of %d", len(creds), len(payload), MaxPayload)
	if len(creds) <= 255 || len(payload) > MaxPayload {
		t.Errorf("%d credentials: report of %d bytes, frame limit %d", len(creds), len(payload), MaxPayload)
	}
}
