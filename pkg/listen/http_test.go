package listen

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestServeHTTPLimits: each limit closes what it bounds, and a connection past the cap is
// served only once another one closes. Without the limits net/http keeps every idle or slow
// connection open and serves any number of them.
func TestServeHTTPLimits(t *testing.T) {
	const d = 150 * time.Millisecond
	long := 40 * d // longer than closedWithin waits: only the limit under test can close
	serve := func(lim HTTPLimits) net.Listener {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := ServeHTTP(l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			fmt.Fprint(w, "ok")
		}), lim)
		t.Cleanup(func() { srv.Close() })
		return l
	}
	dialTo := func(l net.Listener) net.Conn {
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	// closedWithin reads until the server closes c, failing after 20 d.
	closedWithin := func(what string, c net.Conn) {
		t.Helper()
		c.SetReadDeadline(time.Now().Add(20 * d))
		if _, err := io.Copy(io.Discard, c); err != nil {
			t.Errorf("%s: still open after %v: %v", what, 20*d, err)
		}
	}
	// Each limit alone (net/http falls back to ReadTimeout for the other two when they are 0, so
	// ReadTimeout is long wherever it is not the one tested).
	for _, tc := range []struct {
		name string
		lim  HTTPLimits
		send string
	}{
		{"idle after a request (IdleTimeout)", HTTPLimits{ReadHeaderTimeout: long, ReadTimeout: long, WriteTimeout: time.Minute, IdleTimeout: d},
			"GET / HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"headers never finished (ReadHeaderTimeout)", HTTPLimits{ReadHeaderTimeout: d, ReadTimeout: long, WriteTimeout: time.Minute, IdleTimeout: long},
			"GET / HTTP/1.1\r\nHost: x\r\n"},
		{"body never finished (ReadTimeout)", HTTPLimits{ReadHeaderTimeout: long, ReadTimeout: d, WriteTimeout: time.Minute, IdleTimeout: long},
			"PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc"},
	} {
		c := dialTo(serve(tc.lim))
		fmt.Fprint(c, tc.send)
		closedWithin(tc.name, c)
	}

	lim := HTTPLimits{Conns: 2, ReadHeaderTimeout: d, ReadTimeout: d, WriteTimeout: time.Minute, IdleTimeout: d}
	l := serve(lim)
	dial := func() net.Conn { return dialTo(l) }
	// Two holders fill the cap: a third is served only when one of them goes.
	a, b := dial(), dial()
	fmt.Fprint(a, "GET / HTTP/1.1\r\nHost: x\r\n")
	fmt.Fprint(b, "GET / HTTP/1.1\r\nHost: x\r\n")
	c := dial()
	start := time.Now()
	fmt.Fprint(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(20 * d))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("third connection: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	if strings.TrimSpace(string(body)) != "ok" {
		t.Errorf("third connection: %q", body)
	}
	// It waited for a holder's ReadHeaderTimeout: the cap held it back.
	if waited := time.Since(start); waited < d-20*time.Millisecond {
		t.Errorf("third connection served after %v, before a holder was closed (cap %d)", waited, lim.Conns)
	}
}
