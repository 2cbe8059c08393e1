package sdnotify

import (
	"errors"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

// The go-systemd sender and this receiver agree on a real unixgram socket.
func TestWithGoSystemd(t *testing.T) {
	l, err := Listen(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	t.Setenv("NOTIFY_SOCKET", l.Path)
	if sent, err := daemon.SdNotify(false, "READY=1\nSTATUS=5/5 credentials verified"); !sent || err != nil {
		t.Fatalf("SdNotify: %v %v", sent, err)
	}
	m, err := l.Wait(time.Second, Has("READY", "1"))
	if err != nil || m.Fields["STATUS"] != "5/5 credentials verified" {
		t.Fatalf("%+v %v", m, err)
	}
	if _, err := l.Wait(50*time.Millisecond, Has("STOPPING", "1")); !errors.Is(err, ErrTimeout) {
		t.Errorf("Wait for an absent message: %v", err)
	}
}

// A newline inside a field would let whoever chose the value add READY=1 or MAINPID= to the
// datagram (systemd splits at newlines): the sender refuses it, and everything else that is
// not a plain printable value.
func TestEncodeRefusesNewlineInField(t *testing.T) {
	for _, tc := range []struct {
		name   string
		fields []Field
		want   string // "" = refused
	}{
		{"ready and status", []Field{Ready, Status("Ready: 5/5 credentials delivered byte-exact")}, "READY=1\nSTATUS=Ready: 5/5 credentials delivered byte-exact"},
		{"newline smuggles fields", []Field{Status("Failed: X: wrong_length\nREADY=1\nMAINPID=1")}, ""},
		{"carriage return", []Field{Status("a\rb")}, ""},
		{"NUL", []Field{Status("a\x00b")}, ""},
		{"DEL", []Field{Status("a\x7fb")}, ""},
		{"lower-case key", []Field{{"status", "x"}}, ""},
		{"key with equals", []Field{{"STATUS=READY", "1"}}, ""},
		{"key with newline", []Field{{"X\nREADY", "1"}}, ""},
		{"empty key", []Field{{"", "1"}}, ""},
		{"oversize", []Field{Status(strings.Repeat("x", MaxValue+1))}, ""},
		{"no fields", nil, ""},
		{"UTF-8 is fine", []Field{Status("Bereit: 5/5 – ok")}, "STATUS=Bereit: 5/5 – ok"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Encode(tc.fields...)
			if tc.want == "" {
				if !errors.Is(err, ErrUnsafeField) {
					t.Fatalf("Encode = %q, %v; want ErrUnsafeField", got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Encode = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// Notify sends nothing at all when one field is unsafe: a refused STATUS= must not leave a
// READY=1 beside it in flight.
func TestNotifySendsNothingWhenRefused(t *testing.T) {
	l, err := Listen(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	t.Setenv("NOTIFY_SOCKET", l.Path)
	if err := Notify(Ready, Status("x\nMAINPID=1")); !errors.Is(err, ErrUnsafeField) {
		t.Fatalf("Notify = %v", err)
	}
	if err := Notify(Stopping); err != nil {
		t.Fatal(err)
	}
	m, err := l.Wait(time.Second, Has("STOPPING", "1"))
	if err != nil {
		t.Fatal(err)
	}
	if all := l.Messages(); len(all) != 1 || m.Raw != "STOPPING=1" {
		t.Fatalf("messages: %+v", all)
	}
}

func TestText(t *testing.T) {
	for in, want := range map[string]string{
		"plain text":             "plain text",
		"a\nREADY=1":             `a\nREADY=1`,
		"tab\there":              `tab\there`,
		"back\\slash":            `back\\slash`,
		"bad \xff byte":          `bad \xff byte`,
		"nel \u0085 ls \u2028":   `nel \u0085 ls \u2028`,
		"ümlaut":                 "ümlaut",
		strings.Repeat("a", 70):  strings.Repeat("a", 61) + "…",
		strings.Repeat("\n", 40): strings.Repeat(`\n`, 30) + "…",
	} {
		if got := Text(in, 64); got != want {
			t.Errorf("Text(%q) = %q, want %q", in, got, want)
		}
		if got := Text(in, 64); len(got) > 64 {
			t.Errorf("Text(%q) is %d bytes", in, len(got))
		}
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		raw  string
		want map[string]string
	}{
		{"READY=1", map[string]string{"READY": "1"}},
		{"READY=1\nSTATUS=a=b", map[string]string{"READY": "1", "STATUS": "a=b"}},
		{"STATUS=one\nSTATUS=two", map[string]string{"STATUS": "two"}},
		{"garbage\n\nREADY=1\n", map[string]string{"READY": "1"}},
		{"", map[string]string{}},
	}
	for _, tt := range tests {
		m := Parse(tt.raw, time.Time{})
		if m.Raw != tt.raw || !maps.Equal(m.Fields, tt.want) {
			t.Errorf("Parse(%q) = %v, want %v", tt.raw, m.Fields, tt.want)
		}
	}
}

func TestWaitNth(t *testing.T) {
	l, err := Listen(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for _, s := range []string{"STATUS=a", "READY=1", "STATUS=b", "STATUS=c"} {
		if err := l.Send(s); err != nil {
			t.Fatal(err)
		}
	}
	if m, err := l.WaitNth(time.Second, 2, HasPrefix("STATUS", "")); err != nil || m.Raw != "STATUS=b" {
		t.Errorf("second STATUS: %+v %v", m, err)
	}
	if _, err := l.WaitNth(50*time.Millisecond, 4, HasPrefix("STATUS", "")); !errors.Is(err, ErrTimeout) {
		t.Errorf("fourth STATUS of three: %v", err)
	}
}
