package launch

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestCredentialFiles: host-launcher reads $CREDENTIALS_DIRECTORY with the guest's reader
// (credential.ReadFile): a FIFO given as a credential is refused at once instead of blocking
// the launch until someone writes to it, and neither a symlink in the directory nor an ID
// leaves it. An absolute path the operator gives may be a symlink to a regular file.
func TestCredentialFiles(t *testing.T) {
	e := newEnv(t)
	fifo := filepath.Join(e.creds, "PIPE")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	outside := filepath.Join(e.dir, "outside")
	os.WriteFile(outside, []byte("outside-value"), 0o400)
	os.Symlink(outside, filepath.Join(e.creds, "LINK"))
	absLink := filepath.Join(e.dir, "abs-link")
	os.Symlink(outside, absLink)
	onlyFIFO := filepath.Join(e.dir, "only-fifo") // a directory whose one odd entry is a FIFO
	os.Mkdir(onlyFIFO, 0o700)
	os.WriteFile(filepath.Join(onlyFIFO, "A"), []byte("a"), 0o400)
	if err := syscall.Mkfifo(filepath.Join(onlyFIFO, "PIPE"), 0o600); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name  string
		setup func(c *Config)
		err   string // "" means success
	}{
		{"fifo by ID", func(c *Config) { c.Credentials = []CredentialSpec{{"PIPE", "PIPE"}} }, `credential "PIPE": ` + fifo + ": not a regular file (a FIFO)"},
		{"fifo by absolute path", func(c *Config) { c.Credentials = []CredentialSpec{{"PIPE", fifo}} }, "not a regular file (a FIFO)"},
		{"fifo in --all-credentials", func(c *Config) { c.Credentials, c.AllCredentials, c.CredentialsDir = nil, true, onlyFIFO }, `credential "PIPE": ` + onlyFIFO + "/PIPE: not a regular file (a FIFO)"},
		{"symlink in the directory", func(c *Config) { c.Credentials = []CredentialSpec{{"LINK", "LINK"}} }, "not a regular file (a symlink)"},
		{"absolute symlink to a file", func(c *Config) { c.Credentials = []CredentialSpec{{"ABS", absLink}} }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := e.local()
			c.ManifestPath = ""
			tt.setup(c)
			done := make(chan error, 1)
			go func() { _, err := c.Prepare(mustAddr(t)); done <- err }()
			var err error
			select {
			case err = <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("Prepare still blocked after 5s")
			}
			if tt.err == "" {
				if err != nil {
					t.Fatalf("Prepare: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("err = %v\nwant a configuration error containing %q", err, tt.err)
			}
		})
	}
}
