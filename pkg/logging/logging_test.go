package logging

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestJournalForm(t *testing.T) {
	var buf bytes.Buffer
	l := New(&buf, true, slog.LevelDebug).With("vm", "a")
	l.Error("boom", "n", 1)
	l.Warn("careful")
	l.Info("fine")
	l.Debug("detail")
	want := "<3>msg=boom vm=a n=1\n<4>msg=careful vm=a\n<6>msg=fine vm=a\n<7>msg=detail vm=a\n"
	if buf.String() != want {
		t.Errorf("got\n%s\nwant\n%s", buf.String(), want)
	}
	buf.Reset()
	New(&buf, false, slog.LevelInfo).Info("plain")
	if !bytes.HasPrefix(buf.Bytes(), []byte("time=")) {
		t.Errorf("plain form: %s", buf.String())
	}
}

func TestLimiter(t *testing.T) {
	var buf bytes.Buffer
	now := time.Unix(1000, 0)
	l := &Limiter{Logger: New(&buf, true, slog.LevelInfo), Burst: 3, Interval: time.Minute, Now: func() time.Time { return now }}
	for range 2000 {
		l.Warn("junk", "peer", "x")
	}
	if got := strings.Count(buf.String(), "\n"); got != 3 {
		t.Fatalf("2000 events in one window logged %d lines:\n%s", got, buf.String())
	}
	now = now.Add(time.Minute)
	buf.Reset()
	l.Warn("junk", "peer", "y")
	if want := "<4>msg=junk peer=y suppressed=1997\n"; buf.String() != want {
		t.Fatalf("next window: %q, want %q", buf.String(), want)
	}
	buf.Reset()
	for range 5 {
		l.Warn("junk")
	}
	l.Flush("junk suppressed")
	if want := "<4>msg=junk\n<4>msg=junk\n<4>msg=\"junk suppressed\" suppressed=3\n"; buf.String() != want {
		t.Fatalf("flush: %q, want %q", buf.String(), want)
	}
}
