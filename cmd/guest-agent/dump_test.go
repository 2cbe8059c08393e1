package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"
	"time"
)

// TestAgentKeepsMemoryOutOfDumps: the running agent holds every credential it verified and
// credlink.key. Run as an unprivileged user (as under DynamicUser=), it is non-dumpable (its
// /proc entries belong to root, so other processes of its user cannot read its memory) and
// cannot write a core, whatever limit it was started with.
func TestAgentKeepsMemoryOutOfDumps(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to run the agent as another user")
	}
	dir, err := os.MkdirTemp("", "ga-dump")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	creds := filepath.Join(dir, "creds")
	os.Mkdir(creds, 0o755)
	os.WriteFile(filepath.Join(creds, "A"), []byte("abcd"), 0o444)
	manifest := filepath.Join(dir, "m.json")
	os.WriteFile(manifest, []byte(`{"credentials": {"A": {"bytes": 4}}}`), 0o644)
	os.Chmod(dir, 0o755)
	bin := filepath.Join(dir, "guest-agent")
	if b, err := os.ReadFile(agentBin(t)); err != nil || os.WriteFile(bin, b, 0o755) != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "run", "--source", "credentials", "--credentials-dir", creds, "--manifest", manifest, "--ack-timeout", "10s")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	pid := cmd.Process.Pid
	deadline := time.Now().Add(5 * time.Second)
	var st syscall.Stat_t
	for {
		if err := syscall.Stat(fmt.Sprintf("/proc/%d/environ", pid), &st); err == nil && st.Uid == 0 {
			break // non-dumpable
		}
		if time.Now().After(deadline) {
			t.Fatalf("/proc/%d/environ owned by uid %d: the agent is dumpable", pid, st.Uid)
		}
		time.Sleep(10 * time.Millisecond)
	}
	limits, _ := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
	if m := regexp.MustCompile(`(?m)^Max core file size\s+(\S+)\s+(\S+)`).FindSubmatch(limits); m == nil || string(m[1]) != "0" || string(m[2]) != "0" {
		t.Errorf("agent's core limit (soft, hard) = %q, want 0 0", m)
	}
}
