package agent

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestMetricsConnectionsAreBounded: the metrics server closes a keep-alive connection left idle
// and one that never finishes its request (listen.HTTPLimits; with only ReadHeaderTimeout,
// net/http kept an idle connection open forever). The limits are shortened for the test.
func TestMetricsConnectionsAreBounded(t *testing.T) {
	saved := metricsLimits
	t.Cleanup(func() { metricsLimits = saved })
	metricsLimits.IdleTimeout, metricsLimits.ReadTimeout, metricsLimits.ReadHeaderTimeout = 100*time.Millisecond, 100*time.Millisecond, 100*time.Millisecond
	dir := t.TempDir()
	man := filepath.Join(dir, "manifest.json")
	os.WriteFile(man, []byte(`{"credentials": {"A": {"bytes": 1}}}`), 0o600)
	creds := filepath.Join(dir, "creds")
	os.Mkdir(creds, 0o700)
	os.WriteFile(filepath.Join(creds, "A"), []byte("x"), 0o600)
	addr := make(chan net.Addr, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = Run(ctx, Options{ManifestPath: man, Source: "credentials", CredentialsDir: creds, MetricsListen: "127.0.0.1:0",
			AckTimeout: time.Second, MetricsReady: func(a net.Addr) { addr <- a }}, nil)
	}()
	defer func() { cancel(); <-done }()
	a := <-addr
	for _, tc := range []struct{ name, send string }{
		{"idle after a scrape", "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"unfinished request", "GET /metrics HTTP/1.1\r\nHost: x\r\n"},
	} {
		c, err := net.Dial("tcp", a.String())
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprint(c, tc.send)
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.Copy(io.Discard, bufio.NewReader(c)); err != nil {
			t.Errorf("%s: connection still open: %v", tc.name, err)
		}
		c.Close()
	}
}
