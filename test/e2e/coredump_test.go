//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/credlink/credlink/pkg/sdnotify"
)

// TestCrashedQEMULeavesNoCore: the review's crash, for real. The service's RLIMIT_CORE is
// unlimited (systemd's default), QEMU holds every OEM string and credlink.key, and a SIGSEGV
// used to leave a 66 MB core with all of them in QEMU's working directory. QEMU must run with
// RLIMIT_CORE 0 (soft and hard) and leave no core.
func TestCrashedQEMULeavesNoCore(t *testing.T) {
	pattern, _ := os.ReadFile("/proc/sys/kernel/core_pattern")
	if p := strings.TrimSpace(string(pattern)); strings.HasPrefix(p, "|") || strings.Contains(p, "/") {
		t.Skipf("core_pattern %q does not write into the working directory; nothing to look for", p)
	}
	var lim unix.Rlimit
	unix.Getrlimit(unix.RLIMIT_CORE, &lim)
	if lim.Max == 0 {
		t.Skip("this process may not dump cores at all (hard RLIMIT_CORE 0): the test would prove nothing")
	}
	if err := unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{Cur: lim.Max, Max: lim.Max}); err != nil {
		t.Fatal(err)
	}
	defer unix.Setrlimit(unix.RLIMIT_CORE, &lim)

	cwd := t.TempDir()
	v := startVM(t, vmOpts{dep: realDeployment(t), agent: false, ackTimeout: 2 * time.Minute, cwd: cwd})
	if _, err := v.notify.Wait(time.Minute, sdnotify.HasPrefix("STATUS", "Waiting for acknowledgement")); err != nil {
		t.Fatal(err)
	}
	qemu := childPID(t, v.cmd.Process.Pid)
	limits, _ := os.ReadFile(fmt.Sprintf("/proc/%d/limits", qemu))
	if m := regexp.MustCompile(`(?m)^Max core file size\s+(\S+)\s+(\S+)`).FindSubmatch(limits); m == nil || string(m[1]) != "0" || string(m[2]) != "0" {
		t.Errorf("QEMU's core limit (soft, hard) = %q, want 0 0", m)
	}
	t.Logf("QEMU pid %d, %s", qemu, regexp.MustCompile(`(?m)^Max core file size.*$`).Find(limits))
	if err := syscall.Kill(qemu, syscall.SIGSEGV); err != nil {
		t.Fatal(err)
	}
	if code := v.waitExit(time.Minute); code != 3 {
		t.Errorf("launcher exit %d after QEMU crashed, want 3", code)
	}
	cores, _ := filepath.Glob(filepath.Join(cwd, "core*"))
	for _, c := range cores {
		fi, _ := os.Stat(c)
		t.Errorf("QEMU left a core dump: %s (%d bytes)", c, fi.Size())
	}
}

// childPID returns the one child of pid (the hypervisor of a launcher).
func childPID(t *testing.T, pid int) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
		for _, f := range tasks {
			b, _ := os.ReadFile(f)
			if fields := strings.Fields(string(b)); len(fields) > 0 {
				n, err := strconv.Atoi(fields[0])
				if err == nil {
					return n
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("launcher %d has no child", pid)
	return 0
}
