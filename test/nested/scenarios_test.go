//go:build nested

package nested

import (
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/credlink/credlink/pkg/sdnotify"
)

// Scenario 1: vhost-vsock for real. host-launcher in L1 with --ack-via auto picks vsock because
// /dev/vhost-vsock exists; the agent in an L2 guest (KVM) acknowledges over AF_VSOCK; READY=1
// follows the authenticated acknowledgement. Then a second L2 VM (another CID) given the first
// launcher's address and a key of its own tries to acknowledge: the launcher closes its
// connection before reading a byte (had it read the forged report, ack.Server would have logged
// the exchange with that peer).
func TestVhostVsock(t *testing.T) {
	nested(t, nil, func(t *testing.T) {
		dep := newDeployment(7000)
		l := startLaunch(t, launchOpts{dep: dep, accel: "kvm", ackVia: "auto", cid: 3, shutdown: 2 * time.Second})
		m, err := l.ready(5 * time.Minute)
		if err != nil {
			t.Fatalf("no READY=1: %v", err)
		}
		timing(t, "boot to READY=1 %v", m.Received.Sub(l.started).Round(time.Millisecond))
		if m.Fields["STATUS"] != "Ready: 5/5 credentials delivered byte-exact" {
			t.Errorf("STATUS=%q", m.Fields["STATUS"])
		}
		log := l.log.String()
		addr := regexp.MustCompile(`ack=vsock:2:(\d+) transport=vsock`).FindStringSubmatch(log)
		if addr == nil {
			t.Fatalf("--ack-via auto did not choose vhost-vsock although /dev/vhost-vsock exists")
		}
		if _, ok := l.waitLog(10*time.Second, regexp.MustCompile(`guest acknowledged: credentials delivered byte-exact`)); !ok {
			t.Error("launcher did not log the accepted acknowledgement")
		}
		// READY=1 is the first and only READY, after the "Waiting for acknowledgement" statuses.
		for _, msg := range l.notify.Messages() {
			if msg.Fields["READY"] == "1" {
				break
			}
			if strings.HasPrefix(msg.Fields["STATUS"], "Ready") {
				t.Errorf("Ready status before READY=1: %q", msg.Raw)
			}
		}
		// (The busybox guest pipes the agent's log through sed, which holds its last lines: the
		// agent's side of the exchange is checked in the systemd scenarios.)

		// The intruder: CID 4, the first launcher's address, its own key.
		key := make([]byte, 32)
		for i := range key {
			key[i] = byte(i * 7)
		}
		intruderLog := filepath.Join(l.dir, "intruder.log")
		q := exec.Command("qemu-system-x86_64", "-machine", "q35", "-accel", "kvm", "-cpu", "host", "-m", "256",
			"-nodefaults", "-display", "none", "-serial", "file:"+intruderLog, "-no-reboot",
			"-kernel", get("NESTED_VMLINUX"), "-initrd", get("NESTED_E2E_INITRD"),
			"-append", "console=ttyS0 quiet panic=-1 credlink.agent=on credlink.manifest=ok",
			"-device", "vhost-vsock-pci,guest-cid=4",
			"-smbios", "type=11,value=io.systemd.credential:credlink.ack=vsock:2:"+addr[1],
			"-smbios", "type=11,value=io.systemd.credential.binary:credlink.key="+base64.StdEncoding.EncodeToString(key))
		if err := q.Start(); err != nil {
			t.Fatal(err)
		}
		t0 := time.Now()
		refused, ok := l.waitLog(2*time.Minute, regexp.MustCompile(`refused a vsock connection from another VM before reading it[^\n]*peer=vm\(4\)[^\n]*`))
		q.Process.Kill()
		q.Wait()
		if !ok {
			b, _ := os.ReadFile(intruderLog)
			t.Fatalf("no refusal of CID 4 logged; intruder console:\n%s", tail(string(b), 3000))
		}
		timing(t, "intruder VM boot to refusal %v", time.Since(t0).Round(time.Millisecond))
		t.Logf("launcher: %s", refused)
		// Had the launcher read a byte of it, ack.Server would have logged the exchange with the
		// peer (e.g. "ack: refused unauthenticated report ... peer=vm(4):…").
		for _, line := range strings.Split(l.log.String(), "\n") {
			if strings.Contains(line, "vm(4)") && !strings.Contains(line, "before reading it") {
				t.Errorf("the launcher read the other VM's connection instead of refusing it unread: %s", line)
			}
		}
		code, d := l.stop(30 * time.Second)
		if code != 0 {
			t.Errorf("host-launcher exit %d after SIGTERM", code)
		}
		t.Logf("stop (busybox guest, no ACPI handling: SIGTERM after --shutdown-timeout 2s): %v", d.Round(time.Millisecond))
		console, _ := l.waitConsole(0)
		assertClean(t, "guest console", []byte(console), dep)
		assertClean(t, "launcher log", []byte(l.log.String()), dep)
	})
}

// Scenarios 2 and 4: a Debian 13 guest, systemd 257 as PID 1, the shipped guest-agent.service
// unmodified. PID 1 imports every credential (one of 9.5 KiB) byte-exact; the agent verifies
// them from $CREDENTIALS_DIRECTORY (as root, `guest-agent check --source auto` compares PID 1's
// import with the SMBIOS table); the dependent unit starts only once the agent is READY; with
// --wait-guest-boot the host's READY=1 follows both the acknowledgement and PID 1's own READY=1,
// sent from a privileged vsock port. Then `systemctl stop` (SIGTERM): the guest powers off
// through the ACPI power button (logind), host-launcher exits 0, nothing is left running.
func TestSystemd257(t *testing.T) {
	nested(t, []string{"trixie"}, func(t *testing.T) {
		dep := newDeployment(7000)
		l := startLaunch(t, launchOpts{dep: dep, accel: "kvm", img: image(t, "trixie"), waitGuestBoot: true, ackVia: "vsock", cid: 3})
		m, err := l.ready(6 * time.Minute)
		if err != nil {
			t.Fatalf("no READY=1: %v", err)
		}
		timing(t, "boot to READY=1 %v", m.Received.Sub(l.started).Round(time.Millisecond))
		if m.Fields["STATUS"] != "Ready: 5/5 credentials delivered byte-exact" {
			t.Errorf("STATUS=%q", m.Fields["STATUS"])
		}
		assertWaitedForGuestBoot(t, l)

		console, ok := l.waitConsole(time.Minute, "NESTED-APP-STARTED", "NESTED-REPORT-DONE")
		if !ok {
			t.Fatal("the guest's report units did not run")
		}
		if !strings.Contains(console, "NESTED-SYSTEMD systemd 257") {
			t.Errorf("not systemd 257: %s", grep(console, "NESTED-SYSTEMD"))
		}
		assertImported(t, console, dep)
		for _, want := range []string{
			`verification passed" verified=5 expected=5 sources=credentials`, // the shipped unit: $CREDENTIALS_DIRECTORY
			`host accepted the acknowledgement" addr=vsock:2:`,
			"NESTED-APP-STARTED agent=active",
			"NESTED-CHECK 5/5 credentials verified", // PID 1's import equals the SMBIOS table
		} {
			if !strings.Contains(console, want) {
				t.Errorf("console lacks %q", want)
			}
		}
		if strings.Contains(console, "source_mismatch") {
			t.Error("PID 1's import and the SMBIOS table disagree")
		}

		// Scenario 4: graceful stop.
		code, d := l.stop(2 * time.Minute)
		timing(t, "SIGTERM to exit (ACPI power button, guest poweroff) %v", d.Round(time.Millisecond))
		assertGracefulStop(t, l, code, d, 60*time.Second)
		console, _ = l.waitConsole(0)
		assertClean(t, "guest console", []byte(console), dep)
		assertClean(t, "launcher log", []byte(l.log.String()), dep)
	})
}

// Scenario 2, failure: DB_PASSWORD arrives 4 bytes short. The agent stays up, never READY; the
// unit that needs it keeps waiting; the host never sends READY=1 and exits 1 naming it.
func TestSystemd257WrongLength(t *testing.T) {
	nested(t, []string{"trixie"}, func(t *testing.T) {
		dep := newDeployment(7000)
		dep["DB_PASSWORD"] = dep["DB_PASSWORD"][:60]
		l := startLaunch(t, launchOpts{dep: dep, accel: "kvm", img: image(t, "trixie"), waitGuestBoot: true, ackVia: "vsock", cid: 3})
		code := l.wait(6 * time.Minute)
		timing(t, "boot to refusal (exit %d) %v", code, l.ended.Sub(l.started).Round(time.Millisecond))
		if code != 1 {
			t.Errorf("exit %d, want 1", code)
		}
		if _, err := l.notify.Wait(time.Millisecond, sdnotify.Has("READY", "1")); err == nil {
			t.Error("READY=1 despite a wrong-length credential")
		}
		if _, err := l.notify.Wait(time.Millisecond, func(m sdnotify.Message) bool {
			return strings.HasPrefix(m.Fields["STATUS"], "Failed: ") && strings.Contains(m.Fields["STATUS"], "DB_PASSWORD")
		}); err != nil {
			t.Error("no STATUS=Failed naming DB_PASSWORD")
		}
		console, _ := l.waitConsole(0)
		if !strings.Contains(console, "DB_PASSWORD wrong_length") {
			t.Error("the agent did not report DB_PASSWORD wrong_length")
		}
		// The launcher's refusal powers the guest off: at shutdown, the app had never run.
		if !strings.Contains(console, "NESTED-APP-RAN no") {
			t.Errorf("the dependent unit ran, or the guest did not report it at shutdown: %q", grep(console, "NESTED-APP-RAN"))
		}
		if strings.Contains(console, "NESTED-APP-STARTED") {
			t.Error("the dependent unit started although the agent never became READY")
		}
		assertClean(t, "guest console", []byte(console), dep)
		assertClean(t, "launcher log", []byte(l.log.String()), dep)
	})
}

// Scenario 3: Debian 12 with systemd 254 from bookworm-backports. --guest-systemd refuses, for
// every version below 257, credentials that would end past the first 4 KiB (what 252 and 254
// import); a deployment that fits is imported by 254 and acknowledged, with --wait-guest-boot.
// A start job that never finishes makes PID 1 send STATUS= twice a second: the launcher's log
// gets a bounded number of lines for it.
func TestSystemd254(t *testing.T) {
	nested(t, []string{"bookworm-backports"}, func(t *testing.T) {
		big := newDeployment(7000)
		credDir := runDir(t)
		for n, v := range big {
			os.WriteFile(filepath.Join(credDir, n), v, 0o400)
		}
		for _, v := range []int{252, 253, 254, 255, 256, 257} {
			c := exec.Command(filepath.Join(get("NESTED_BIN"), "host-launcher"), "plan", "--vm", "nested", "--hypervisor", "qemu",
				"--ack-via", "serial", "--runtime-dir", runDir(t), "--guest-systemd", strconv.Itoa(v),
				"--credential", "API_KEY=API_KEY", "--credential", "TLS_BUNDLE=TLS_BUNDLE", "--", "-machine", "q35")
			c.Env = append(os.Environ(), "CREDENTIALS_DIRECTORY="+credDir)
			out, _ := c.CombinedOutput()
			code := c.ProcessState.ExitCode()
			switch {
			case v < 257 && (code != 2 || !strings.Contains(string(out), "4096")):
				t.Errorf("--guest-systemd %d with a 9.5 KiB credential: exit %d, want 2 naming the 4096-byte limit: %s", v, code, out)
			case v >= 257 && code != 0:
				t.Errorf("--guest-systemd %d: exit %d: %s", v, code, out)
			}
		}

		dep := newDeployment(1000)
		l := startLaunch(t, launchOpts{dep: dep, accel: "kvm", img: image(t, "bookworm-backports"), waitGuestBoot: true,
			ackVia: "vsock", cid: 3, guestSystemd: 254, append: "nested.never_ready=1"})
		if _, err := l.waitNotify(6*time.Minute, sdnotify.HasPrefix("STATUS", "Acknowledged")); err != nil {
			t.Fatalf("no acknowledgement: %v", err)
		}
		timing(t, "boot to acknowledgement %v", time.Since(l.started).Round(time.Millisecond))
		console, ok := l.waitConsole(2*time.Minute, "NESTED-APP-STARTED", "NESTED-REPORT-DONE")
		if !ok {
			t.Fatal("the guest's report units did not run")
		}
		if !strings.Contains(console, "NESTED-SYSTEMD systemd 254") {
			t.Errorf("not systemd 254: %s", grep(console, "NESTED-SYSTEMD"))
		}
		assertImported(t, console, dep)
		for _, want := range []string{`verification passed" verified=5 expected=5 sources=credentials`, "NESTED-APP-STARTED agent=active", "NESTED-CHECK 5/5 credentials verified"} {
			if !strings.Contains(console, want) {
				t.Errorf("console lacks %q", want)
			}
		}
		// The flood: PID 1 waits for nested-never-ready.service and says so twice a second.
		if _, ok := l.waitLog(2*time.Minute, regexp.MustCompile(`guest systemd"[^\n]* status="[^"]*nested-never-ready`)); !ok {
			t.Fatal("the launcher never logged the guest's waiting start job")
		}
		flood := 20 * time.Second
		time.Sleep(flood) // let the flood run: the assertion is about what it leaves in the log
		if _, err := l.notify.Wait(time.Millisecond, sdnotify.Has("READY", "1")); err == nil {
			t.Error("READY=1 although the guest's PID 1 never reported READY=1")
		}
		code, d := l.stop(2 * time.Minute)
		timing(t, "SIGTERM to exit %v", d.Round(time.Millisecond))
		assertGracefulStop(t, l, code, d, 60*time.Second)
		log := l.log.String()
		lines := strings.Count(log, `msg="guest systemd" `)
		rep := regexp.MustCompile(`guest systemd status repeats not logged.*count=(\d+)`).FindStringSubmatch(log)
		if rep == nil {
			t.Fatal("no count of suppressed guest statuses")
		}
		n, _ := strconv.Atoi(rep[1])
		timing(t, "guest STATUS lines logged %d, repeats suppressed %d over ~%v of flood", lines, n, flood)
		if n < int(flood/time.Second)/2 {
			t.Errorf("only %d repeats in %v: was there a flood?", n, flood)
		}
		if lines > 3 {
			t.Errorf("%d guest status lines in the host's log for one waiting job", lines)
		}
		assertClean(t, "guest console", []byte(console), dep)
		assertClean(t, "launcher log", []byte(log), dep)
	})
}

// Scenario 3, the limit itself: told the guest runs 257, the launcher sends a 9.5 KiB credential
// to the 254 guest; PID 1 imports only the first 4 KiB of the OEM strings, the agent sees
// TLS_BUNDLE (and what follows it) wrong or missing, and the host refuses READY=1 naming it.
func TestSystemd254Truncation(t *testing.T) {
	nested(t, []string{"bookworm-backports"}, func(t *testing.T) {
		dep := newDeployment(7000)
		l := startLaunch(t, launchOpts{dep: dep, accel: "kvm", img: image(t, "bookworm-backports"), ackVia: "vsock", cid: 3, guestSystemd: 257})
		code := l.wait(6 * time.Minute)
		timing(t, "boot to refusal (exit %d) %v", code, l.ended.Sub(l.started).Round(time.Millisecond))
		if code != 1 {
			t.Errorf("exit %d, want 1", code)
		}
		if _, err := l.notify.Wait(time.Millisecond, sdnotify.Has("READY", "1")); err == nil {
			t.Error("READY=1 although PID 1 truncated the credentials")
		}
		console, _ := l.waitConsole(0)
		got := imported(console)
		if len(got) == 0 {
			// Without the guest's report the comparison below would pass by default.
			t.Error("no NESTED-IMPORTED lines: the guest did not report what PID 1 imported")
		}
		if got["TLS_BUNDLE"] == fmt.Sprintf("%d %s", len(dep["TLS_BUNDLE"]), sha16(dep["TLS_BUNDLE"])) {
			t.Error("systemd 254 imported the 9.5 KiB TLS_BUNDLE whole: the 4 KiB limit is gone, relax --guest-systemd")
		}
		t.Logf("254 imported: %v", got)
		if !strings.Contains(l.log.String(), "TLS_BUNDLE") {
			t.Error("the launcher's refusal does not name TLS_BUNDLE")
		}
		assertClean(t, "guest console", []byte(console), dep)
		assertClean(t, "launcher log", []byte(l.log.String()), dep)
	})
}

// Scenario 5: a host without vhost-vsock (this machine; nested and container hosts). The
// shipped unit, unmodified, acknowledges over virtio-serial: PID 1 opens the port for the
// sandboxed agent (OpenFile=). Runs here, under TCG, not in L1.
func TestSerialAck257(t *testing.T) {
	if inL1 {
		t.Skip("runs on the host")
	}
	if rootSkip {
		t.Skip(skipReason)
	}
	via := "auto"
	if _, err := os.Stat("/dev/vhost-vsock"); err == nil {
		via = "serial" // this host could do vsock: ask for serial explicitly
	}
	dep := newDeployment(7000)
	start := time.Now()
	l := startLaunch(t, launchOpts{dep: dep, accel: "tcg", img: image(t, "trixie"), ackVia: via, ackTimeout: 4 * time.Minute})
	m, err := l.ready(8 * time.Minute)
	if err != nil {
		t.Fatalf("no READY=1: %v", err)
	}
	timing(t, "boot to READY=1 %v (TCG, load %s)", m.Received.Sub(l.started).Round(time.Millisecond), loadavg())
	if !strings.Contains(l.log.String(), "ack=serial:credlink.0 transport=virtio-serial") {
		t.Error("the launcher did not use virtio-serial")
	}
	console, ok := l.waitConsole(time.Minute, "NESTED-APP-STARTED", "host accepted the acknowledgement")
	if !ok {
		t.Fatal("the guest did not report the acknowledgement")
	}
	for _, want := range []string{
		`acknowledging over the virtio-serial port opened by the service manager" port=credlink.0`,
		`host accepted the acknowledgement" addr=serial:credlink.0`,
		"NESTED-APP-STARTED agent=active",
	} {
		if !strings.Contains(console, want) {
			t.Errorf("console lacks %q", want)
		}
	}
	code, d := l.stop(3 * time.Minute)
	timing(t, "SIGTERM to exit %v (TCG)", d.Round(time.Millisecond))
	assertGracefulStop(t, l, code, d, 60*time.Second)
	assertClean(t, "guest console", []byte(console), dep)
	assertClean(t, "launcher log", []byte(l.log.String()), dep)
	timing(t, "wall %v", time.Since(start).Round(time.Second))
}

// assertWaitedForGuestBoot: the host's READY=1 came after both the acknowledgement and PID 1's
// READY=1, which arrived from a privileged vsock port.
func assertWaitedForGuestBoot(t *testing.T, l *launch) {
	t.Helper()
	var acked, ready int = -1, -1
	for i, msg := range l.notify.Messages() {
		if strings.HasPrefix(msg.Fields["STATUS"], "Acknowledged; waiting for the guest's systemd") && acked < 0 {
			acked = i
		}
		if msg.Fields["READY"] == "1" && ready < 0 {
			ready = i
		}
	}
	if acked < 0 || ready < acked {
		t.Errorf("READY=1 (message %d) did not follow the acknowledgement (message %d)", ready, acked)
	}
	// The launcher logs its READY just after sending it.
	l.waitLog(10*time.Second, regexp.MustCompile(`guest acknowledged: credentials delivered`))
	log := l.log.String()
	pr := regexp.MustCompile(`guest systemd reported READY=1"[^\n]* peer=vm\(3\):(\d+)`).FindStringSubmatch(log)
	if pr == nil {
		t.Fatal("the launcher did not log PID 1's READY=1 with its peer")
	}
	if p, _ := strconv.Atoi(pr[1]); p >= 1024 {
		t.Errorf("PID 1's READY=1 came from port %d", p)
	}
	if i, j := strings.Index(log, "guest systemd reported READY=1"), strings.Index(log, "guest acknowledged: credentials delivered"); i < 0 || j < 0 || i > j {
		t.Error("the launcher logged READY before PID 1's READY=1")
	}
}

// assertImported: PID 1 imported every credential with the host's size and SHA-256.
func assertImported(t *testing.T, console string, dep deployment) {
	t.Helper()
	got := imported(console)
	want := map[string][]byte{"ENVIRONMENT": []byte("production")}
	for n, v := range dep {
		want[n] = v
	}
	for n, v := range want {
		if exp := fmt.Sprintf("%d %s", len(v), sha16(v)); got[n] != exp {
			t.Errorf("PID 1 imported %s as %q, want %q (size sha256)", n, got[n], exp)
		}
	}
	if _, ok := got["vmm.notify_socket"]; !ok {
		t.Error("PID 1 did not import vmm.notify_socket")
	}
	// The agent's own reading of the SMBIOS table (as root) has the same sizes.
	for n, v := range want {
		if !regexp.MustCompile(`NESTED-SMBIOS ` + regexp.QuoteMeta(n) + ` +` + strconv.Itoa(len(v)) + ` +smbios`).MatchString(console) {
			t.Errorf("the SMBIOS table lacks %s with %d bytes", n, len(v))
		}
	}
	if s := grep(console, "NESTED-ANALYZE"); s != "" {
		t.Log(s)
		t.Log(grep(console, "NESTED-BLAME"))
	}
}

// assertGracefulStop: exit 0 within the shutdown timeout, the guest powered off by itself
// after logind saw the power key, no process of the launch left.
func assertGracefulStop(t *testing.T, l *launch, code int, d, timeout time.Duration) {
	t.Helper()
	if code != 0 {
		t.Errorf("host-launcher exit %d after SIGTERM, want 0", code)
	}
	if d > timeout {
		t.Errorf("stop took %v, over --shutdown-timeout %v", d, timeout)
	}
	log := l.log.String()
	if strings.Contains(log, "did not power off") || !strings.Contains(log, `msg="VM stopped"`) {
		t.Errorf("the guest did not power off on the ACPI power button: %s", grep(log, "shutdown"))
	}
	console, _ := l.waitConsole(0)
	if !strings.Contains(console, "NESTED-SHUTDOWN Power key pressed") {
		t.Errorf("logind did not report the power key: %q", grep(console, "NESTED-SHUTDOWN"))
	}
	if !strings.Contains(console, "NESTED-APP-RAN yes") {
		t.Errorf("the dependent unit never ran: %q", grep(console, "NESTED-APP-RAN"))
	}
	if o := orphans(l.dir); len(o) > 0 {
		t.Errorf("processes left after the stop: %v", o)
	}
}

func grep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, strings.TrimSpace(l))
		}
	}
	return strings.Join(out, " | ")
}
