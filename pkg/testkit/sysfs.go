package testkit

import (
	"testing"

	"github.com/credlink/credlink/pkg/credential"
)

// SMBIOSSysfs writes, in a new temporary directory, the sysfs files Linux exposes for the SMBIOS
// table a launcher would build for creds (credential.WriteSMBIOSTree: encoded as systemd reads
// them, default budget) and returns the directory, a --sysfs root.
func SMBIOSSysfs(t testing.TB, creds ...credential.Credential) string {
	t.Helper()
	dir := t.TempDir()
	if err := credential.WriteSMBIOSTree(dir, creds, credential.DefaultBudget); err != nil {
		t.Fatal(err)
	}
	return dir
}

// Values wraps name → value pairs as credentials, in the order given by names.
func Values(values map[string]string, names ...string) []credential.Credential {
	out := make([]credential.Credential, 0, len(names))
	for _, n := range names {
		out = append(out, credential.Credential{Name: n, Value: credential.NewValue([]byte(values[n]))})
	}
	return out
}
