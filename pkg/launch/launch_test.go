package launch

import (
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/credlink/credlink/pkg/ack"
	"github.com/credlink/credlink/pkg/credential"
	"github.com/credlink/credlink/pkg/logging"
	"github.com/credlink/credlink/pkg/sdnotify"
	"github.com/credlink/credlink/pkg/smbios"
	"github.com/credlink/credlink/pkg/testkit"
)

var secrets = map[string]string{
	"API_KEY":     "sk-live-launcher-test-0123456789abcdefghijkl", // 44
	"DB_PASSWORD": "db-pass-with,comma-and=equals\x00and-binary\xff",
}

const manifestOK = `{"credentials": {"API_KEY": {"bytes": 44}, "DB_PASSWORD": {"min_bytes": 8}, "ENVIRONMENT": {"secret": false}}, "unexpected": "fail"}`

// leaks searches output for any form of the secrets.
var leaks = testkit.NewSecrets(secrets)

// env is one test's launch environment: credentials directory, manifest, notify socket, logs.
type env struct {
	t      *testing.T
	dir    string
	creds  string
	notify *sdnotify.Listener
	logs   *testkit.SyncBuffer
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, dir: shortTempDir(t), logs: &testkit.SyncBuffer{}}
	e.creds = filepath.Join(e.dir, "creds")
	os.Mkdir(e.creds, 0o700)
	for n, v := range secrets {
		os.WriteFile(filepath.Join(e.creds, n), []byte(v), 0o400)
	}
	os.WriteFile(filepath.Join(e.dir, "manifest.json"), []byte(manifestOK), 0o600)
	n, err := sdnotify.Listen(e.dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	e.notify = n
	t.Cleanup(func() { e.assertNoSecrets("logs", e.logs.String()) })
	return e
}

func (e *env) config(hv Hypervisor) *Config {
	return &Config{
		VM: "vm1", Hypervisor: hv, CredentialsDir: e.creds, ManifestPath: filepath.Join(e.dir, "manifest.json"),
		Credentials: []CredentialSpec{{"API_KEY", "API_KEY"}, {"DB_PASSWORD", "DB_PASSWORD"}},
		Settings:    []credential.Credential{{Name: "ENVIRONMENT", Value: credential.NewValue([]byte("test"))}},
		AckTimeout:  10 * time.Second, ShutdownTimeout: 2 * time.Second, RuntimeDir: e.dir,
		Logger: logging.New(e.logs, true, slog.LevelDebug), Stdout: e.logs, Stderr: e.logs,
		Notify: e.notify.Send,
	}
}

// local is a launch of the real guest-agent (--hypervisor local).
func (e *env) local() *Config { return e.config(&Local{Agent: agentBin}) }

// localOpts is c's --hypervisor local options.
func localOpts(c *Config) *Local { return c.Hypervisor.(*Local) }

func (e *env) assertNoSecrets(what, s string) {
	e.t.Helper()
	leaks.CheckString(e.t, what, s)
}

func (e *env) statuses() string {
	var out []string
	for _, m := range e.notify.Messages() {
		out = append(out, strings.ReplaceAll(m.Raw, "\n", " | "))
	}
	return strings.Join(out, "\n")
}

// assertClean checks that a launch left nothing behind in its runtime directory's parent.
func (e *env) assertClean() {
	e.t.Helper()
	left, _ := filepath.Glob(filepath.Join(e.dir, "credlink-*"))
	if len(left) > 0 {
		e.t.Errorf("runtime directory left behind: %v", left)
	}
}

func TestLocalAccepted(t *testing.T) {
	e := newEnv(t)
	c := e.local()
	ctx, cancel := context.WithCancel(context.Background())
	var ready Outcome
	out, err := c.Run(ctx, func(o Outcome) { ready = o; cancel() })
	if err != nil || !out.Ready {
		t.Fatalf("Run: %v %+v\n%s", err, out, e.logs.String())
	}
	if ready.AckToReady <= 0 || ready.AckToReady > 50*time.Millisecond {
		t.Errorf("ack to READY took %v", ready.AckToReady)
	}
	for _, want := range []string{"STATUS=Starting local", "STATUS=Waiting for acknowledgement from vm1", "READY=1 | STATUS=Ready: 3/3 credentials delivered byte-exact", "STOPPING=1"} {
		if !strings.Contains(e.statuses(), want) {
			t.Errorf("notifications lack %q:\n%s", want, e.statuses())
		}
	}
	// The READY=1 came after the authenticated report was received.
	m, _ := e.notify.Wait(time.Second, sdnotify.Has("READY", "1"))
	if m.Received.Before(out.Accepted.Received) {
		t.Error("READY=1 before the acknowledgement")
	}
	if len(out.Accepted.Report.Credentials) != 3 {
		t.Errorf("report: %+v", out.Accepted.Report.Credentials)
	}
	e.assertClean()
}

// TestLocalSystemd252Structures: for a guest with systemd 252 the credentials are spread over
// Type 11 structures of at most one page each, and the local agent, told to read with 252's
// rules, receives every one of them whole (a structure laid out for 257 would be cut).
func TestLocalSystemd252Structures(t *testing.T) {
	e := newEnv(t)
	c := e.local()
	c.ManifestPath, localOpts(c).Manifest = "", filepath.Join(e.dir, "m252.json")
	os.WriteFile(localOpts(c).Manifest, []byte(`{"credentials": {"API_KEY": {"bytes": 44}, "DB_PASSWORD": {"min_bytes": 8}, "ENVIRONMENT": {}, "BIG1": {"bytes": 1500}, "BIG2": {"bytes": 1500}, "BIG3": {"bytes": 1500}}, "unexpected": "fail"}`), 0o600)
	c.GuestSystemd = 252
	for _, n := range []string{"BIG1", "BIG2", "BIG3"} {
		c.Settings = append(c.Settings, credential.Credential{Name: n, Value: credential.NewValue([]byte(strings.Repeat("b", 1500)))})
	}
	p, err := c.Prepare(ack.Address{Kind: "unix", Path: filepath.Join(e.dir, "x.sock")})
	if err != nil || len(p.Structures) < 2 {
		t.Fatalf("structures: %v, %v", len(p.Structures), err)
	}
	// The agent reads with 252's rules whatever systemd runs on this host.
	plan, err := c.Plan()
	if err != nil || !strings.Contains(strings.Join(plan, "\n"), " --systemd-version 252 ") {
		t.Errorf("plan: %v\n%s", err, strings.Join(plan, "\n"))
	}
	ctx, cancel := context.WithCancel(context.Background())
	out, err := c.Run(ctx, func(Outcome) { cancel() })
	if err != nil || !out.Ready {
		t.Fatalf("Run: %v %+v\n%s", err, out, e.logs.String())
	}
	if !strings.Contains(e.statuses(), "STATUS=Ready: 6/6 credentials delivered byte-exact") {
		t.Errorf("notifications:\n%s", e.statuses())
	}
}

func TestLocalRejectedStops(t *testing.T) {
	e := newEnv(t)
	c := e.local()
	// The guest's manifest wants a 40-byte API_KEY: the agent reports wrong_length.
	gm := filepath.Join(e.dir, "guest.json")
	os.WriteFile(gm, []byte(strings.Replace(manifestOK, `"bytes": 44`, `"bytes": 40`, 1)), 0o600)
	localOpts(c).Manifest = gm
	start := time.Now()
	// A wrong READY=1 ends the launch at once: the failure shows now, not at a timeout.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out, err := c.Run(ctx, func(Outcome) { t.Error("READY reached"); cancel() })
	if !errors.Is(err, ErrNotDelivered) || ExitCode(err) != ExitNotDelivered || out.Ready {
		t.Fatalf("err %v out %+v", err, out)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("rejection took %v: it must not wait for the timeout", time.Since(start))
	}
	// The final STATUS (sent after the VM stopped) is the launcher's last word: once it is in,
	// every earlier datagram is too, and none may have been READY=1.
	if _, err := e.notify.WaitNth(5*time.Second, 2, sdnotify.HasPrefix("STATUS", "Failed: API_KEY: wrong_length in the guest; guest verification failed")); err != nil {
		t.Errorf("STATUS does not name the credential:\n%s", e.statuses())
	}
	if _, err := e.notify.Wait(0, sdnotify.Has("READY", "1")); err == nil {
		t.Error("READY=1 sent for a rejected delivery")
	}
	e.assertClean()
}

func TestReadyAnyway(t *testing.T) {
	e := newEnv(t)
	c := e.local()
	gm := filepath.Join(e.dir, "guest.json")
	os.WriteFile(gm, []byte(strings.Replace(manifestOK, `"bytes": 44`, `"bytes": 40`, 1)), 0o600)
	localOpts(c).Manifest, c.OnFailure = gm, FailReadyAnyway
	ctx, cancel := context.WithCancel(context.Background())
	out, err := c.Run(ctx, func(Outcome) { cancel() })
	if err != nil || out.Ready || out.ReadyAt.IsZero() {
		t.Fatalf("err %v out %+v", err, out)
	}
	if _, err := e.notify.Wait(time.Second, sdnotify.HasPrefix("STATUS", "Degraded (ready anyway): API_KEY: wrong_length")); err != nil {
		t.Errorf("%v\n%s", err, e.statuses())
	}
}

func TestTimeoutAndCrash(t *testing.T) {
	tests := []struct {
		name   string
		fake   string
		err    error
		code   int
		status string
	}{
		{"never acknowledges", "agent-sleep", ErrNotDelivered, ExitNotDelivered, "Failed: no acknowledgement within 700ms"},
		{"guest crashes", "agent-crash", ErrHypervisor, ExitHypervisor, "Failed: local exited before acknowledging: exit status 7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			t.Setenv("CREDLINK_FAKE", tt.fake)
			c := e.local()
			localOpts(c).Agent, c.AckTimeout = testBin, 700*time.Millisecond
			_, err := c.Run(context.Background(), nil)
			if !errors.Is(err, tt.err) || ExitCode(err) != tt.code {
				t.Fatalf("err %v (exit %d), want %v", err, ExitCode(err), tt.err)
			}
			if _, err := e.notify.Wait(time.Second, sdnotify.HasPrefix("STATUS", tt.status)); err != nil {
				t.Errorf("no STATUS %q:\n%s", tt.status, e.statuses())
			}
			e.assertClean()
		})
	}
}

// TestUnauthenticatedReportsIgnored: reports that do not verify under the launch key (here from
// a key holder in the guest, before its real agent runs) neither fail the launch nor pass it:
// the launcher waits for the authentic one.
func TestUnauthenticatedReportsIgnored(t *testing.T) {
	e := newEnv(t)
	t.Setenv("CREDLINK_FAKE", "agent-junk-first")
	c := e.local()
	localOpts(c).Agent = testBin
	ctx, cancel := context.WithCancel(context.Background())
	out, err := c.Run(ctx, func(Outcome) { cancel() })
	if err != nil || !out.Ready || out.Accepted == nil || out.Accepted.Report.BootID == "junk" {
		t.Fatalf("Run: %v %+v\n%s", err, out, e.logs.String())
	}
	if n := strings.Count(e.logs.String(), "forged report"); n != 3 {
		t.Errorf("%d forged reports sent, want 3:\n%s", n, e.logs.String())
	}
	if !strings.Contains(e.logs.String(), "refused unauthenticated report") {
		t.Errorf("the forged reports were not refused as unauthenticated:\n%s", e.logs.String())
	}
	e.assertClean()
}

func TestSIGTERMWhileWaiting(t *testing.T) {
	e := newEnv(t)
	t.Setenv("CREDLINK_FAKE", "agent-sleep")
	c := e.local()
	localOpts(c).Agent = testBin
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel)
	start := time.Now()
	out, err := c.Run(ctx, nil)
	if err != nil || out.Ready || ExitCode(err) != ExitOK {
		t.Fatalf("err %v out %+v", err, out)
	}
	if time.Since(start) > 3*time.Second {
		t.Errorf("stop took %v", time.Since(start))
	}
	if _, err := e.notify.Wait(time.Second, sdnotify.Has("STOPPING", "1")); err != nil {
		t.Error("no STOPPING=1")
	}
	// The child is gone, not orphaned.
	if out.HypervisorPID == 0 || processAlive(out.HypervisorPID) {
		t.Errorf("child %d still alive", out.HypervisorPID)
	}
	e.assertClean()
}

func processAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	return err == nil && !strings.Contains(string(b), ") Z ")
}

// TestQEMUInvocation: the argv carries only /dev/fd paths, QEMU reads exactly the OEM strings
// in order (both delivery methods; the file method as complete, sealed Type 11 structures), and
// the ack transport devices are added.
func TestQEMUInvocation(t *testing.T) {
	tests := []struct {
		method string
		extra  int      // further --set credentials, to need more than one structure
		opArgv []string // the operator's own options, after -nodefaults
		argv   []string
		blobs  []string
	}{
		{method: SMBIOSPath, argv: []string{"arg -smbios\narg type=11,path=/dev/fd/3\n", "arg -smbios\narg type=11,path=/dev/fd/8\n"}},
		{method: SMBIOSFile, argv: []string{"arg -smbios\narg file=/dev/fd/3\n"},
			blobs: []string{"blob fd 3 size %d type 11 handle 0x0b00 count 6 seals 0xf err <nil> parse <nil>"}},
		{method: SMBIOSFile, extra: 300, argv: []string{"arg -smbios\narg file=/dev/fd/3\n", "arg -smbios\narg file=/dev/fd/4\n"},
			blobs: []string{"blob fd 3 size %d type 11 handle 0x0b00 count 255 seals 0xf err <nil> parse <nil>", "blob fd 4 size %d type 11 handle 0x0b01 count 51 seals 0xf err <nil> parse <nil>"}},
		// An operator's -qmp is kept, and credlink's own (for the graceful stop) added.
		{method: SMBIOSFile, opArgv: []string{"-qmp", "unix:/run/op-qmp.sock,server=on,wait=off"},
			argv:  []string{"arg -qmp\narg unix:/run/op-qmp.sock,server=on,wait=off\n", "/qmp.sock,server=on,wait=off\n"},
			blobs: []string{"blob fd 3 size %d type 11 handle 0x0b00 count 6 seals 0xf err <nil> parse <nil>"}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%d/%d", tt.method, tt.extra, len(tt.opArgv)), func(t *testing.T) {
			e := newEnv(t)
			rec := filepath.Join(e.dir, "qemu.rec")
			t.Setenv("CREDLINK_FAKE", "qemu")
			t.Setenv("FAKE_QEMU_OUT", rec)
			c := e.config(&QEMU{Binary: testBin, AckVia: "serial", SMBIOSDelivery: tt.method, Argv: append([]string{"-machine", "q35", "-m", "256", "-nodefaults"}, tt.opArgv...)})
			c.AckTimeout = 2 * time.Second
			if tt.extra > 0 {
				c.ManifestPath = "" // the manifest lists only the three named credentials
			}
			for i := range tt.extra {
				c.Settings = append(c.Settings, credential.Credential{Name: fmt.Sprintf("S%03d", i), Value: credential.NewValue([]byte("v"))})
			}
			// What the guest must see, in order: what Prepare encodes.
			p, err := c.Prepare(ack.Address{Kind: "serial", Name: SerialPortName}) // as the run will: same sizes
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			var out Outcome
			go func() { var err error; out, err = c.Run(ctx, nil); done <- err }()
			var data []byte
			for i := 0; i < 200 && len(data) == 0; i++ {
				time.Sleep(30 * time.Millisecond)
				data, _ = os.ReadFile(rec)
			}
			cancel()
			if err := <-done; err != nil {
				t.Fatalf("Run: %v\n%s", err, e.logs.String())
			}
			rec2 := string(data)
			e.assertNoSecrets("qemu argv", rec2)
			for _, want := range append(tt.argv,
				"arg -machine\narg q35\narg -m\narg 256\narg -nodefaults\n",
				"arg -device\narg virtio-serial-pci,id=credlink-vser\n",
				"arg virtserialport,bus=credlink-vser.0,chardev=credlink-ack,name=credlink.0\n",
				"arg -qmp\n",
			) {
				if !strings.Contains(rec2, want) {
					t.Errorf("argv lacks %q:\n%s", want, rec2)
				}
			}
			var strs, blobs []string
			sc := bufio.NewScanner(strings.NewReader(rec2))
			for sc.Scan() {
				switch l := sc.Text(); {
				case strings.HasPrefix(l, "str "):
					strs = append(strs, l)
				case strings.HasPrefix(l, "blob "):
					blobs = append(blobs, l)
				}
			}
			for i, want := range tt.blobs {
				if want = fmt.Sprintf(want, smbios.StructureSize(p.Structures[i])); i >= len(blobs) || blobs[i] != want {
					t.Errorf("blob %d: got %q, want %q", i, blobs, want)
				}
			}
			if len(blobs) != len(tt.blobs) {
				t.Errorf("%d blobs, want %d", len(blobs), len(tt.blobs))
			}
			// The control credentials come first (their values are random per launch), then
			// API_KEY, DB_PASSWORD, ENVIRONMENT and the extra ones, each byte for byte.
			if len(strs) != len(p.OEM) {
				t.Fatalf("QEMU read %d strings, want %d:\n%s", len(strs), len(p.OEM), rec2)
			}
			for i, s := range p.OEM[len(p.Control):] {
				if name, _, _, _ := credential.OEMStringInfo(s); name == "credlink.vm" {
					continue
				}
				want := fmt.Sprintf("str sha256 %x len %d", sha256.Sum256([]byte(s)), len(s))
				if got := strs[len(p.Control)+i]; got != want {
					t.Errorf("string %d: %s, want %s", len(p.Control)+i, got, want)
				}
			}
			if out.Ready {
				t.Error("ready without a guest")
			}
			e.assertClean()
		})
	}
}

// TestQEMUProcessHygiene: while the (fake) hypervisor runs, no process's cmdline or environment
// holds a secret, and the scan provably covered the hypervisor's and this process's (the
// launcher's) entries. The launcher's non-dumpability is TestNonDumpable's (cmd/host-launcher).
func TestQEMUProcessHygiene(t *testing.T) {
	e := newEnv(t)
	t.Setenv("CREDLINK_FAKE", "qemu")
	t.Setenv("FAKE_QEMU_OUT", filepath.Join(e.dir, "qemu.rec"))
	marker := fmt.Sprintf("hygiene-%d", os.Getpid()) // recognises the fake among all processes
	c := e.config(&QEMU{Binary: testBin, AckVia: "serial", Argv: []string{"-machine", "q35", "-name", marker}})
	c.AckTimeout = time.Minute
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type result struct {
		out Outcome
		err error
	}
	done := make(chan result, 1)
	go func() { o, err := c.Run(ctx, nil); done <- result{o, err} }()
	// The launcher says it waits for the acknowledgement only once the hypervisor process has
	// been started (exec.Cmd.Start returns after the execve), with its argv and environment final.
	if _, err := e.notify.Wait(30*time.Second, sdnotify.HasPrefix("STATUS", "Waiting for acknowledgement")); err != nil {
		t.Fatalf("%v\n%s", err, e.statuses())
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	scanned := map[string]int{} // pid → files read
	var fakeQEMU []string       // pids whose argv is the fake's
	for _, d := range ents {
		for _, f := range []string{"cmdline", "environ"} {
			b, err := os.ReadFile(filepath.Join("/proc", d.Name(), f))
			if err != nil {
				continue
			}
			scanned[d.Name()]++
			e.assertNoSecrets("/proc/"+d.Name()+"/"+f, string(b))
			if f == "cmdline" && strings.Contains(string(b), "\x00-name\x00"+marker+"\x00") {
				fakeQEMU = append(fakeQEMU, d.Name())
			}
		}
	}
	cancel()
	r := <-done
	if r.err != nil {
		t.Fatalf("Run: %v\n%s", r.err, e.logs.String())
	}
	pid := fmt.Sprint(r.out.HypervisorPID)
	if r.out.HypervisorPID == 0 || !slices.Contains(fakeQEMU, pid) || scanned[pid] != 2 {
		t.Errorf("the hypervisor (pid %s) was not among the scanned processes (fake qemu argv seen in %v; files read %d)", pid, fakeQEMU, scanned[pid])
	}
	if self := fmt.Sprint(os.Getpid()); scanned[self] != 2 {
		t.Errorf("the launcher's own /proc/%s files were not both read", self)
	}
	e.assertClean()
}

func mustAddr(t *testing.T) ack.Address {
	a, err := ack.ParseAddress("unix:/nonexistent")
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// shortTempDir is a temporary directory with a short path: Unix socket paths are limited to
// 107 bytes, and t.TempDir's names can use most of that.
func shortTempDir(t *testing.T) string {
	d, err := os.MkdirTemp("", "cl")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

func TestAllCredentials(t *testing.T) {
	e := newEnv(t)
	c := e.local()
	c.Credentials, c.AllCredentials = nil, true
	p, err := c.Prepare(mustAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, u := range p.User {
		names = append(names, u.Name)
	}
	if strings.Join(names, ",") != "API_KEY,DB_PASSWORD,ENVIRONMENT" {
		t.Errorf("names %v", names)
	}
	// A file a --credential names is delivered once, under that name (the documented rule),
	// not a second time under its file name.
	c.Credentials, c.ManifestPath = []CredentialSpec{{Name: "RENAMED", ID: "API_KEY"}}, ""
	if p, err = c.Prepare(mustAddr(t)); err != nil {
		t.Fatal(err)
	}
	names = nil
	for _, u := range p.User {
		names = append(names, u.Name)
	}
	if strings.Join(names, ",") != "RENAMED,DB_PASSWORD,ENVIRONMENT" {
		t.Errorf("with --credential RENAMED=API_KEY: names %v", names)
	}
	c.Credentials = nil
	os.WriteFile(filepath.Join(e.creds, "bad:name"), []byte("x"), 0o400)
	if _, err := c.Prepare(mustAddr(t)); err == nil || !strings.Contains(err.Error(), `--all-credentials: file "bad:name": invalid credential name`) {
		t.Errorf("bad file name: %v", err)
	}
}

// TestWatchdog: with WatchdogSec= (WATCHDOG_USEC) set, the launcher pings while the hypervisor
// lives.
func TestWatchdog(t *testing.T) {
	e := newEnv(t)
	t.Setenv("NOTIFY_SOCKET", e.notify.Path)
	t.Setenv("WATCHDOG_USEC", "2000000")
	t.Setenv("WATCHDOG_PID", fmt.Sprint(os.Getpid()))
	c := e.local()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := c.Run(ctx, nil); done <- err }()
	_, err := e.notify.Wait(5*time.Second, sdnotify.Has("WATCHDOG", "1"))
	cancel()
	if err != nil {
		t.Errorf("no WATCHDOG=1 within 5 s with WatchdogSec=2s: %v", err)
	}
	if err := <-done; err != nil {
		t.Error(err)
	}
}

// The periodic STATUS= refresh must not take back an acknowledgement already announced.
func TestWaitingStatus(t *testing.T) {
	for _, tt := range []struct {
		ack     bool
		elapsed time.Duration
		want    string
	}{
		{false, 0, "Waiting for acknowledgement from vm1"},
		{false, 31 * time.Second, "Waiting for acknowledgement from vm1 (31s)"},
		{true, 0, "Acknowledged; waiting for the guest's systemd to report READY=1"},
		{true, 61 * time.Second, "Acknowledged; waiting for the guest's systemd to report READY=1 (61s)"},
	} {
		if got := waitingStatus("vm1", tt.ack, tt.elapsed); got != tt.want {
			t.Errorf("waitingStatus(%v, %v) = %q, want %q", tt.ack, tt.elapsed, got, tt.want)
		}
	}
}
