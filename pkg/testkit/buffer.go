package testkit

import (
	"bytes"
	"fmt"
	"regexp"
	"sync"
	"time"
)

// SyncBuffer is a bytes.Buffer that several goroutines (a child's stdout and stderr copiers, a
// logger, the test) can use at once, and that a test can wait on for a line to appear.
type SyncBuffer struct {
	mu      sync.Mutex
	b       bytes.Buffer
	changed chan struct{} // closed and replaced on every write
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.changed != nil {
		close(s.changed)
		s.changed = nil
	}
	return s.b.Write(p)
}

// String returns everything written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// WaitFor waits up to d for the content to match re and returns the first match's submatches.
// It wakes on writes, not on a timer.
func (s *SyncBuffer) WaitFor(d time.Duration, re *regexp.Regexp) ([]string, error) {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		m := re.FindStringSubmatch(s.b.String())
		if s.changed == nil {
			s.changed = make(chan struct{})
		}
		changed := s.changed
		s.mu.Unlock()
		if m != nil {
			return m, nil
		}
		select {
		case <-changed:
		case <-deadline.C:
			return nil, fmt.Errorf("no output matching %q within %v", re, d)
		}
	}
}

// WaitForText is WaitFor with a literal string.
func (s *SyncBuffer) WaitForText(d time.Duration, text string) error {
	_, err := s.WaitFor(d, regexp.MustCompile(regexp.QuoteMeta(text)))
	return err
}
