package main

// Section launch-kvm: the launch overhead with the guest under KVM, the setting users run. This
// machine has no KVM, so the section boots L1 (test/nested/l1.sh: QEMU TCG with AMD SVM, this
// machine's root read-only over 9p, real /dev/kvm and /dev/vhost-vsock inside) and re-runs this
// bench binary inside it (environment NESTED_BENCH_L1), which boots the e2e busybox guest as L2
// with -accel kvm, all arms interleaved in that L1 (an L1 that freezes is replaced, see runL1):
//
//   - plain:  qemu-system-x86_64 -accel kvm, no launcher, until the guest prints E2E-INIT (where
//     the agent would start; credlink.agent=off);
//   - vsock:  host-launcher run --hypervisor qemu --ack-via vsock (real vhost-vsock, what users
//     run) until READY=1 on its NOTIFY_SOCKET;
//   - serial: the same with --ack-via serial (virtio-serial).
//
// Why a bench section and not a test/nested scenario: these are figures for the report, not
// assertions (a ratio on a shared 2-core machine cannot be a pass/fail test), and they belong
// beside the TCG launch row in results.md. It reuses l1.sh as the nested scenarios do.
//
// Method (from what was measured on this host under TCG): a boot right after another boot's end
// is systematically different, so each boot waits 1 s after the previous one is gone and each
// round runs the arms in a new random order; one warm-up round is discarded (9p page cache,
// first exec of QEMU and the launcher in L1); medians with p10–p90 over -runs rounds (at least
// 8). The guest console goes to a FIFO read by a blocked reader (no polling in L1, whose one
// vCPU also runs the L2 guest), and READY=1 arrives on a datagram socket, both stamped on
// arrival. For every credlink boot the time to its E2E-INIT marker is recorded too, so the
// overhead splits into boot to the marker (QEMU start-up with the launcher's SMBIOS and ack
// device, kernel, init) and marker → READY=1 (guest-agent's exec, verification, the
// exchange, the launcher's READY=1).
//
// Nested KVM on a TCG L1 still emulates L2's code in L0's TCG in the end (every L2 instruction
// runs in L1's emulated vCPU), so absolute times are not real-KVM times; only the ratios
// against the plain peer measured in the same L1, in the same loop, carry over.

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/credlink/credlink/pkg/sdnotify"
)

// kvmConfig is what the host hands to the bench inside L1 (as JSON in the work directory).
type kvmConfig struct {
	VMLinux, Initrd, Launcher string
	Rounds                    int    // rounds still wanted (each L1 adds its own warm-up round)
	Attempt                   int    // which L1 boot this is (a hung L1 is replaced by the next)
	Out                       string // samples, one JSON object per line, appended per boot
}

// kvmSample is one boot inside L1. Times in milliseconds from the exec of QEMU or host-launcher.
type kvmSample struct {
	Arm        string  `json:"arm"`
	Attempt    int     `json:"attempt"`
	Round      int     `json:"round"` // -1: warm-up, discarded
	Position   int     `json:"position"`
	Marker     float64 `json:"marker_ms"`       // E2E-INIT on the console
	Ready      float64 `json:"ready_ms"`        // READY=1 (credlink arms; plain: = Marker)
	AckToReady float64 `json:"ack_to_ready_ms"` // the launcher's log: report received → READY=1 sent
	Exchange   float64 `json:"exchange_ms"`     // the launcher's log: hello → report received
	GuestUp    string  `json:"guest_uptime_s"`  // the guest's /proc/uptime at E2E-INIT
	L1Load     string  `json:"l1_load,omitempty"`
}

var kvmArms = []string{"plain", "vsock", "serial"}

// launchKVM runs on the host: builds the guest's initramfs, boots L1 once, reads its samples.
func launchKVM(work string) {
	const what = "QEMU/KVM boot → READY=1 (5 credentials), nested"
	skip := func(why string) { add("launch-kvm", what, "skipped", "", "", why) }
	vmlinux, _ := filepath.Abs(filepath.Join(*e2eCache, "vmlinux"))
	if _, err := os.Stat(vmlinux); err != nil {
		skip("no " + vmlinux + ": run test/e2e/assets.sh (make bench does)")
		return
	}
	if os.Geteuid() != 0 {
		skip("needs root (l1.sh shares / over 9p)")
		return
	}
	if out, _ := exec.Command("qemu-system-x86_64", "-machine", "none", "-cpu", "help").CombinedOutput(); !regexp.MustCompile(`\bsvm\b`).Match(out) {
		skip("this QEMU cannot emulate AMD SVM: no nested KVM under TCG")
		return
	}
	self, err := os.Executable()
	must(err)
	// The work directory is mounted read-write at the same path in L1; it lives on the disk
	// (not /tmp, which L1 sees read-only) next to the results.
	absOut, _ := filepath.Abs(*outDir)
	dir, err := os.MkdirTemp(absOut, "launch-kvm.")
	must(err)
	if os.Getenv("BENCH_KEEP") == "" {
		defer os.RemoveAll(dir)
	}
	files := filepath.Join(dir, "files")
	must(os.MkdirAll(filepath.Join(files, "etc", "credlink"), 0o755))
	agent, err := os.ReadFile(filepath.Join(*binDir, "guest-agent-static"))
	must(err)
	must(os.WriteFile(filepath.Join(files, "guest-agent"), agent, 0o755))
	must(os.WriteFile(filepath.Join(files, "etc", "credlink", "ok.json"), []byte(benchManifest), 0o644))
	initrd := filepath.Join(dir, "initrd.gz")
	// The e2e guest with the virtio vsock transport (as test/nested's TestVhostVsock builds it);
	// every arm boots this same image.
	if out, err := exec.Command("test/e2e/mkinitrd.sh", *e2eCache, initrd, "test/e2e/guest-init", files,
		"virtio_pci", "virtio_console", "vmw_vsock_virtio_transport").CombinedOutput(); err != nil {
		must(fmt.Errorf("mkinitrd: %v %s", err, out))
	}
	launcher, _ := filepath.Abs(filepath.Join(*binDir, "host-launcher"))
	cfg := kvmConfig{VMLinux: vmlinux, Initrd: initrd, Launcher: launcher}

	console, err := os.Create(filepath.Join(absOut, "launch-kvm-l1.log"))
	must(err)
	defer console.Close()
	e2eAbs, _ := filepath.Abs(*e2eCache)
	cfg.Out = filepath.Join(dir, "samples.jsonl")
	loadBefore, start := loadAvg(), time.Now()
	var samples []kvmSample
	hangs := 0
	// An L1 sometimes freezes for good a moment after starting an L2 guest (its vCPU thread
	// halted, no timer firing inside: seen once in ~20 boots here, with QEMU 7.2's nested SVM).
	// A watchdog replaces such an L1; the next one discards the hung round and goes on.
	for attempt := 0; attempt < 5; attempt++ {
		samples = readSamples(cfg.Out)
		done := completeRounds(samples)
		if done >= *runs {
			break
		}
		cfg.Rounds, cfg.Attempt = *runs-done, attempt
		b, _ := json.Marshal(cfg)
		must(os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644))
		hung, err := runL1(self, dir, e2eAbs, console, start)
		if err != nil {
			break // not a hang: the console log says why; what was measured is still used
		}
		if hung {
			hangs++
		}
	}
	wall, loadAfter := time.Since(start), loadAvg()
	samples = readSamples(cfg.Out)
	if completeRounds(samples) < min(*runs, 8) {
		skip(fmt.Sprintf("only %d complete rounds after %d L1 boots (%d hung): see %s", completeRounds(samples), hangs+1, hangs, console.Name()))
		return
	}
	// Raw samples beside results.md.
	b, _ := os.ReadFile(cfg.Out)
	must(os.WriteFile(filepath.Join(absOut, "launch-kvm-samples.jsonl"), b, 0o644))
	complete := map[[2]int]int{}
	for _, s := range samples {
		complete[[2]int{s.Attempt, s.Round}]++
	}

	// Per arm: exec → READY=1 (plain: → E2E-INIT), exec → E2E-INIT, and the credlink arms' time
	// after the marker split by the launcher's log: E2E-INIT → hello (guest-agent's exec, its
	// SMBIOS read and verification, the connection), hello → report, report → READY=1.
	type arm struct{ ready, marker, uptime, after, toHello, exchange, ackReady []float64 }
	arms := map[string]*arm{}
	for _, a := range kvmArms {
		arms[a] = &arm{}
	}
	for _, s := range samples {
		if s.Round < 0 || complete[[2]int{s.Attempt, s.Round}] != len(kvmArms) {
			continue // warm-up, or a round a hung L1 left incomplete
		}
		a := arms[s.Arm]
		a.ready = append(a.ready, s.Ready)
		a.marker = append(a.marker, s.Marker)
		if up, err := strconv.ParseFloat(s.GuestUp, 64); err == nil {
			a.uptime = append(a.uptime, 1000*up)
		}
		if s.Arm != "plain" {
			a.after = append(a.after, s.Ready-s.Marker)
			a.toHello = append(a.toHello, s.Ready-s.AckToReady-s.Exchange-s.Marker)
			a.exchange = append(a.exchange, s.Exchange)
			a.ackReady = append(a.ackReady, s.AckToReady)
		}
	}
	plain := arms["plain"]
	med := func(xs []float64) float64 { return quantile(xs, 0.5) }
	note := fmt.Sprintf("L2 under KVM inside L1 (TCG, 1 vCPU, nested SVM): L2's code is still emulated by this host's TCG in the end, so absolute times are not real-KVM times; %d boots per arm after a discarded warm-up round, interleaved in one L1 in random order per round, 1 s between boots; load average %s → %s; section %.0f s, %d L1 hung and replaced",
		len(plain.ready), loadBefore, loadAfter, wall.Seconds(), hangs)
	for _, name := range []string{"vsock", "serial"} {
		a := arms[name]
		add("launch-kvm", fmt.Sprintf("QEMU/KVM boot → READY=1, ack over %s (5 credentials)", name), spread0(a.ready), spread0(plain.ready),
			ratio(med(a.ready), med(plain.ready)),
			fmt.Sprintf("peer: plain QEMU -accel kvm to the guest's E2E-INIT marker. Split: exec → E2E-INIT %s (%s of plain's; %+.0f ms; the guest's own clock at E2E-INIT %s vs plain %s), E2E-INIT → READY=1 %s (+%.1f %% of plain's boot) = E2E-INIT → hello %s + exchange %s + report → READY=1 %s; ",
				spread0(a.marker), ratio(med(a.marker), med(plain.marker)), med(a.marker)-med(plain.marker), spread0(a.uptime), spread0(plain.uptime),
				spread0(a.after), 100*med(a.after)/med(plain.ready), spread0(a.toHello), spread1(a.exchange), spread1(a.ackReady))+note)
	}
}

// spread0 and spread1 are "median (p10–p90)" in milliseconds with 0 and 1 decimals.
func spread0(xs []float64) string {
	return fmt.Sprintf("%.0f ms (%.0f–%.0f)", quantile(xs, 0.5), quantile(xs, 0.1), quantile(xs, 0.9))
}

func spread1(xs []float64) string {
	return fmt.Sprintf("%.1f ms (%.1f–%.1f)", quantile(xs, 0.5), quantile(xs, 0.1), quantile(xs, 0.9))
}

// benchManifest is the guest's /etc/credlink/ok.json for the launch sections' five credentials.
const benchManifest = `{"credentials": {"API_KEY": {"bytes": 44}, "DB_PASSWORD": {"bytes": 44}, "JWT_SECRET": {"min_bytes": 64}, "ENVIRONMENT": {"secret": false}, "CLUSTER": {"secret": false}}}`

// launchKVMInL1 runs inside L1: the interleaved boots, samples written to cfg.Out.
func launchKVMInL1(cfgPath string) {
	var cfg kvmConfig
	b, err := os.ReadFile(cfgPath)
	must(err)
	must(json.Unmarshal(b, &cfg))
	_, e1 := os.Stat("/dev/kvm")
	_, e2 := os.Stat("/dev/vhost-vsock")
	if e1 != nil || e2 != nil {
		must(fmt.Errorf("L1 lacks /dev/kvm (%v) or /dev/vhost-vsock (%v)", e1, e2))
	}
	// Sockets and FIFOs cannot live on 9p: L1's /run is tmpfs.
	dir, err := os.MkdirTemp("/run", "launch-kvm.")
	must(err)
	defer os.RemoveAll(dir)
	creds := filepath.Join(dir, "creds")
	must(os.Mkdir(creds, 0o700))
	for name, n := range map[string]int{"API_KEY": 33, "DB_PASSWORD": 33, "JWT_SECRET": 66} {
		raw := make([]byte, n)
		rand.Read(raw)
		must(os.WriteFile(filepath.Join(creds, name), []byte(base64.StdEncoding.EncodeToString(raw)), 0o400))
	}
	// The work directory is 9p without caching: each line reaches the host when written, so
	// what a hung L1 measured before it froze is kept.
	out, err := os.OpenFile(cfg.Out, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	must(err)
	defer out.Close()
	boot := 0
	for round := -1; round < cfg.Rounds; round++ {
		order := append([]string(nil), kvmArms...)
		mrand.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		for pos, arm := range order {
			// Printed before the pause, not during a boot (each console line costs L1 time).
			fmt.Printf("LAUNCH-KVM next: round %d %s\n", round, arm)
			time.Sleep(time.Second) // the previous boot's QEMU is gone (waited for) before this
			s := kvmBoot(cfg, dir, creds, arm, boot)
			s.Attempt, s.Round, s.Position = cfg.Attempt, round, pos
			line, _ := json.Marshal(s)
			_, err := out.Write(append(line, '\n'))
			must(err)
			boot++
			fmt.Printf("LAUNCH-KVM round %d %-6s marker %7.1f ms ready %7.1f ms exchange %.1f ms ack_to_ready %.1f ms guest_uptime %s load %s\n",
				round, arm, s.Marker, s.Ready, s.Exchange, s.AckToReady, s.GuestUp, s.L1Load)
		}
	}
}

var (
	markerRE = regexp.MustCompile(`E2E-INIT uptime=([0-9.]+)`)
)

// kvmBoot boots the guest once in arm and returns its times.
func kvmBoot(cfg kvmConfig, dir, creds, arm string, n int) kvmSample {
	fifo := filepath.Join(dir, fmt.Sprintf("console%d", n))
	must(syscall.Mkfifo(fifo, 0o600))
	defer os.Remove(fifo)
	// O_RDWR: opening does not wait for QEMU (the writer), and QEMU's open does not wait either.
	con, err := os.OpenFile(fifo, os.O_RDWR, 0)
	must(err)
	agent := "on"
	if arm == "plain" {
		agent = "off"
	}
	qemu := []string{"-machine", "q35", "-accel", "kvm", "-cpu", "host", "-m", "256", "-nodefaults", "-display", "none",
		"-serial", "file:" + fifo, "-no-reboot", "-kernel", cfg.VMLinux, "-initrd", cfg.Initrd,
		"-append", "console=ttyS0 quiet panic=-1 credlink.bench=1 credlink.agent=" + agent + " credlink.manifest=ok"}
	var cmd *exec.Cmd
	var notify *sdnotify.Listener
	var log syncLog
	if arm == "plain" {
		cmd = exec.Command("qemu-system-x86_64", qemu...)
	} else {
		nd, err := os.MkdirTemp(dir, "n")
		must(err)
		defer os.RemoveAll(nd)
		notify, err = sdnotify.Listen(nd)
		must(err)
		defer notify.Close()
		args := []string{"run", "--vm", "bench", "--hypervisor", "qemu", "--ack-via", arm, "--guest-cid", "3",
			"--runtime-dir", nd, "--shutdown-timeout", "1s", "--ack-timeout", "5m",
			"--credential", "API_KEY=API_KEY", "--credential", "DB_PASSWORD=DB_PASSWORD", "--credential", "JWT_SECRET=JWT_SECRET",
			"--set", "ENVIRONMENT=bench", "--set", "CLUSTER=local", "--"}
		cmd = exec.Command(cfg.Launcher, append(args, qemu...)...)
		cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+notify.Path, "CREDENTIALS_DIRECTORY="+creds)
		cmd.Stdout, cmd.Stderr = &log, &log
	}
	type mark struct {
		at     time.Time
		uptime string
	}
	marked := make(chan mark, 1)
	go func() {
		sc := bufio.NewScanner(con)
		for sc.Scan() {
			if m := markerRE.FindStringSubmatch(sc.Text()); m != nil {
				marked <- mark{time.Now(), m[1]}
			}
		}
	}()
	start := time.Now()
	must(cmd.Start())
	msec := func(t time.Time) float64 { return float64(t.Sub(start)) / float64(time.Millisecond) }
	var s kvmSample
	s.Arm = arm
	select {
	case m := <-marked:
		s.Marker, s.GuestUp = msec(m.at), m.uptime
	case <-time.After(5 * time.Minute):
		must(fmt.Errorf("%s boot %d: no E2E-INIT within 5 min; launcher log:\n%s", arm, n, log.String()))
	}
	if notify != nil {
		m, err := notify.Wait(5*time.Minute, sdnotify.Has("READY", "1"))
		if err != nil {
			must(fmt.Errorf("%s boot %d: no READY=1: %v; launcher log:\n%s", arm, n, err, log.String()))
		}
		s.Ready = msec(m.Received)
		// The launcher logs after READY=1; wait for its line before stopping it.
		for t0 := time.Now(); !strings.Contains(log.String(), "ack_to_ready=") && time.Since(t0) < 10*time.Second; {
			time.Sleep(10 * time.Millisecond)
		}
		s.AckToReady, s.Exchange = logMS(log.String(), "ack_to_ready"), logMS(log.String(), "exchange")
		cmd.Process.Signal(syscall.SIGTERM) // the busybox guest ignores the power button: QEMU is stopped after 1 s
	} else {
		s.Ready = s.Marker
		cmd.Process.Kill()
	}
	cmd.Wait()
	con.Close()
	s.L1Load = loadAvg()
	return s
}

// logMS is the duration field key=… of the launcher's log (slog text), in milliseconds; -1 when
// missing.
func logMS(log, key string) float64 {
	m := regexp.MustCompile(`\b` + key + `=(\S+)`).FindStringSubmatch(log)
	if m == nil {
		return -1
	}
	d, err := time.ParseDuration(m[1])
	if err != nil {
		return -1
	}
	return float64(d) / float64(time.Millisecond)
}

// runL1 boots one L1 with this binary inside and streams its console; false when the watchdog
// found it hung (no LAUNCH-KVM line for 150 s; a boot takes ~10 s here) and killed it; an
// error when L1 or the bench inside it failed.
func runL1(self, dir, e2eCache string, console *os.File, start time.Time) (hung bool, err error) {
	l1 := exec.Command("test/nested/l1.sh", "--smp", "1", "--work", dir, "--", self)
	l1.Env = append(os.Environ(), "NESTED_BENCH_L1="+filepath.Join(dir, "config.json"), "CREDLINK_E2E_CACHE="+e2eCache)
	l1.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // l1.sh and its QEMU, killed together
	pr, err := l1.StdoutPipe()
	must(err)
	l1.Stderr = l1.Stdout
	must(l1.Start())
	progress := make(chan struct{}, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			fmt.Fprintln(console, sc.Text())
			if strings.Contains(sc.Text(), "LAUNCH-KVM round") || strings.Contains(sc.Text(), "NESTED-") {
				fmt.Printf("  L1 %5.0fs | %s\n", time.Since(start).Seconds(), sc.Text())
				select {
				case progress <- struct{}{}:
				default:
				}
			}
		}
	}()
	exited := make(chan error, 1)
	go func() { exited <- l1.Wait() }()
	for {
		select {
		case err := <-exited:
			if err != nil {
				fmt.Printf("  L1 failed: %v (see %s)\n", err, console.Name())
			}
			return false, err
		case <-progress:
		case <-time.After(150 * time.Second):
			fmt.Fprintln(console, "launch-kvm: L1 made no progress for 150 s, killed")
			fmt.Println("  L1 made no progress for 150 s: killed, a new L1 goes on")
			syscall.Kill(-l1.Process.Pid, syscall.SIGKILL)
			<-exited
			return true, nil
		}
	}
}

// readSamples reads the samples file (JSON lines; a torn last line is skipped).
func readSamples(path string) []kvmSample {
	b, _ := os.ReadFile(path)
	var out []kvmSample
	for _, line := range strings.Split(string(b), "\n") {
		var s kvmSample
		if json.Unmarshal([]byte(line), &s) == nil {
			out = append(out, s)
		}
	}
	return out
}

// completeRounds counts measured rounds (not warm-up) with a sample of every arm.
func completeRounds(samples []kvmSample) int {
	per := map[[2]int]int{}
	n := 0
	for _, s := range samples {
		if s.Round < 0 {
			continue
		}
		if per[[2]int{s.Attempt, s.Round}]++; per[[2]int{s.Attempt, s.Round}] == len(kvmArms) {
			n++
		}
	}
	return n
}

// syncLog collects a child's output (written from os/exec's copying goroutine).
type syncLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncLog) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncLog) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }
