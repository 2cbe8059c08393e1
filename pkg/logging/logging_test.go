package logging

import (
	"bytes"
	"log/slog"
	"testing"
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
