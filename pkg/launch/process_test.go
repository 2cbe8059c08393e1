package launch

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A child (hypervisor, local agent) must not be able to write a core dump, whatever limit the
// service gave the launcher: execve makes it dumpable again, and a core holds every credential.
func TestChildrenCannotDumpCore(t *testing.T) {
	// The service's limit as systemd sets it by default: unlimited (at most the hard limit).
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_CORE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Max != 0 {
		_ = unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{Cur: lim.Max, Max: lim.Max})
	}
	p := newProcess(exec.Command("sleep", "10"))
	if err := p.startProcess(); err != nil {
		t.Fatal(err)
	}
	defer p.terminate(time.Second)
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", p.pid()))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^Max core file size\s+(\S+)\s+(\S+)`).FindSubmatch(b)
	if m == nil || string(m[1]) != "0" || string(m[2]) != "0" {
		t.Fatalf("child's core limit (soft, hard) = %q, want 0 0:\n%s", m, b)
	}
}

// TestChildrenDoNotInheritServiceEnv: whatever starts it (qemu, cloud-hypervisor, the local
// agent: all through newProcess), a child gets neither the service's notify socket, watchdog,
// socket activation nor credentials directory; the rest of the environment passes.
func TestChildrenDoNotInheritServiceEnv(t *testing.T) {
	for _, k := range serviceEnv {
		t.Setenv(k, "/from-the-service")
	}
	t.Setenv("CREDLINK_TEST_KEEP", "kept")
	for _, tc := range []struct {
		name string
		env  []string // cmd.Env before newProcess; nil = inherit
	}{
		{"inherited environment", nil},
		{"explicit environment", append(os.Environ(), "EXTRA=1")},
	} {
		cmd := exec.Command("env", "-0") // prints the environment it got, NUL-separated
		cmd.Env = tc.env
		var out bytes.Buffer
		cmd.Stdout = &out
		p := newProcess(cmd)
		if err := p.startProcess(); err != nil {
			t.Fatal(err)
		}
		<-p.exit
		if p.err != nil {
			t.Fatal(p.err)
		}
		b := out.Bytes()
		env := "\x00" + string(b)
		for _, k := range serviceEnv {
			if strings.Contains(env, "\x00"+k+"=") {
				t.Errorf("%s: the child inherited %s", tc.name, k)
			}
		}
		if !strings.Contains(env, "\x00CREDLINK_TEST_KEEP=kept\x00") {
			t.Errorf("%s: the rest of the environment was lost: %q", tc.name, b)
		}
	}
}

// TestExitNoticedPromptly: the launcher notices its child's exit through the pidfd at once,
// whether the child exits before the wait begins (true) or during it (sleep 0.2). A wake-up lost
// in between (RawConn.Read forgets readiness that came before it) would leave the launcher
// unaware until the child is killed; a wait in wait4 would hold an OS thread instead.
func TestExitNoticedPromptly(t *testing.T) {
	for _, argv := range [][]string{{"true"}, {"sleep", "0.2"}} {
		for i := range 20 {
			p := newProcess(exec.Command(argv[0], argv[1:]...))
			t0 := time.Now()
			if err := p.startProcess(); err != nil {
				t.Fatal(err)
			}
			if !p.waitExit(time.Second) {
				_ = p.terminate(time.Second)
				t.Fatalf("%v, run %d: exit not noticed within 1 s", argv, i)
			}
			if d := time.Since(t0); d > 900*time.Millisecond {
				t.Errorf("%v, run %d: exit noticed after %v", argv, i, d)
			}
		}
	}
}
