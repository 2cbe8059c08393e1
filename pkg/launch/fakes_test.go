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
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/credlink/credlink/pkg/smbios"
	"github.com/credlink/credlink/pkg/testkit"
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
	testBin, _ = os.Executable()
	agentBin = testkit.MustBin("guest-agent")
	testkit.Main(m)
}

// fakeQEMU writes its argv and what each -smbios delivered to $FAKE_QEMU_OUT, then waits for
// SIGTERM like QEMU does. For path=/dev/fd/N it reads the pipe (one string); for
// file=/dev/fd/N it does what QEMU 7.2's smbios_entry_add does (opens the path, sizes it with
// a seek to the end, loads it) and records the blob's header, its seals and each string. Strings
// are recorded as "str sha256 … len …", in delivery order.
func fakeQEMU() {
	var b strings.Builder
	args := os.Args[1:]
	for i, a := range args {
		fmt.Fprintf(&b, "arg %s\n", a)
		if i == 0 || args[i-1] != "-smbios" {
			continue
		}
		n, _ := strconv.Atoi(a[strings.LastIndex(a, "/")+1:])
		switch {
		case strings.Contains(a, "path=/dev/fd/"):
			data, err := io.ReadAll(os.NewFile(uintptr(n), "pipe"))
			fmt.Fprintf(&b, "pipe fd %d err %v\nstr sha256 %x len %d\n", n, err, sha256.Sum256(data), len(data))
		case strings.HasPrefix(a, "file=/dev/fd/"):
			f, err := os.Open(a[len("file="):])
			if err != nil {
				fmt.Fprintf(&b, "blob fd %d err %v\n", n, err)
				continue
			}
			size, err := f.Seek(0, io.SeekEnd)
			data := make([]byte, max(size, 0))
			if err == nil {
				_, err = f.ReadAt(data, 0)
			}
			seals, _ := unix.FcntlInt(f.Fd(), unix.F_GET_SEALS, 0)
			f.Close()
			strs, perr := smbios.ParseEntry(data)
			fmt.Fprintf(&b, "blob fd %d size %d type %d handle %#04x count %d seals %#x err %v parse %v\n", n, size, data[0], smbios.Handle(data), data[4], seals, err, perr)
			for _, s := range strs {
				fmt.Fprintf(&b, "str sha256 %x len %d\n", sha256.Sum256([]byte(s)), len(s))
			}
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
