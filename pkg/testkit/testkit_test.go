package testkit

import (
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestSecretsFindsEveryForm(t *testing.T) {
	s := NewSecrets(map[string]string{"K": "0123456789abcdefghij-secret", "BIN": "\x00\xff\x01binary\xfe-seed-\x7f"})
	for _, tt := range []struct {
		data string
		want string
	}{
		{"x 0123456789abcdefghij-secret x", "K"},
		{"prefix 0123456789ab…", "K"},
		{"…fghij-secret", "K"},
		{"hex 30313233343536373839616263646566676869", ""}, // a hex prefix alone is not the hex form
		{"hex 303132333435363738396162636465666768696a2d736563726574", "K"},
		{"b64 MDEyMzQ1Njc4OWFiY2RlZmdoaWotc2VjcmV0", "K"},
		{`quoted "\x00\xff\x01binary\xfe-seed-\x7f"`, "BIN"},
		{"nothing here", ""},
	} {
		if got := strings.Join(s.Find([]byte(tt.data)), ","); got != tt.want {
			t.Errorf("Find(%q) = %q, want %q", tt.data, got, tt.want)
		}
	}
}

func TestSyncBufferWaitFor(t *testing.T) {
	var b SyncBuffer
	go func() {
		b.Write([]byte("starting\n"))
		b.Write([]byte(`msg="serving metrics" addr=127.0.0.1:4242` + "\n"))
	}()
	m, err := b.WaitFor(5*time.Second, regexp.MustCompile(`addr=(\S+)`))
	if err != nil || m[1] != "127.0.0.1:4242" {
		t.Fatalf("WaitFor = %q, %v", m, err)
	}
	if err := b.WaitForText(20*time.Millisecond, "never"); err == nil {
		t.Error("WaitForText found text that was never written")
	}
}
