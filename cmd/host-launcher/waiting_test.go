package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/credlink/credlink/pkg/sdnotify"
	"github.com/credlink/credlink/pkg/testkit"
)

// maxWaitingThreads bounds the OS threads of a launcher waiting for its acknowledgement with
// GOMAXPROCS=1, as the units run it. They count against kernel.pid_max and threads-max on a
// host with thousands of VMs booting. Go's floor with os/signal is 5: the thread holding the P
// (in epoll_pwait), sysmon, and three for os/signal (runtime/sigqueue.go signal_recv parks its
// thread in notetsleepg; ensureSigM's goroutine locks one; LockOSThread starts the template
// thread). Up to two more are idle threads left from start-up: with one P, sysmon hands the P
// to another thread whenever a system call blocks longer than its tick (20 µs to 10 ms), and
// the runtime never ends an idle thread; how many depends on timing (5, 6 or 7 in repeated
// runs). A goroutine parked in a blocking system call (wait4 on the hypervisor, say) adds one,
// which idleSyscalls catches whatever the count; periodic wake-ups add hand-offs over time.
func maxWaitingThreads() int {
	if testkit.Race {
		return 8 // the race detector's runtime
	}
	return 7
}

// idleSyscalls are the only system calls a waiting launcher's threads may be blocked in: the
// runtime's own parking (futex), its netpoller, and sysmon's sleep. Anything else (wait4,
// waitid, read, accept4 on a blocking descriptor) pins an OS thread for as long as it blocks.
var idleSyscalls = map[string]string{"202": "futex", "281": "epoll_pwait", "232": "epoll_wait", "35": "nanosleep", "230": "clock_nanosleep"}

// TestWaitingLauncherIsQuiet: a host-launcher waiting for a guest that never answers (a stand-in
// QEMU that sleeps) keeps few threads, none pinned in a blocking system call, and tells the
// service manager nothing new for seconds (statusEvery in pkg/launch), so that 10,000 of them
// neither exhaust pids nor flood PID 1. It still notices at once when its hypervisor dies (the
// pidfd wait, not a timer): exit 3.
func TestWaitingLauncherIsQuiet(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	qemu := script(t, dir, "qemu", "exec sleep 60")
	rt := filepath.Join(dir, "rt")
	os.Mkdir(rt, 0o700)
	notify, err := sdnotify.Listen(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer notify.Close()
	p := testkit.Start(t, []string{"NOTIFY_SOCKET=" + notify.Path, "CREDENTIALS_DIRECTORY=" + f.creds, "GOMAXPROCS=1"}, launcherBin(t),
		"run", "--vm", "web", "--hypervisor", "qemu", "--qemu", qemu, "--ack-via", "serial", "--runtime-dir", rt,
		"--ack-timeout", "2m", "--shutdown-timeout", "1s", "--credential", "API_KEY=api", "--credential", "DB_PASSWORD=db", "--", "-m", "64")
	if _, err := notify.Wait(30*time.Second, sdnotify.HasPrefix("STATUS", "Waiting for acknowledgement from web")); err != nil {
		t.Fatalf("%v\n%s", err, p.Stderr.String())
	}
	sent := len(notify.Messages())
	// What the launcher does while nothing happens can only be seen by letting time pass.
	time.Sleep(3 * time.Second)
	pid := p.Cmd.Process.Pid
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		t.Fatalf("launcher gone: %v\n%s", err, p.Stderr.String())
	}
	var where []string
	for _, task := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/syscall", pid, task.Name()))
		if err != nil { // the launcher is non-dumpable: only root (CAP_SYS_PTRACE) reads this
			where = append(where, "?")
			continue
		}
		nr := strings.Fields(string(b))[0]
		name, ok := idleSyscalls[nr]
		if !ok && nr != "running" {
			t.Errorf("thread %s blocked in system call %s, which pins it: %s", task.Name(), nr, b)
		}
		where = append(where, name)
	}
	t.Logf("%d threads: %v", len(tasks), where)
	if len(tasks) > maxWaitingThreads() {
		t.Errorf("a waiting launcher has %d threads, want at most %d: %v", len(tasks), maxWaitingThreads(), where)
	}
	if msgs := notify.Messages()[sent:]; len(msgs) > 0 {
		t.Errorf("%d notifications in 3 s of waiting, want none (STATUS= is refreshed every 30 s): %q", len(msgs), msgs[0].Raw)
	}

	// The hypervisor dies: noticed through the pidfd, not after a timer.
	var children []string // /proc/PID/task/TID/children lists those the thread TID forked
	for _, task := range tasks {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", pid, task.Name()))
		children = append(children, strings.Fields(string(b))...)
	}
	if len(children) != 1 {
		t.Fatalf("want the stand-in QEMU as the launcher's only child, have %q", children)
	}
	qpid, _ := strconv.Atoi(children[0])
	t0 := time.Now()
	if err := syscall.Kill(qpid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if code := p.Wait(t, 10*time.Second); code != 3 {
		t.Errorf("exit %d after the hypervisor died, want 3\n%s", code, p.Stderr.String())
	}
	if d := time.Since(t0); d > time.Second {
		t.Errorf("the hypervisor's death noticed after %v", d)
	}
}
