package launch

// This file turns the test binary into stand-ins for the programs host-launcher starts, selected
// by CREDLINK_FAKE: "agent-sleep" (a guest that never acknowledges), "agent-crash" (a guest that
// dies at once), "qemu" (records its argv and a digest of each inherited pipe, then idles) and
// "cloud-hypervisor" (the REST API of cloud-hypervisor, see fakech_test.go).

import (
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

var (
	testBin  string // this test binary, re-executed as a fake
	agentBin string // the real guest-agent
)

func TestMain(m *testing.M) {
	switch os.Getenv("CREDLINK_FAKE") {
	case "agent-sleep":
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM)
		<-sig
		os.Exit(0)
	case "agent-crash":
		fmt.Fprintln(os.Stderr, "fake agent: crashing")
		os.Exit(7)
	case "qemu":
		fakeQEMU()
		return
	case "cloud-hypervisor":
		fakeCloudHypervisor()
		return
	}
	dir, err := os.MkdirTemp("", "launch-test-")
	if err != nil {
		panic(err)
	}
	testBin, _ = os.Executable()
	agentBin = filepath.Join(dir, "guest-agent")
	if out, err := exec.Command("go", "build", "-o", agentBin, "../../cmd/guest-agent").CombinedOutput(); err != nil {
		panic(fmt.Sprintf("build guest-agent: %v\n%s", err, out))
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// fakeQEMU writes its argv and, for every -smbios path=/dev/fd/N, the SHA-256 of what the pipe
// delivered to $FAKE_QEMU_OUT, then waits for SIGTERM like QEMU does.
func fakeQEMU() {
	var b strings.Builder
	args := os.Args[1:]
	for i, a := range args {
		fmt.Fprintf(&b, "arg %s\n", a)
		if i > 0 && args[i-1] == "-smbios" && strings.Contains(a, "path=/dev/fd/") {
			n, _ := strconv.Atoi(a[strings.LastIndex(a, "/")+1:])
			data, err := io.ReadAll(os.NewFile(uintptr(n), "pipe"))
			fmt.Fprintf(&b, "fd %d sha256 %x len %d err %v\n", n, sha256.Sum256(data), len(data), err)
		}
	}
	if err := os.WriteFile(os.Getenv("FAKE_QEMU_OUT"), []byte(b.String()), 0o600); err != nil {
		os.Exit(10)
	}
	if os.Getenv("FAKE_QEMU_EXIT") != "" {
		os.Exit(1)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM)
	select {
	case <-sig:
	case <-time.After(time.Minute):
	}
	os.Exit(0)
}
