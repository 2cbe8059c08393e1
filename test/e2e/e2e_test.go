//go:build e2e

// Package e2e boots real Linux guests under QEMU (TCG, no KVM needed) with host-launcher and
// guest-agent: run it with `make e2e`. The harness installs or finds what it needs
// (assets.sh), builds a static guest-agent and an initramfs, and runs the launcher as a
// Type=notify service would be run, with a real NOTIFY_SOCKET owned by the test.
package e2e

import (
	"bytes"
	"cmp"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/credlink/credlink/pkg/sdnotify"
	"github.com/credlink/credlink/pkg/testkit"
)

var (
	cacheDir    string
	vmlinux     string
	initrd      string
	launcherBin string
	workDir     string
)

// Guest manifests, baked into the initramfs as /etc/credlink/NAME.json.
var manifests = map[string]string{
	"ok": `{"credentials": {
  "API_KEY": {"bytes": 44}, "DB_PASSWORD": {"bytes": 64},
  "JWT_SECRET": {"min_bytes": 64, "max_bytes": 128},
  "TLS_BUNDLE": {"min_bytes": 8192},
  "ENVIRONMENT": {"secret": false}},
 "unexpected": "fail"}`,
	// For systemd 252, which imports only the first 4 KiB of OEM strings.
	"sd252": `{"credentials": {
  "API_KEY": {"bytes": 44}, "DB_PASSWORD": {"bytes": 64},
  "JWT_SECRET": {"min_bytes": 64, "max_bytes": 128},
  "TLS_BUNDLE": {"min_bytes": 1024},
  "ENVIRONMENT": {"secret": false}},
 "unexpected": "fail"}`,
}

// manyCount is how many credentials TestManyCredentials delivers: more than one Type 11
// structure holds.
const manyCount = 310

// manyDeployment is manyCount credentials of 24 random bytes each, every tenth binary.
func manyDeployment() deployment {
	d := deployment{files: map[string][]byte{}}
	for i := range manyCount {
		v := make([]byte, 18)
		rand.Read(v)
		if i%10 != 0 {
			v = []byte(base64.StdEncoding.EncodeToString(v)) // 24 text bytes
		} else {
			v = append(v, 0, 0xff, '\n', ',', 0, 0) // 24 bytes that need the binary form
		}
		d.files[fmt.Sprintf("MANY_%03d", i)] = v
	}
	return d
}

func init() {
	var m strings.Builder
	m.WriteString(`{"credentials": {`)
	for i := range manyCount {
		if i > 0 {
			m.WriteString(",")
		}
		fmt.Fprintf(&m, `"MANY_%03d": {"bytes": 24}`, i)
	}
	m.WriteString(`}, "unexpected": "fail"}`)
	manifests["many"] = m.String()
}

func TestMain(m *testing.M) {
	os.Exit(setupAndRun(m))
}

func setupAndRun(m *testing.M) int {
	start := time.Now()
	out, err := exec.Command("./assets.sh").Output()
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: assets.sh: %v\n", err)
		return 1
	}
	cacheDir = strings.TrimSpace(string(out))
	vmlinux = filepath.Join(cacheDir, "vmlinux")
	workDir, err = os.MkdirTemp("", "e2e")
	if err != nil {
		panic(err)
	}
	if os.Getenv("E2E_KEEP") == "" {
		defer os.RemoveAll(workDir)
	} else {
		fmt.Fprintln(os.Stderr, "e2e: keeping", workDir)
	}

	files := filepath.Join(workDir, "files")
	os.MkdirAll(filepath.Join(files, "etc", "credlink"), 0o755)
	for name, pkg := range map[string]string{"guest-agent": "../../cmd/guest-agent", "vsockcheck": "./vsockcheck"} {
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", filepath.Join(files, name), pkg)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: build %s: %v\n%s", pkg, err, out)
			return 1
		}
	}
	// The launcher runs on the host: built like the test binary (testkit.Bin); the guest's
	// binaries above are static for the initramfs.
	launcherBin = testkit.MustBin("host-launcher")
	defer testkit.Cleanup()
	for name, m := range manifests {
		os.WriteFile(filepath.Join(files, "etc", "credlink", name+".json"), []byte(m), 0o644)
	}
	initrd = filepath.Join(workDir, "initrd.gz")
	cmd := exec.Command("./mkinitrd.sh", cacheDir, initrd, "guest-init", files,
		"virtio_pci", "virtio_console", "virtio_net", "vsock_loopback")
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: mkinitrd: %v\n%s", err, out)
		return 1
	}
	fmt.Fprintf(os.Stderr, "e2e: assets ready in %v (kernel %s)\n", time.Since(start).Round(time.Millisecond), readFile(filepath.Join(cacheDir, "kver")))
	return m.Run()
}

func readFile(p string) string { b, _ := os.ReadFile(p); return strings.TrimSpace(string(b)) }

// deployment is a set of credentials shaped like a real one: text and binary, one ≥ 8 KiB.
type deployment struct {
	files map[string][]byte // name → value, delivered with --credential
	sets  map[string]string // delivered with --set
}

func realDeployment(t *testing.T) deployment { return deploymentWithBundle(t, 9000) }

// deploymentWithBundle is realDeployment with a TLS bundle of about bundle bytes.
func deploymentWithBundle(t *testing.T, bundle int) deployment {
	rnd := func(n int) []byte { b := make([]byte, n); rand.Read(b); return b }
	b64 := func(n int) []byte { return []byte(base64.StdEncoding.EncodeToString(rnd(n))) }
	var pem bytes.Buffer
	pem.WriteString("-----BEGIN CERTIFICATE-----\n")
	for pem.Len() < bundle {
		pem.WriteString(base64.StdEncoding.EncodeToString(rnd(48)) + "\n")
	}
	pem.WriteString("-----END CERTIFICATE-----\n")
	return deployment{
		files: map[string][]byte{
			"API_KEY":     b64(33), // 44 text bytes
			"DB_PASSWORD": rnd(64), // binary
			"JWT_SECRET":  b64(66), // 88
			"TLS_BUNDLE":  pem.Bytes(),
		},
		sets: map[string]string{"ENVIRONMENT": "production"},
	}
}

// secrets lists every secret byte string (and recognisable pieces) for the hygiene scans.
func (d deployment) secrets() [][]byte {
	var out [][]byte
	for _, v := range d.files {
		out = append(out, v, v[:16], v[len(v)-16:], []byte(base64.StdEncoding.EncodeToString(v))[:24])
	}
	return out
}

type vmOpts struct {
	dep        deployment
	omit       string // credential not delivered
	truncate   string // credential delivered 4 bytes short
	agent      bool
	ep64       bool
	ackTimeout time.Duration
	manifest   string // guest manifest name; default "ok"
	cmdline    string // appended to the guest kernel command line
	delivery   string // --smbios-delivery; default the launcher's
	systemd    int    // --guest-systemd; default the launcher's
	cwd        string // the launcher's (and so QEMU's) working directory; default the test's
}

type vm struct {
	t        *testing.T
	cmd      *exec.Cmd
	notify   *sdnotify.Listener
	out      *testkit.SyncBuffer
	console  string
	port     int
	dir      string
	started  time.Time
	exited   chan struct{}
	exitCode int
}

func startVM(t *testing.T, o vmOpts) *vm {
	t.Helper()
	return startVMWith(t, o, nil)
}

// startVMWith starts host-launcher; qemuArgs, if set, replaces the QEMU argv after --.
func startVMWith(t *testing.T, o vmOpts, qemuArgs func([]string) []string) *vm {
	t.Helper()
	dir, err := os.MkdirTemp(workDir, "vm")
	if err != nil {
		t.Fatal(err)
	}
	creds := filepath.Join(dir, "creds")
	os.Mkdir(creds, 0o700)
	v := &vm{t: t, out: &testkit.SyncBuffer{}, console: filepath.Join(dir, "console.log"), port: testkit.FreePort(t), dir: dir, exited: make(chan struct{})}
	if v.notify, err = sdnotify.Listen(dir); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.notify.Close() })
	args := []string{"run", "--vm", "e2e", "--hypervisor", "qemu", "--ack-via", "serial", "--runtime-dir", dir,
		"--ack-timeout", o.ackTimeout.String(), "--shutdown-timeout", "1s"}
	if o.systemd != 0 {
		args = append(args, "--guest-systemd", fmt.Sprint(o.systemd))
	}
	if o.delivery != "" {
		args = append(args, "--smbios-delivery", o.delivery)
	}
	// In a fixed order: the launcher packs OEM strings into Type 11 structures in flag order, so
	// map order would make the structure count (which the systemd 252 scenario checks) vary.
	for _, name := range slices.Sorted(maps.Keys(o.dep.files)) {
		val := o.dep.files[name]
		if name == o.omit {
			continue
		}
		if name == o.truncate {
			val = val[:len(val)-4]
		}
		os.WriteFile(filepath.Join(creds, name), val, 0o400)
		args = append(args, "--credential", name+"="+name)
	}
	for name, val := range o.dep.sets {
		args = append(args, "--set", name+"="+val)
	}
	machine := "q35,smbios-entry-point-type=32"
	if o.ep64 {
		machine = "q35,smbios-entry-point-type=64"
	}
	agent := "on"
	if !o.agent {
		agent = "off"
	}
	args = append(args, "--", "-machine", machine, "-accel", "tcg", "-m", "256", "-nodefaults", "-display", "none",
		"-serial", "file:"+v.console, "-no-reboot", "-kernel", vmlinux, "-initrd", initrd,
		"-append", "console=ttyS0 quiet panic=-1 credlink.agent="+agent+" credlink.manifest="+cmp.Or(o.manifest, "ok")+cmp.Or(o.cmdline, ""),
		"-netdev", fmt.Sprintf("user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:%d-:9863", v.port),
		"-device", "virtio-net-pci,netdev=n0")
	if qemuArgs != nil {
		i := len(args)
		for j, a := range args {
			if a == "--" {
				i = j + 1
				break
			}
		}
		args = append(args[:i], qemuArgs(args[i:])...)
	}
	v.cmd = exec.Command(launcherBin, args...)
	v.cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+v.notify.Path, "CREDENTIALS_DIRECTORY="+creds)
	v.cmd.Stdout, v.cmd.Stderr = v.out, v.out
	v.cmd.Dir = o.cwd
	v.started = time.Now()
	if err := v.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		err := v.cmd.Wait()
		if ee, ok := err.(*exec.ExitError); ok {
			v.exitCode = ee.ExitCode()
		}
		close(v.exited)
	}()
	t.Cleanup(func() {
		v.stop()
		if t.Failed() {
			t.Logf("launcher output:\n%s\nconsole:\n%s", v.out.String(), readFile(v.console))
		}
	})
	return v
}

func (v *vm) stop() {
	select {
	case <-v.exited:
		return
	default:
	}
	v.cmd.Process.Signal(os.Interrupt)
	select {
	case <-v.exited:
	case <-time.After(15 * time.Second):
		v.cmd.Process.Kill()
		<-v.exited
	}
}

func (v *vm) waitExit(d time.Duration) int {
	select {
	case <-v.exited:
		return v.exitCode
	case <-time.After(d):
		v.t.Fatalf("launcher still running after %v", d)
		return -1
	}
}

func (v *vm) scrape() string {
	v.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", v.port))
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			// Slirp accepts before the guest listens: only a real answer counts.
			if resp.StatusCode == 200 && bytes.Contains(b, []byte("credlink_verification_success")) {
				return string(b)
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	v.t.Fatal("no metrics from the guest")
	return ""
}

// qemuPID finds the launcher's QEMU child.
func (v *vm) qemuPID() int {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(f) > 1 && f[1] == fmt.Sprint(v.cmd.Process.Pid) && strings.Contains(string(stat), "qemu-system") {
			var pid int
			fmt.Sscan(e.Name(), &pid)
			return pid
		}
	}
	return 0
}

var stateRe = regexp.MustCompile(`credlink_credential_state\{name="([^"]+)",status="ok"\} 1`)

// TestHappyPath covers scenarios 1 (delivery), 5 (secret hygiene) and 6 (both entry points).
func TestHappyPath(t *testing.T) {
	for _, ep64 := range []bool{false, true} {
		name := "ep32"
		if ep64 {
			name = "ep64"
		}
		t.Run(name, func(t *testing.T) {
			dep := realDeployment(t)
			v := startVM(t, vmOpts{dep: dep, agent: true, ep64: ep64, ackTimeout: 2 * time.Minute})
			m, err := v.notify.Wait(2*time.Minute, sdnotify.Has("READY", "1"))
			if err != nil {
				t.Fatalf("no READY=1: %v", err)
			}
			t.Logf("boot to READY=1: %v", m.Received.Sub(v.started).Round(time.Millisecond))
			if m.Fields["STATUS"] != "Ready: 5/5 credentials delivered byte-exact" {
				t.Errorf("STATUS=%q", m.Fields["STATUS"])
			}
			metrics := v.scrape()
			ok := map[string]bool{}
			for _, mm := range stateRe.FindAllStringSubmatch(metrics, -1) {
				ok[mm[1]] = true
			}
			for name, val := range dep.files {
				want := fmt.Sprintf(`credlink_credential_bytes{name=%q} %d`, name, len(val))
				if !ok[name] || !strings.Contains(metrics, want) {
					t.Errorf("%s: ok=%v, want %s", name, ok[name], want)
				}
			}
			if !ok["ENVIRONMENT"] || !strings.Contains(metrics, "credlink_verification_success 1") || !strings.Contains(metrics, "credlink_ack_accepted 1") {
				t.Errorf("metrics:\n%s", grep(metrics, "credlink_"))
			}

			// Scenario 6: the guest decoded the full table too (go-smbios path), and it was the
			// entry point type this VM was given.
			console := readFile(v.console)
			wantEP := "E2E-TABLE SMBIOS 2.8, 32-bit (2.8) entry point"
			if ep64 {
				wantEP = "E2E-TABLE SMBIOS 3.0, 64-bit (3.0) entry point"
			}
			if !strings.Contains(console, "E2E-TABLE TLS_BUNDLE") || !strings.Contains(console, wantEP) {
				t.Errorf("guest's table decode lacks the credentials or %q:\n%s", wantEP, console)
			}

			// Scenario 5: while the VM runs, no secret in any process's cmdline or environment.
			qpid := v.qemuPID()
			if qpid == 0 {
				t.Error("QEMU child not found")
			}
			secrets := dep.secrets()
			scanned := 0
			ents, _ := os.ReadDir("/proc")
			for _, e := range ents {
				for _, f := range []string{"cmdline", "environ"} {
					b, err := os.ReadFile(filepath.Join("/proc", e.Name(), f))
					if err != nil {
						continue
					}
					scanned++
					assertClean(t, "/proc/"+e.Name()+"/"+f, b, secrets)
				}
			}
			t.Logf("scanned %d /proc files, QEMU pid %d", scanned, qpid)
			assertClean(t, "metrics", []byte(metrics), secrets)

			v.stop()
			if v.exitCode != 0 {
				t.Errorf("launcher exit %d after SIGINT", v.exitCode)
			}
			assertClean(t, "launcher and QEMU output", []byte(v.out.String()), secrets)
			assertClean(t, "guest console", []byte(readFile(v.console)), secrets)
			// Every file left in the VM's directory, except the credentials we put there.
			filepath.Walk(v.dir, func(p string, info os.FileInfo, err error) error {
				if err != nil || info.IsDir() || strings.Contains(p, "/creds/") {
					return nil
				}
				if strings.Contains(p, "/credlink-e2e-") {
					t.Errorf("launcher left %s behind", p)
				}
				b, _ := os.ReadFile(p)
				assertClean(t, p, b, secrets)
				return nil
			})
			if qpid != 0 && alive(qpid) {
				t.Errorf("QEMU %d still running after the launcher exited", qpid)
			}
		})
	}
}

func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	return err == nil && !strings.Contains(string(b), ") Z ")
}

func assertClean(t *testing.T, what string, data []byte, secrets [][]byte) {
	t.Helper()
	for _, s := range secrets {
		if bytes.Contains(data, s) {
			t.Errorf("%s contains secret bytes", what)
			return
		}
	}
}

// TestManyCredentials: more than 255 credentials reach a real guest through QEMU -smbios file=
// (complete Type 11 structures in sealed memfds), and both of the guest's read paths
// (entries/11-N as systemd reads them, tables/DMI as Linux decodes it) hold exactly what was
// sent: the agent's per-credential MACs prove the entries path byte-exact to the host, and
// `inspect --both` proves the table path equal to it.
func TestManyCredentials(t *testing.T) {
	dep := manyDeployment()
	v := startVM(t, vmOpts{dep: dep, agent: true, ackTimeout: 3 * time.Minute, manifest: "many", cmdline: " credlink.table=0", delivery: "file"})
	m, err := v.notify.Wait(3*time.Minute, sdnotify.Has("READY", "1"))
	if err != nil {
		t.Fatalf("no READY=1: %v", err)
	}
	t.Logf("boot to READY=1 with %d credentials: %v", manyCount, m.Received.Sub(v.started).Round(time.Millisecond))
	if want := fmt.Sprintf("Ready: %d/%d credentials delivered byte-exact", manyCount, manyCount); m.Fields["STATUS"] != want {
		t.Errorf("STATUS=%q, want %q", m.Fields["STATUS"], want)
	}
	console := waitConsole(v, "E2E-BOTH ")
	if want := fmt.Sprintf("E2E-BOTH entries and table agree: %d credentials", manyCount+3); !strings.Contains(console, want) {
		t.Errorf("console lacks %q:\n%s", want, grep(console, "E2E-"))
	}
	v.stop()
	assertClean(t, "launcher and QEMU output", []byte(v.out.String()), dep.secrets())
	assertClean(t, "guest console", []byte(readFile(v.console)), dep.secrets())
}

// TestDeliveryFailures: scenario 2, host-side credentials that do not satisfy the guest.
func TestDeliveryFailures(t *testing.T) {
	tests := []struct {
		name, omit, truncate, status string
	}{
		{"wrong length", "", "DB_PASSWORD", "Failed: DB_PASSWORD: wrong_length in the guest; guest verification failed"},
		{"missing", "JWT_SECRET", "", "Failed: JWT_SECRET: missing in the guest; guest verification failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := startVM(t, vmOpts{dep: realDeployment(t), omit: tt.omit, truncate: tt.truncate, agent: true, ackTimeout: 2 * time.Minute})
			code := v.waitExit(2 * time.Minute)
			if code != 1 {
				t.Errorf("exit %d, want 1", code)
			}
			if _, err := v.notify.Wait(time.Second, sdnotify.Has("READY", "1")); err == nil {
				t.Error("READY=1 sent")
			}
			if _, err := v.notify.Wait(time.Second, sdnotify.Has("STATUS", tt.status)); err != nil {
				var all []string
				for _, m := range v.notify.Messages() {
					all = append(all, m.Raw)
				}
				t.Errorf("no STATUS=%s:\n%s", tt.status, strings.Join(all, "\n"))
			}
			if pid := v.qemuPID(); pid != 0 {
				t.Errorf("QEMU %d still running", pid)
			}
		})
	}
}

// TestNoAcknowledgement: scenario 3, a guest without the agent.
func TestNoAcknowledgement(t *testing.T) {
	v := startVM(t, vmOpts{dep: realDeployment(t), agent: false, ackTimeout: 15 * time.Second})
	start := time.Now()
	code := v.waitExit(time.Minute)
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if _, err := v.notify.Wait(time.Second, sdnotify.Has("STATUS", "Failed: no acknowledgement within 15s")); err != nil {
		t.Error(err)
	}
	if d := time.Since(start); d > 25*time.Second {
		t.Errorf("timeout handling took %v", d)
	}
}

// TestVsockInGuest: scenario 4, AF_VSOCK on a real kernel (vsock_loopback in the guest).
func TestVsockInGuest(t *testing.T) {
	console := filepath.Join(workDir, "vsock-console.log")
	cmd := exec.Command("qemu-system-x86_64", "-machine", "q35", "-accel", "tcg", "-m", "256", "-nodefaults", "-display", "none",
		"-serial", "file:"+console, "-no-reboot", "-kernel", vmlinux, "-initrd", initrd,
		"-append", "console=ttyS0 quiet panic=-1 credlink.vsockcheck=1")
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		cmd.Process.Kill()
		t.Fatal("guest did not power off")
	}
	out := readFile(console)
	for _, want := range []string{"vsockcheck: accepted over AF_VSOCK", "vsockcheck: connection from an unexpected CID refused", "E2E-VSOCK-OK"} {
		if !strings.Contains(out, want) {
			t.Errorf("console lacks %q:\n%s", want, out)
		}
	}
}

func grep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
