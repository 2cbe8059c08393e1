package main

import (
	"os"
	"path/filepath"
	"testing"
)

// The launch-kvm figures count only rounds with every arm from one L1: a round a hung L1 left
// incomplete, or a warm-up round, must not count (nor tilt the arms' medians).
func TestCompleteRounds(t *testing.T) {
	s := func(attempt, round int, arm string) kvmSample {
		return kvmSample{Attempt: attempt, Round: round, Arm: arm}
	}
	for _, tc := range []struct {
		name    string
		samples []kvmSample
		want    int
	}{
		{"none", nil, 0},
		{"warm-up only", []kvmSample{s(0, -1, "plain"), s(0, -1, "vsock"), s(0, -1, "serial")}, 0},
		{"one full round", []kvmSample{s(0, 0, "vsock"), s(0, 0, "plain"), s(0, 0, "serial")}, 1},
		{"hung mid-round", []kvmSample{s(0, 0, "vsock"), s(0, 0, "plain"), s(0, 0, "serial"), s(0, 1, "plain")}, 1},
		// The next L1 numbers its rounds from 0 again: round 1 of attempt 0 and of attempt 1
		// are different rounds.
		{"rounds of two L1s", []kvmSample{s(0, 1, "plain"), s(0, 1, "vsock"), s(1, 1, "serial")}, 0},
		{"resumed", []kvmSample{s(0, 0, "plain"), s(0, 0, "vsock"), s(0, 0, "serial"), s(0, 1, "plain"),
			s(1, 0, "serial"), s(1, 0, "plain"), s(1, 0, "vsock")}, 2},
	} {
		if got := completeRounds(tc.samples); got != tc.want {
			t.Errorf("%s: %d complete rounds, want %d", tc.name, got, tc.want)
		}
	}
}

func TestReadSamplesSkipsTornLine(t *testing.T) {
	p := filepath.Join(t.TempDir(), "s.jsonl")
	os.WriteFile(p, []byte(`{"arm":"plain","round":0,"ready_ms":1}`+"\n"+`{"arm":"vsock","rou`), 0o644)
	got := readSamples(p)
	if len(got) != 1 || got[0].Arm != "plain" || got[0].Ready != 1 {
		t.Errorf("readSamples = %+v, want the one whole line", got)
	}
}

// logMS reads the launcher's slog text fields; a missing one is -1, not 0 (which would pass
// for an instant exchange).
func TestLogMS(t *testing.T) {
	log := `time=… level=INFO msg="guest acknowledged: credentials delivered byte-exact" credentials=5 boot_id=x exchange=11.5ms ack_to_ready=2.445033ms since_start=8.3s`
	for _, tc := range []struct {
		key  string
		want float64
	}{{"exchange", 11.5}, {"ack_to_ready", 2.445033}, {"since_start", 8300}, {"ready", -1}, {"missing", -1}} {
		if got := logMS(log, tc.key); got != tc.want {
			t.Errorf("logMS(%q) = %v, want %v", tc.key, got, tc.want)
		}
	}
}
