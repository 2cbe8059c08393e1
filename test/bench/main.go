package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/credlink/credlink/pkg/ack"
	"github.com/credlink/credlink/pkg/credential"
	"github.com/credlink/credlink/pkg/listen"
	"github.com/credlink/credlink/pkg/sdnotify"
)

var (
	binDir      = flag.String("bin", "bin", "directory with guest-agent and host-launcher")
	outDir      = flag.String("out", ".cache/bench", "where results.md goes")
	runs        = flag.Int("runs", 15, "repetitions of each timed measurement")
	scales      = flag.String("scale", "100,500,1000,2000", "concurrent local launches to try, until one fails")
	waitScales  = flag.String("scale-wait", "1000", "launchers waiting for acks (no agents) to try, comma-separated, until one fails or pid_max leaves no room (starting thousands at once saturates a 2-core machine for minutes)")
	sections    = flag.String("only", "instr,agent,ack,launch,scale,scale-wait,go", "sections to run (also launch-kvm, not run by default: boots nested L1 for 8–17 min, root)")
	before      = flag.String("before", "", "git ref also measured, interleaved, as the peer \"before\" (instruction counts, launch); e.g. main")
	e2eCache    = flag.String("e2e-cache", ".cache/e2e", "test/e2e/assets.sh cache (for the launch section)")
	launchBoots = flag.Int("boots", 12, "QEMU boots per arm in the launch section (at least 10)")
	bootGap     = flag.Duration("boot-gap", time.Second, "pause before every QEMU boot in the launch section: a boot right after another runs slower")
)

type row struct{ section, what, credlink, peer, ratio, note string }

var rows []row

func add(section, what, credlink, peer, ratio, note string) {
	rows = append(rows, row{section, what, credlink, peer, ratio, note})
	fmt.Printf("%-8s %-48s %-22s %-22s %-8s %s\n", section, what, credlink, peer, ratio, note)
}

func main() {
	flag.Parse()
	if cfg := os.Getenv("NESTED_BENCH_L1"); cfg != "" { // this binary inside L1 (launch-kvm)
		launchKVMInL1(cfg)
		return
	}
	os.MkdirAll(*outDir, 0o755)
	work, err := os.MkdirTemp("", "cb")
	must(err)
	if os.Getenv("BENCH_KEEP") == "" {
		defer os.RemoveAll(work)
	}
	want := map[string]bool{}
	for _, s := range strings.Split(*sections, ",") {
		want[s] = true
	}
	if want["instr"] {
		instructions(work)
	}
	if want["agent"] {
		agentCost(work)
	}
	if want["ack"] {
		ackPath(work)
	}
	if want["launch"] {
		launchOverhead(work)
	}
	if want["launch-kvm"] {
		launchKVM(work)
	}
	if want["scale"] {
		scale(work)
	}
	if want["scale-wait"] {
		scaleWaiting(work)
	}
	if want["go"] {
		goBench()
	}
	writeResults()
}

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// --- statistics -----------------------------------------------------------------------------

func quantile(xs []float64, q float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	i := int(q * float64(len(s)-1))
	return s[i]
}

func ms(d float64) string { return fmt.Sprintf("%.2f ms", d) }

// spread is "median (p10–p90)" in milliseconds.
func spread(xs []float64) string {
	return fmt.Sprintf("%.2f ms (%.2f–%.2f)", quantile(xs, 0.5), quantile(xs, 0.1), quantile(xs, 0.9))
}

func ratio(a, b float64) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

// rssKiB reads VmRSS (or VmHWM) of a process.
func procKiB(pid int, field string) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, field+":") {
			f := strings.Fields(l)
			v, _ := strconv.ParseFloat(f[1], 64)
			return v
		}
	}
	return 0
}

// pssKiB reads the proportional set size: memory a process really adds, shared pages split.
func pssKiB(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "Pss:") {
			v, _ := strconv.ParseFloat(strings.Fields(l)[1], 64)
			return v
		}
	}
	return 0
}

// --- 1. agent cost --------------------------------------------------------------------------

// guestTree writes a sysfs tree with n credentials (44-byte base64 secrets, shortened so that
// 255 fit the SMBIOS budget) and a manifest listing them.
func guestTree(dir string, n int) (sys, manifest string) {
	size := 33
	if n > 200 {
		size = 12
	}
	sys, manifest, _ = writeGuestTree(dir, n, size, nil)
	return sys, manifest
}

// writeGuestTree writes a sysfs tree with control first, then n credentials CRED_000… of
// base64(size random bytes), and a manifest listing those n; sent is the n credentials.
func writeGuestTree(dir string, n, size int, control []credential.Credential) (sys, manifest string, sent []credential.Credential) {
	creds := append([]credential.Credential{}, control...)
	var m strings.Builder
	m.WriteString(`{"credentials": {`)
	for i := range n {
		raw := make([]byte, size)
		rand.Read(raw)
		v := base64.StdEncoding.EncodeToString(raw)
		name := fmt.Sprintf("CRED_%03d", i)
		c := credential.Credential{Name: name, Value: credential.NewValue([]byte(v))}
		creds = append(creds, c)
		sent = append(sent, c)
		if i > 0 {
			m.WriteString(",")
		}
		fmt.Fprintf(&m, "%q: {\"bytes\": %d}", name, len(v))
	}
	m.WriteString("}}")
	sys = filepath.Join(dir, "sys")
	must(credential.WriteSMBIOSTree(sys, creds, credential.DefaultBudget))
	manifest = filepath.Join(dir, "manifest.json")
	must(os.WriteFile(manifest, []byte(m.String()), 0o600))
	return sys, manifest, sent
}

func freePort() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(err)
	defer l.Close()
	return l.Addr().String()
}

type daemonProc struct {
	cmd  *exec.Cmd
	addr string
}

func (d *daemonProc) stop() {
	d.cmd.Process.Signal(syscall.SIGTERM)
	d.cmd.Wait()
}

// startAgent starts guest-agent and returns it with the time from exec to READY=1.
func startAgent(work string, n int, metrics bool) (*daemonProc, time.Duration) {
	dir, _ := os.MkdirTemp(work, "agent")
	sys, manifest := guestTree(dir, n)
	notify, err := sdnotify.Listen(dir)
	must(err)
	defer notify.Close()
	addr := ""
	if metrics {
		addr = freePort()
	}
	cmd := exec.Command(filepath.Join(*binDir, "guest-agent"), "run", "--source", "smbios", "--sysfs", sys, "--manifest", manifest, "--metrics-listen", addr)
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+notify.Path)
	start := time.Now()
	must(cmd.Start())
	m, err := notify.Wait(10*time.Second, sdnotify.Has("READY", "1"))
	must(err)
	return &daemonProc{cmd: cmd, addr: addr}, m.Received.Sub(start)
}

// scrapeAt fetches url count times at rate per second and returns latencies in ms.
func scrapeAt(url string, count int, rate float64) []float64 {
	client := &http.Client{Timeout: 5 * time.Second}
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer tick.Stop()
	var lat []float64
	for range count {
		<-tick.C
		s := time.Now()
		resp, err := client.Get(url)
		if err != nil {
			continue
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		lat = append(lat, float64(time.Since(s))/float64(time.Millisecond))
	}
	return lat
}

func agentCost(work string) {
	for _, n := range []int{5, 100, 255} {
		var ts []float64
		for range *runs {
			d, t := startAgent(work, n, true)
			ts = append(ts, float64(t)/float64(time.Millisecond))
			d.stop()
		}
		add("agent", fmt.Sprintf("exec → READY=1, %d credentials", n), spread(ts), "", "", "metrics listener on")
	}
	// Memory and scrape latency, beside node_exporter, same rate and count.
	const scrapes, rate = 1000, 100.0
	d, _ := startAgent(work, 5, true)
	time.Sleep(300 * time.Millisecond)
	agentIdle := procKiB(d.cmd.Process.Pid, "VmRSS")
	agentLat := scrapeAt("http://"+d.addr+"/metrics", scrapes, rate)
	agentAfter := procKiB(d.cmd.Process.Pid, "VmRSS")
	agentPeak := procKiB(d.cmd.Process.Pid, "VmHWM")
	d.stop()

	ne, err := exec.LookPath("prometheus-node-exporter")
	var neIdle, neAfter, nePeak float64
	var neLat []float64
	if err == nil {
		addr := freePort()
		cmd := exec.Command(ne, "--web.listen-address="+addr)
		cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
		must(cmd.Start())
		for range 100 {
			if resp, err := http.Get("http://" + addr + "/metrics"); err == nil {
				resp.Body.Close()
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		time.Sleep(300 * time.Millisecond)
		neIdle = procKiB(cmd.Process.Pid, "VmRSS")
		neLat = scrapeAt("http://"+addr+"/metrics", scrapes, rate)
		neAfter = procKiB(cmd.Process.Pid, "VmRSS")
		nePeak = procKiB(cmd.Process.Pid, "VmHWM")
		cmd.Process.Kill()
		cmd.Wait()
	}
	mib := func(k float64) string { return fmt.Sprintf("%.1f MiB", k/1024) }
	add("agent", "idle RSS", mib(agentIdle), mib(neIdle), ratio(agentIdle, neIdle), "peer: prometheus-node-exporter (Debian)")
	add("agent", fmt.Sprintf("RSS after %d scrapes (peak)", scrapes), fmt.Sprintf("%s (%s)", mib(agentAfter), mib(agentPeak)), fmt.Sprintf("%s (%s)", mib(neAfter), mib(nePeak)), ratio(agentAfter, neAfter), "")
	add("agent", fmt.Sprintf("/metrics p50 at %.0f req/s", rate), ms(quantile(agentLat, 0.5)), ms(quantile(neLat, 0.5)), ratio(quantile(agentLat, 0.5), quantile(neLat, 0.5)), "node_exporter collects the whole host")
	add("agent", fmt.Sprintf("/metrics p99 at %.0f req/s", rate), ms(quantile(agentLat, 0.99)), ms(quantile(neLat, 0.99)), ratio(quantile(agentLat, 0.99), quantile(neLat, 0.99)), "")
}

// --- 2. ack path ----------------------------------------------------------------------------

// ackPath times, on the host, the first byte from the guest to READY=1 arriving at the service
// manager's socket: credlink's challenge/report/verdict exchange with the launcher's handling
// (verify, then sd_notify), against socat relaying a READY=1 it is given.
func ackPath(work string) {
	dir, _ := os.MkdirTemp(work, "ack")
	notify, err := sdnotify.Listen(dir)
	must(err)
	defer notify.Close()
	key := make([]byte, ack.KeySize)
	rand.Read(key)
	var sent []credential.Credential
	for i := range 5 {
		v := make([]byte, 44)
		rand.Read(v)
		sent = append(sent, credential.Credential{Name: fmt.Sprintf("C%d", i), Value: credential.NewValue(v)})
	}
	report := ack.Report{BootID: "b", Agent: "bench", OK: true}
	for _, c := range sent {
		report.Credentials = append(report.Credentials, ack.CredentialReport{Name: c.Name, Bytes: c.Value.Len(), Status: "ok", MAC: ack.CredentialMAC(key, c.Name, c.Value.Bytes())})
	}
	sendReady := func() { must(notify.Send("READY=1\nSTATUS=Ready: 5/5 credentials delivered byte-exact")) }
	waitN := func(n int) time.Time {
		for {
			ms := notify.Messages()
			seen := 0
			for _, m := range ms {
				if m.Fields["READY"] == "1" {
					seen++
					if seen == n {
						return m.Received
					}
				}
			}
			time.Sleep(20 * time.Microsecond)
		}
	}

	// credlink: the launcher's path — ack.Server, OnResult, READY=1 from the waiting loop.
	sock := filepath.Join(dir, "ack.sock")
	l, err := listen.Unix(sock)
	must(err)
	results := make(chan ack.Result, 4)
	srv := &ack.Server{Key: key, Sent: sent, OnResult: func(r ack.Result) { results <- r }}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go srv.Serve(ctx, l)
	go func() {
		for r := range results {
			if r.Accepted {
				sendReady()
			}
		}
	}()
	client := &ack.Client{Key: key, Dialer: ack.UnixDialer{Path: sock}}
	var credlinkT []float64
	n := 1000
	for i := range n {
		start := time.Now() // the guest is about to send its first byte
		if _, err := client.Exchange(ctx, report); err != nil {
			must(err)
		}
		credlinkT = append(credlinkT, float64(waitN(i+1).Sub(start))/float64(time.Millisecond))
	}

	// socat as microvm.nix runs it, relaying the guest's READY=1 line to NOTIFY_SOCKET.
	var socatT []float64
	if sc, err := exec.LookPath("socat"); err == nil {
		relay := filepath.Join(dir, "relay.sock")
		cmd := exec.Command(sc, "-t0", "-T0.2", "UNIX-LISTEN:"+relay+",fork", "UNIX-SENDTO:"+notify.Path)
		must(cmd.Start())
		defer func() { cmd.Process.Kill(); cmd.Wait() }()
		for range 100 {
			if _, err := os.Stat(relay); err == nil {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		base := n
		for i := range n {
			start := time.Now()
			c, err := net.Dial("unix", relay)
			must(err)
			c.Write([]byte("READY=1\nSTATUS=Ready"))
			c.(*net.UnixConn).CloseWrite()
			socatT = append(socatT, float64(waitN(base+i+1).Sub(start))/float64(time.Millisecond))
			c.Close()
		}
	}
	add("ack", "guest's first byte → READY=1 at NOTIFY_SOCKET", spread(credlinkT), spread(socatT),
		ratio(quantile(credlinkT, 0.5), quantile(socatT, 0.5)), "1,000 each; credlink: 2 round trips, HMAC-verified; socat: unauthenticated relay, forks per connection")
}

// --- 3. launch overhead ---------------------------------------------------------------------

// launchArm is one way of booting the e2e guest in the launch section: plain QEMU (launcher
// "") or through a host-launcher with the agent in the initramfs.
type launchArm struct {
	name, launcher, initrd string
	boots                  []launchBoot
}

// launchBoot is one boot's times in milliseconds from the exec of QEMU (plain) or of
// host-launcher: the guest's marker line on the console, READY=1 at NOTIFY_SOCKET (launcher
// arms), and the guest's own uptime when it printed the marker (/proc/uptime, 10 ms steps).
type launchBoot struct{ marker, ready, uptime float64 }

// launchTBs is what QEMU had translated (HMP "info jit", TB count) when the guest printed its
// marker and when READY=1 arrived: how much distinct guest code (kernel, agent, runtime) ran,
// which is most of a TCG boot's wall time and does not depend on the machine's load.
type launchTBs struct{ marker, ready int }

func (a *launchArm) series(f func(launchBoot) float64) []float64 {
	out := make([]float64, len(a.boots))
	for i, b := range a.boots {
		out[i] = f(b)
	}
	return out
}

// launchOverhead boots the e2e guest (test/e2e/guest-init with credlink.bench=1, the same
// initramfs with the agent in it) through host-launcher --ack-via serial until READY=1, and
// under plain QEMU until it prints E2E-INIT where the agent would start. Back-to-back QEMU boots
// on this machine are not independent: without a pause they alternate fast and slow (~10 % in
// the guest's own clock), so a fixed order (plain, then a launcher right after it, while plain
// followed the launcher's shutdown wait) charged that to one arm. Every boot therefore follows a
// pause (-boot-gap) and each round boots the arms in a random order.
func launchOverhead(work string) {
	vmlinux := filepath.Join(*e2eCache, "vmlinux")
	if _, err := os.Stat(vmlinux); err != nil {
		add("launch", "QEMU boot → ready", "skipped", "", "", "run make e2e first (assets)")
		return
	}
	dir, _ := os.MkdirTemp(work, "launch")
	// The e2e initramfs: same guest for both; the plain boot prints its marker where the agent
	// would start.
	mkinitrd := func(name, agentBin string) string {
		files := filepath.Join(dir, name+"-files")
		os.MkdirAll(filepath.Join(files, "etc", "credlink"), 0o755)
		agent, err := os.ReadFile(agentBin)
		must(err)
		must(os.WriteFile(filepath.Join(files, "guest-agent"), agent, 0o755))
		must(os.WriteFile(filepath.Join(files, "vsockcheck"), []byte("#!/bin/sh\n"), 0o755))
		must(os.WriteFile(filepath.Join(files, "etc", "credlink", "ok.json"), []byte(benchManifest), 0o644))
		initrd := filepath.Join(dir, name+"-initrd.gz")
		cmd := exec.Command("test/e2e/mkinitrd.sh", *e2eCache, initrd, "test/e2e/guest-init", files, "virtio_pci", "virtio_console")
		if out, err := cmd.CombinedOutput(); err != nil {
			must(fmt.Errorf("mkinitrd: %v %s", err, out))
		}
		return initrd
	}
	initrd := mkinitrd("now", filepath.Join(*binDir, "guest-agent-static"))
	arms := []*launchArm{{name: "plain", initrd: initrd}, {name: "launch", launcher: filepath.Join(*binDir, "host-launcher"), initrd: initrd}}
	// With -before, the launcher and agent of that ref boot the same guest in the same rounds.
	if out := beforeBinaries(work); out != "" {
		arms = append(arms, &launchArm{name: "before", launcher: filepath.Join(out, "host-launcher"), initrd: mkinitrd("before", filepath.Join(out, "guest-agent"))})
	}
	creds := filepath.Join(dir, "creds")
	os.Mkdir(creds, 0o700)
	for name, n := range map[string]int{"API_KEY": 33, "DB_PASSWORD": 33, "JWT_SECRET": 66} {
		raw := make([]byte, n)
		rand.Read(raw)
		os.WriteFile(filepath.Join(creds, name), []byte(base64.StdEncoding.EncodeToString(raw)), 0o400)
	}
	qemu := func(console, agent string, initrd string) []string {
		return []string{"-machine", "q35", "-accel", "tcg", "-m", "256", "-nodefaults", "-display", "none",
			"-serial", "file:" + console, "-no-reboot", "-kernel", vmlinux, "-initrd", initrd,
			"-append", "console=ttyS0 quiet panic=-1 credlink.bench=1 credlink.agent=" + agent + " credlink.manifest=ok"}
	}
	// boot times one boot of arm a (monitor "": timed) or counts its translation blocks through
	// an extra QMP monitor, which the untimed boots alone have (a query takes QEMU's lock).
	boot := func(a *launchArm, i int, monitor string) (launchBoot, launchTBs) {
		console := filepath.Join(dir, fmt.Sprintf("%s%d.log", a.name, i))
		var cmd *exec.Cmd
		var notify *sdnotify.Listener
		var extra []string
		if monitor != "" {
			extra = []string{"-qmp", "unix:" + monitor + ",server=on,wait=off"}
		}
		if a.launcher == "" {
			cmd = exec.Command("qemu-system-x86_64", append(qemu(console, "off", a.initrd), extra...)...)
		} else {
			nd, _ := os.MkdirTemp(dir, "n")
			var err error
			notify, err = sdnotify.Listen(nd)
			must(err)
			defer notify.Close()
			args := []string{"run", "--vm", "bench", "--hypervisor", "qemu", "--ack-via", "serial", "--runtime-dir", nd, "--shutdown-timeout", "200ms",
				"--credential", "API_KEY=API_KEY", "--credential", "DB_PASSWORD=DB_PASSWORD", "--credential", "JWT_SECRET=JWT_SECRET",
				"--set", "ENVIRONMENT=bench", "--set", "CLUSTER=local", "--"}
			cmd = exec.Command(a.launcher, append(append(args, qemu(console, "on", a.initrd)...), extra...)...)
			cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+notify.Path, "CREDENTIALS_DIRECTORY="+creds)
		}
		start := time.Now()
		must(cmd.Start())
		var b launchBoot
		for time.Since(start) < time.Minute {
			// The whole line, so that its uptime can be read.
			if _, rest, ok := bytes.Cut(readFile(console), []byte("E2E-INIT uptime=")); ok && bytes.IndexByte(rest, '\n') > 0 {
				b.marker = float64(time.Since(start)) / float64(time.Millisecond)
				up, err := strconv.ParseFloat(string(bytes.TrimSpace(rest[:bytes.IndexByte(rest, '\n')])), 64)
				must(err)
				b.uptime = up * 1000
				break
			}
			time.Sleep(2 * time.Millisecond)
		}
		if b.marker == 0 {
			must(fmt.Errorf("%s boot %d: no E2E-INIT on the console within a minute", a.name, i))
		}
		var tbs launchTBs
		if monitor != "" {
			tbs.marker = tbCount(monitor)
		}
		if notify != nil {
			m, err := notify.Wait(time.Minute, sdnotify.Has("READY", "1"))
			must(err)
			b.ready = float64(m.Received.Sub(start)) / float64(time.Millisecond)
			if monitor != "" {
				tbs.ready = tbCount(monitor)
			}
			cmd.Process.Signal(syscall.SIGTERM)
		} else {
			cmd.Process.Kill()
		}
		cmd.Wait()
		return b, tbs
	}
	boots := max(*launchBoots, 10)
	load := loadAvg()
	for i := range boots {
		for _, k := range mrand.Perm(len(arms)) {
			time.Sleep(*bootGap)
			b, _ := boot(arms[k], i, "")
			arms[k].boots = append(arms[k].boots, b)
		}
	}
	load += " → " + loadAvg()
	tbs := make([]launchTBs, len(arms))
	for k, a := range arms {
		time.Sleep(*bootGap)
		_, tbs[k] = boot(a, -1, filepath.Join(dir, a.name+"-jit.sock"))
	}
	plain := arms[0]
	marker := func(b launchBoot) float64 { return b.marker }
	uptime := func(b launchBoot) float64 { return b.uptime }
	pm, pu := quantile(plain.series(marker), 0.5), quantile(plain.series(uptime), 0.5)
	how := fmt.Sprintf("%d boots per arm, each round in a random order, %v pause before every boot; load average %s", boots, *bootGap, load)
	for k, a := range arms[1:] {
		k++
		label, vs := "", ""
		if a.name == "before" {
			label = ", " + *before
			vs = fmt.Sprintf("; this tree vs %s: %s", *before, ratio(quantile(arms[1].series(func(b launchBoot) float64 { return b.ready }), 0.5), quantile(a.series(func(b launchBoot) float64 { return b.ready }), 0.5)))
		}
		ready := a.series(func(b launchBoot) float64 { return b.ready })
		add("launch", "QEMU TCG boot → READY=1 (5 credentials)"+label, spread(ready), spread(plain.series(marker)),
			ratio(quantile(ready, 0.5), pm), "peer: plain QEMU, the guest prints its marker where the agent starts; "+how+vs)
		am, au := quantile(a.series(marker), 0.5), quantile(a.series(uptime), 0.5)
		add("launch", "of which: exec → the guest's marker"+label, spread(a.series(marker)), spread(plain.series(marker)), ratio(am, pm),
			fmt.Sprintf("%+.0f ms; the guest's own uptime at the marker %.0f vs %.0f ms (%+.0f ms; the rest is before the kernel runs: launcher, QEMU start-up, firmware)", am-pm, au, pu, au-pu))
		tail := a.series(func(b launchBoot) float64 { return b.ready - b.marker })
		add("launch", "of which: the guest's marker → READY=1"+label, spread(tail), "", "",
			"guest-agent's cold exec under TCG, SMBIOS read and checks, the exchange over virtio-serial, the launcher's READY=1")
		add("launch", "QEMU translation blocks: boot → marker, marker → READY=1"+label, fmt.Sprintf("%d, %d", tbs[k].marker, tbs[k].ready-tbs[k].marker),
			fmt.Sprintf("%d, -", tbs[0].marker), ratio(float64(tbs[k].marker), float64(tbs[0].marker)),
			"distinct guest code run (kernel, firmware, init, agent), from QEMU's HMP info jit in one extra boot per arm, not timed; under TCG translating it is most of the wall time, and the count does not move with the load")
	}
}

// tbCount asks QEMU's monitor at path for the number of translation blocks so far ("TB count" of
// HMP "info jit" through QMP's human-monitor-command).
func tbCount(path string) int {
	c, err := net.Dial("unix", path)
	must(err)
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	var text string
	for i, cmd := range []string{`{"execute":"qmp_capabilities"}`, `{"execute":"human-monitor-command","arguments":{"command-line":"info jit"}}`} {
		if i == 0 {
			_, err = r.ReadBytes('\n') // greeting
			must(err)
		}
		_, err = c.Write([]byte(cmd + "\n"))
		must(err)
		for {
			line, err := r.ReadBytes('\n')
			must(err)
			var m struct{ Return json.RawMessage }
			if json.Unmarshal(line, &m) == nil && m.Return != nil {
				json.Unmarshal(m.Return, &text)
				break
			}
		}
	}
	for _, l := range strings.Split(text, "\n") {
		if f := strings.Fields(l); len(f) == 3 && f[0] == "TB" && f[1] == "count" {
			n, err := strconv.Atoi(f[2])
			must(err)
			return n
		}
	}
	must(fmt.Errorf("no TB count in QEMU's info jit: %q", text))
	return 0
}

// beforeBinaries builds -before's guest-agent and host-launcher as make build does, once, and
// returns their directory ("" without -before).
func beforeBinaries(work string) string {
	out := filepath.Join(work, "bin-before")
	if _, err := os.Stat(filepath.Join(out, "host-launcher")); err == nil {
		return out
	}
	src := beforeTree(work)
	if src == "" {
		return ""
	}
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", out+"/", "./cmd/guest-agent", "./cmd/host-launcher")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		must(fmt.Errorf("build %s: %v\n%s", *before, err, b))
	}
	return out
}

// loadAvg is the 1-minute load average.
func loadAvg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); len(f) > 0 {
		return f[0]
	}
	return "?"
}

func readFile(p string) []byte { b, _ := os.ReadFile(p); return b }

// --- 4. scale -------------------------------------------------------------------------------

func scale(work string) {
	creds, _ := os.MkdirTemp(work, "creds")
	for name, n := range map[string]int{"API_KEY": 33, "DB_PASSWORD": 48, "JWT_SECRET": 66} {
		raw := make([]byte, n)
		rand.Read(raw)
		os.WriteFile(filepath.Join(creds, name), []byte(base64.StdEncoding.EncodeToString(raw)), 0o400)
	}
	manifest := filepath.Join(creds, "..", "scale-manifest.json")
	os.WriteFile(manifest, []byte(`{"credentials": {"API_KEY": {"bytes": 44}, "DB_PASSWORD": {"bytes": 64}, "JWT_SECRET": {"bytes": 88}}}`), 0o600)
	for _, s := range strings.Split(*scales, ",") {
		n, _ := strconv.Atoi(s)
		if n <= 0 {
			continue
		}
		if avail := memAvailableKiB(); avail > 0 && float64(n)*4*1024 > avail {
			add("scale", fmt.Sprintf("%d concurrent local launches", n), "not run", "", "", fmt.Sprintf("would need ~%d MiB, %d MiB available", n*4, int(avail/1024)))
			break
		}
		wall, perVM, rss, fails, note := scaleOnce(work, creds, manifest, n)
		add("scale", fmt.Sprintf("%d concurrent local launches", n), fmt.Sprintf("%.1f s to all READY", wall.Seconds()),
			"", "", fmt.Sprintf("launcher PSS %.1f MiB/VM (RSS %.1f MiB); %d failed%s", perVM/1024, rss/1024, fails, note))
		if fails > 0 {
			break // where it breaks: reported above
		}
	}
}

func memAvailableKiB() float64 {
	b, _ := os.ReadFile("/proc/meminfo")
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "MemAvailable:") {
			v, _ := strconv.ParseFloat(strings.Fields(l)[1], 64)
			return v
		}
	}
	return 0
}

func scaleOnce(work, creds, manifest string, n int) (time.Duration, float64, float64, int, string) {
	dir, _ := os.MkdirTemp(work, "scale")
	notify, err := sdnotify.Listen(dir)
	must(err)
	defer notify.Close()
	cmds := make([]*exec.Cmd, n)
	var errs sync.Map
	var exited sync.WaitGroup
	availBefore := memAvailableKiB()
	start := time.Now()
	for i := range n {
		c := exec.Command(filepath.Join(*binDir, "host-launcher"), "run", "--vm", fmt.Sprintf("vm%d", i), "--hypervisor", "local",
			"--runtime-dir", dir, "--manifest", manifest, "--agent", filepath.Join(*binDir, "guest-agent"), "--ack-timeout", "5m",
			"--credential", "API_KEY=API_KEY", "--credential", "DB_PASSWORD=DB_PASSWORD", "--credential", "JWT_SECRET=JWT_SECRET")
		c.Env = append(os.Environ(), "NOTIFY_SOCKET="+notify.Path, "CREDENTIALS_DIRECTORY="+creds, "GOMAXPROCS=1")
		// If the benchmark itself dies (at the machine's process limit it may), take the
		// launchers with it; each launcher takes its agent.
		c.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		var stderr bytes.Buffer
		c.Stderr = &stderr
		if err := c.Start(); err != nil {
			errs.Store(i, err.Error())
			continue
		}
		cmds[i] = c
		exited.Add(1)
		go func() {
			defer exited.Done()
			c.Wait()
			if c.ProcessState != nil && !c.ProcessState.Success() {
				errs.Store(i, lastLine(stderr.String()))
			}
		}()
	}
	deadline := time.Now().Add(5 * time.Minute)
	ready := 0
	for time.Now().Before(deadline) {
		ready = 0
		for _, m := range notify.Messages() {
			if m.Fields["READY"] == "1" {
				ready++
			}
		}
		failed := 0
		errs.Range(func(_, _ any) bool { failed++; return true })
		if ready+failed >= n {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	wall := time.Since(start)
	hostPerVM := (availBefore - memAvailableKiB()) / float64(n)
	var pss, rss float64
	alive := 0
	for _, c := range cmds {
		if c != nil && c.Process != nil {
			if p := pssKiB(c.Process.Pid); p > 0 {
				pss += p
				rss += procKiB(c.Process.Pid, "VmRSS")
				alive++
			}
		}
	}
	for _, c := range cmds {
		if c != nil && c.Process != nil {
			c.Process.Signal(syscall.SIGTERM)
		}
	}
	// The goroutines above own Wait (and ProcessState): wait for them, not by reading it.
	exited.Wait()
	fails := n - ready
	note := fmt.Sprintf("; host memory %.1f MiB/VM (launcher + agent)", hostPerVM/1024)
	errs.Range(func(_, v any) bool { note += "; e.g. " + v.(string); return false })
	if alive == 0 {
		alive = 1
	}
	return wall, pss / float64(alive), rss / float64(alive), fails, note
}

func lastLine(s string) string {
	sc := bufio.NewScanner(strings.NewReader(s))
	last := ""
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) != "" {
			last = sc.Text()
		}
	}
	return last
}

// --- 5. codec, table and protocol benchmarks; binary sizes ---------------------------------

var goBenchText string

func goBench() {
	for _, b := range []string{"guest-agent", "host-launcher"} {
		if fi, err := os.Stat(filepath.Join(*binDir, b)); err == nil {
			add("size", b+" binary (static, stripped)", fmt.Sprintf("%.1f MiB", float64(fi.Size())/(1<<20)), "", "", "")
		}
	}
	if fi, err := os.Stat("/usr/bin/prometheus-node-exporter"); err == nil {
		add("size", "prometheus-node-exporter binary (Debian)", "", fmt.Sprintf("%.1f MiB", float64(fi.Size())/(1<<20)), "", "for scale")
	}
	raw := filepath.Join(*outDir, "go-bench.txt")
	cmd := exec.Command("go", "test", "-run", "^$", "-bench", "ParseTable64K|ParseEntry64K|Build64K|Encode255|Parse255|RoundTripUnix|ConcurrentLaunches",
		"-benchmem", "-count", "6", "./pkg/credential", "./pkg/smbios", "./pkg/ack")
	out, err := cmd.CombinedOutput()
	must(os.WriteFile(raw, out, 0o644))
	if err != nil {
		must(fmt.Errorf("go test -bench: %v\n%s", err, out))
	}
	stat, err := exec.Command("go", "run", "golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da", raw).CombinedOutput()
	if err != nil {
		stat = append([]byte("benchstat failed: "+err.Error()+"\n"), out...)
	}
	goBenchText = string(stat)
	fmt.Println(goBenchText)
}

// --- output ---------------------------------------------------------------------------------

func writeResults() {
	var b strings.Builder
	host, _ := os.Hostname()
	cpu := ""
	if f, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(f), "\n") {
			if strings.HasPrefix(l, "model name") {
				cpu = strings.TrimSpace(strings.SplitN(l, ":", 2)[1])
				break
			}
		}
	}
	fmt.Fprintf(&b, "Measured %s on %s (%s, %d CPUs).\n\n", time.Now().UTC().Format("2006-01-02 15:04 MST"), host, cpu, numCPU())
	b.WriteString("| section | measurement | credlink | peer | ratio | notes |\n|---|---|---|---|---|---|\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", r.section, r.what, r.credlink, r.peer, r.ratio, r.note)
	}
	if goBenchText != "" {
		b.WriteString("\nGo benchmarks (benchstat over 6 runs):\n\n```\n" + goBenchText + "```\n")
	}
	p := filepath.Join(*outDir, "results.md")
	must(os.WriteFile(p, []byte(b.String()), 0o644))
	fmt.Println("\n" + b.String() + "\nwritten to " + p)
}

func numCPU() int {
	b, _ := os.ReadFile("/proc/cpuinfo")
	return strings.Count(string(b), "processor\t:")
}
