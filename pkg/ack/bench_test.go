package ack

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/credlink/credlink/pkg/listen"
)

// BenchmarkRoundTripUnix: one full exchange (dial, hello, challenge, report, verdict) over a
// Unix socket with a two-credential report.
func BenchmarkRoundTripUnix(b *testing.B) {
	key := newKey(b)
	h := startServer(b, key)
	c := h.client(key)
	r := reportFor(key, sent, true)
	b.ReportAllocs()
	for b.Loop() {
		if v, err := c.Exchange(context.Background(), r); err != nil || !v.Accepted {
			b.Fatal(v, err)
		}
	}
}

// BenchmarkConcurrentLaunches: 500 launch listeners waiting on one machine, then 500 agents
// acknowledging at once. Reports the wall time until all are accepted and the heap and stack
// each waiting listener costs.
func BenchmarkConcurrentLaunches(b *testing.B) {
	const n = 500
	for b.Loop() {
		dir := b.TempDir()
		key := newKey(b)
		ctx, cancel := context.WithCancel(context.Background())
		var before runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		var accepted sync.WaitGroup
		accepted.Add(n)
		var serving sync.WaitGroup
		paths := make([]string, n)
		for i := range n {
			paths[i] = filepath.Join(dir, fmt.Sprintf("vm%d.sock", i))
			l, err := listen.Unix(paths[i])
			if err != nil {
				b.Fatal(err)
			}
			srv := &Server{Key: key, Sent: sent, OnResult: func(r Result) {
				if r.Accepted {
					accepted.Done()
				}
			}}
			serving.Add(1)
			go func() { defer serving.Done(); srv.Serve(ctx, l) }()
		}
		time.Sleep(50 * time.Millisecond)
		var after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&after)
		start := time.Now()
		r := reportFor(key, sent, true)
		var agents sync.WaitGroup
		for i := range n {
			agents.Add(1)
			go func() {
				defer agents.Done()
				c := &Client{Key: key, Dialer: UnixDialer{Path: paths[i]}, Timeout: 10 * time.Second}
				// Retry like the agent does: with 500 dials at once the listen backlog
				// can refuse some (EAGAIN).
				_, err := c.Acknowledge(ctx, r, Backoff{Initial: 10 * time.Millisecond, Max: 100 * time.Millisecond}, nil)
				if err != nil {
					b.Error(err)
				}
			}()
		}
		accepted.Wait()
		agents.Wait() // every agent has its verdict
		wall := time.Since(start)
		cancel()
		serving.Wait()
		b.ReportMetric(float64(wall.Milliseconds()), "ms-all-accepted")
		b.ReportMetric(float64(after.HeapInuse+after.StackInuse-before.HeapInuse-before.StackInuse)/n, "mem-B/listener")
		b.ReportMetric(float64(after.NumGC-before.NumGC), "gc")
	}
}
