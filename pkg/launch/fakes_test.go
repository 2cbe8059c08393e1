package launch

// This file turns the test binary into stand-ins for the programs host-launcher starts, selected
// by CREDLINK_FAKE: "agent-sleep" (a guest that never acknowledges), "agent-crash" (a guest that
// dies at once), "agent-junk-first" (sends forged reports, then becomes the real agent), "qemu" (records its argv and a digest of each inherited pipe, then idles) and
// "cloud-hypervisor" (the REST API of cloud-hypervisor, see fakech_test.go).

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
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

	"github.com/credlink/credlink/pkg/ack"
	"github.com/credlink/credlink/pkg/credential"
	"github.com/credlink/credlink/pkg/smbios"
	"github.com/credlink/credlink/pkg/sources"
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
	case "agent-junk-first":
		fakeJunkFirst()
		return
	case "qemu":
		fakeQEMU()
		return
	case "cloud-hypervisor":
		fakeCloudHypervisor()
		return
	}
	testBin, _ = os.Executable()
	agentBin = testkit.MustBin("guest-agent")
	os.Setenv("FAKE_REAL_AGENT", agentBin)
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

// fakeJunkFirst is a local guest that holds the launch key (it reads credlink.key like the real
// agent) but first sends three reports that do not verify (random bytes where the sealed report
// belongs, after a proper hello), then execs the real guest-agent ($FAKE_REAL_AGENT) with its
// arguments. It says on stderr how far each forged exchange got.
func fakeJunkFirst() {
	var sys string
	for i, a := range os.Args {
		if a == "--sysfs" && i+1 < len(os.Args) {
			sys = os.Args[i+1]
		}
	}
	set, err := sources.SMBIOS{Sysfs: sys, Systemd: credential.SystemdLatest}.Read()
	if err != nil {
		fmt.Fprintln(os.Stderr, "fake agent:", err)
		os.Exit(10)
	}
	addrCred, okA := set.Get(credential.AckCredential)
	keyCred, okK := set.Get(credential.KeyCredential)
	if !okA || !okK {
		os.Exit(11)
	}
	addr, err := ack.ParseAddress(string(addrCred.Value.Bytes()))
	if err != nil {
		os.Exit(12)
	}
	key := keyCred.Value.Bytes()
	for i := range 3 {
		conn, err := addr.Dialer().Dial(context.Background())
		if err != nil {
			fmt.Fprintln(os.Stderr, "fake agent: dial:", err)
			continue
		}
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		nonce := make([]byte, ack.NonceSize)
		rand.Read(nonce)
		hello, _ := json.Marshal(ack.Hello{Nonce: nonce, BootID: "junk", MAC: ack.HelloMAC(key, nonce, "junk")})
		ack.WriteFrame(conn, ack.TypeHello, hello)
		if typ, _, err := ack.NewFrameReader(conn, false).Next(); err != nil || typ != ack.TypeChallenge {
			fmt.Fprintln(os.Stderr, "fake agent: no challenge:", typ, err)
			conn.Close()
			continue
		}
		junk := make([]byte, 96)
		rand.Read(junk)
		ack.WriteFrame(conn, ack.TypeReport, junk)
		io.ReadAll(conn) // the host closes without a verdict
		conn.Close()
		fmt.Fprintf(os.Stderr, "fake agent: forged report %d sent\n", i+1)
	}
	real := os.Getenv("FAKE_REAL_AGENT")
	err = syscall.Exec(real, append([]string{real}, os.Args[1:]...), os.Environ())
	fmt.Fprintln(os.Stderr, "fake agent: exec:", err)
	os.Exit(13)
}
