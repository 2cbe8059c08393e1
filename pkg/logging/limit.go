package logging

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Limiter logs what unauthenticated peers cause — junk connections, forged reports, stray
// notifications — at most Burst lines per Interval, so that a peer who can send without a key
// cannot fill the journal: anything over the limit is counted, and the count is logged with the
// next line let through ("suppressed=N"), or by Flush. Authenticated events that decide
// something are logged in full; only those a key holder can repeat at will after the decision
// (a guest's rejections after READY=1) go through a Limiter of their own.
type Limiter struct {
	Logger   *slog.Logger
	Burst    int           // lines per Interval; default 10
	Interval time.Duration // default 1 minute
	Now      func() time.Time

	mu         sync.Mutex
	windowFrom time.Time
	used       int
	suppressed int64
}

func (l *Limiter) now() time.Time {
	if l.Now != nil {
		return l.Now()
	}
	return time.Now()
}

// Log logs msg at level unless this window's lines are spent.
func (l *Limiter) Log(level slog.Level, msg string, args ...any) {
	if l == nil || l.Logger == nil {
		return
	}
	burst, interval := l.Burst, l.Interval
	if burst <= 0 {
		burst = 10
	}
	if interval <= 0 {
		interval = time.Minute
	}
	l.mu.Lock()
	now := l.now()
	if now.Sub(l.windowFrom) >= interval {
		l.windowFrom, l.used = now, 0
	}
	if l.used >= burst {
		l.suppressed++
		l.mu.Unlock()
		return
	}
	l.used++
	n := l.suppressed
	l.suppressed = 0
	l.mu.Unlock()
	if n > 0 {
		args = append(args, "suppressed", n)
	}
	l.Logger.Log(context.Background(), level, msg, args...)
}

// Warn is Log at warning level.
func (l *Limiter) Warn(msg string, args ...any) { l.Log(slog.LevelWarn, msg, args...) }

// Flush logs how many lines were suppressed since the last one let through, if any.
func (l *Limiter) Flush(msg string) {
	if l == nil || l.Logger == nil {
		return
	}
	l.mu.Lock()
	n := l.suppressed
	l.suppressed = 0
	l.mu.Unlock()
	if n > 0 {
		l.Logger.Warn(msg, "suppressed", n)
	}
}
