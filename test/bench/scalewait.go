package main

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/credlink/credlink/pkg/sdnotify"
)

// --- 4b. scale, launcher alone --------------------------------------------------------------
//
// On a real host only host-launcher runs there while its guests boot: scale-wait starts N
// launchers, each with a stand-in QEMU that never boots (a shell exec'ing sleep), so that every
// launcher sits waiting for its acknowledgement; no agent runs on this host. It measures, once
// all are waiting, PSS and threads per launcher, the host memory they took, the CPU they use
// while they wait, and the notifications they send the service manager, and derives how many
// this host could hold.

var (
	raisePidMax = flag.Bool("raise-pid-max", false, "scale-wait, as root: raise kernel.pid_max to systemd's 4194304 for the section and restore it afterwards (also after SIGINT/SIGTERM/SIGHUP; a bench killed with SIGKILL leaves a note that the next run restores)")
	waitStarts  = flag.Int("scale-wait-starts", 16, "scale-wait: launchers starting at once; a start ends when the launcher reports that it waits for its acknowledgement")
	waitIdle    = flag.Duration("scale-wait-idle", 30*time.Second, "scale-wait: how long the waiting launchers' CPU use and notifications are measured")
)

// systemdPidMax is what systemd (since v243, sysctl.d/50-pid-max.conf, installed where long is
// 64 bits) and NixOS (nixos/modules/system/boot/systemd.nix, boot.kernel.sysctl."kernel.pid_max"
// on 64-bit platforms) set kernel.pid_max to at boot: the kernel's PID_MAX_LIMIT.
const systemdPidMax = 4194304

const pidMaxPath = "/proc/sys/kernel/pid_max"

// pidMaxNote holds kernel.pid_max's value from before -raise-pid-max while it is raised, so that
// a bench killed with SIGKILL is undone by the next run.
var pidMaxNote = filepath.Join(os.TempDir(), "credlink-bench-pid_max.orig")

// pidMaxRaised says, for the report, that -raise-pid-max raised kernel.pid_max ("" if not).
var pidMaxRaised string

// pidReserve is how many pids the scale sections leave to the rest of the machine.
const pidReserve = 4096

// memReserveKiB is the memory scale-wait leaves to the rest of the machine: it stops starting
// launchers when MemAvailable falls below it, and the ceiling is computed with it kept free.
const memReserveKiB = 2 << 20

// waitResult is one scale-wait run.
type waitResult struct {
	n, started, waiting  int
	startWall            time.Duration
	startLat             []float64 // seconds from exec to its waiting STATUS=
	pss, pssAnon         []float64 // KiB per launcher
	threads              []float64
	standInPSS           float64 // KiB, median over a sample
	hostKiB              float64 // MemAvailable drop per launcher, stand-in included
	pidsPer              float64 // launcher threads + its stand-in
	cpuPerSec            float64 // CPU seconds per second, all launchers, while waiting
	wakeups              float64 // per launcher per second, while waiting
	notifyRate           float64 // datagrams per second to NOTIFY_SOCKET, while waiting
	loadStart, loadIdle  string
	stopReason, teardown string
}

// waitLive is what a signal must undo: the launchers running and a raised pid_max.
var waitLive struct {
	sync.Mutex
	cmds    map[*exec.Cmd]bool
	restore func()
}

func scaleWaiting(work string) {
	if os.Geteuid() != 0 {
		// The launchers make themselves non-dumpable, so only root may read their
		// /proc/PID/smaps_rollup and task/*/schedstat: without it every figure would read 0.
		add("scale", "launchers waiting for acks (no agents on the host)", "skipped", "", "", "needs root: the launchers are non-dumpable, so their memory and CPU figures in /proc are root's to read")
		return
	}
	restoreLeftPidMax()
	restore := raisePidMaxForRun()
	waitLive.Lock()
	waitLive.cmds = map[*exec.Cmd]bool{}
	waitLive.restore = restore
	waitLive.Unlock()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		s, ok := <-sigs
		if !ok {
			return
		}
		fmt.Fprintf(os.Stderr, "bench: %v: stopping every launcher, restoring kernel.pid_max\n", s)
		waitUndo()
		os.Exit(130)
	}()
	defer func() {
		signal.Stop(sigs)
		close(sigs)
		waitUndo()
	}()

	fake := filepath.Join(work, "fake-qemu")
	must(os.WriteFile(fake, []byte("#!/bin/sh\nexec sleep 100000\n"), 0o755))
	creds, _ := os.MkdirTemp(work, "wcreds")
	for name, n := range map[string]int{"API_KEY": 33, "DB_PASSWORD": 48, "JWT_SECRET": 66} {
		raw := make([]byte, n)
		rand.Read(raw)
		os.WriteFile(filepath.Join(creds, name), []byte(base64.StdEncoding.EncodeToString(raw)), 0o400)
	}
	launcher := filepath.Join(*binDir, "host-launcher")
	var first, last *waitResult
	pidsPer, hostKiB := 8.0, 1.5*1024 // per launcher with its stand-in, until measured
	for _, s := range strings.Split(*waitScales, ",") {
		n, _ := strconv.Atoi(s)
		if n <= 0 {
			continue
		}
		what := fmt.Sprintf("%s launchers waiting for acks (no agents on the host)", thousands(n))
		// Never run the machine out of pids or memory: others use it too.
		pidMax, threadsMax, inUse := readInt(pidMaxPath), readInt("/proc/sys/kernel/threads-max"), threadsInUse()
		byPids := float64(min(pidMax, threadsMax)-inUse-pidReserve) / pidsPer
		avail := memAvailableKiB()
		// MemAvailable moves with whatever else runs here: the estimate is at least 1 MiB each
		// (10,000 need 12 GiB with the reserve) and at most 1.5 MiB.
		byMem := (avail - memReserveKiB) / min(max(hostKiB, 1024), 1536)
		if float64(n) > byPids || float64(n) > byMem {
			add("scale", what, "not run", "", "", fmt.Sprintf("room here for ~%.0f: pid_max %d and threads-max %d with %d tasks in use, %.1f per launcher with its stand-in, %d kept; or %.0f MiB available less %d MiB kept, %.2f MiB each",
				min(byPids, byMem), pidMax, threadsMax, inUse, pidsPer, pidReserve, avail/1024, memReserveKiB>>10, hostKiB/1024))
			break
		}
		// The peer: -before's launcher at the first size, then the first size for the others;
		// all run as systemd/credlink-vm@.service and the NixOS module run them.
		var peer *waitResult
		peerName := ""
		if out := beforeBinaries(work); out != "" && first == nil {
			b := scaleWaitingOnce(work, fake, creds, filepath.Join(out, "host-launcher"), "GOMAXPROCS=1", n)
			addWait(what+" ("+*before+")", b, nil, "")
			peer, peerName = b, *before
		}
		if first != nil {
			peer, peerName = first, thousands(first.n)
		}
		r := scaleWaitingOnce(work, fake, creds, launcher, "GOMAXPROCS=1", n)
		addWait(what, r, peer, peerName)
		if r.pidsPer > 0 {
			pidsPer = r.pidsPer
		}
		if r.hostKiB > 0 {
			hostKiB = r.hostKiB
		}
		if first == nil {
			first = r
		}
		if r.waiting < n {
			break
		}
		last = r
	}
	if last != nil {
		waitCeiling(last)
	}
}

// addWait reports a run; peer (the first size, same run) gives the ratios.
func addWait(what string, r, peer *waitResult, peerName string) {
	pss := fmt.Sprintf("%.2f MiB PSS (p90 %.2f), %.0f threads", quantile(r.pss, 0.5)/1024, quantile(r.pss, 0.9)/1024, quantile(r.threads, 0.5))
	peerCol, ratioCol := "", ""
	if peer != nil {
		peerCol = fmt.Sprintf("%.2f MiB (p90 %.2f), %.0f threads (%s, same run)", quantile(peer.pss, 0.5)/1024, quantile(peer.pss, 0.9)/1024, quantile(peer.threads, 0.5), peerName)
		ratioCol = ratio(quantile(r.pss, 0.5), quantile(peer.pss, 0.5))
	}
	rate := float64(r.started) / max(r.startWall.Seconds(), 1e-9)
	note := fmt.Sprintf("%d of %d waiting; started %d at a time in %.1f s (%.0f/s; exec → waiting %.2f s median, p90 %.2f; load %s); PSS private (anon) %.2f MiB; host MemAvailable −%.2f MiB per launcher with its stand-in (stand-in PSS %.2f MiB); %.1f pids each with the stand-in",
		r.waiting, r.n, *waitStarts, r.startWall.Seconds(), rate, quantile(r.startLat, 0.5), quantile(r.startLat, 0.9), r.loadStart,
		quantile(r.pssAnon, 0.5)/1024, r.hostKiB/1024, r.standInPSS/1024, r.pidsPer)
	if r.stopReason != "" {
		note += "; stopped starting: " + r.stopReason
	}
	add("scale", what, pss, peerCol, ratioCol, note)
	idle := fmt.Sprintf("%.1f ms CPU/s in all (%.1f µs/s each), %.2f wake-ups/s each", r.cpuPerSec*1000, r.cpuPerSec/float64(max(r.waiting, 1))*1e6, r.wakeups)
	peerIdle, ratioIdle := "", ""
	if peer != nil {
		peerIdle = fmt.Sprintf("%.1f ms/s (%.1f µs/s each), %.2f wake-ups/s each (%s)", peer.cpuPerSec*1000, peer.cpuPerSec/float64(max(peer.waiting, 1))*1e6, peer.wakeups, peerName)
		ratioIdle = ratio(r.cpuPerSec, peer.cpuPerSec)
	}
	add("scale", fmt.Sprintf("%s waiting launchers: CPU while waiting", thousands(r.waiting)), idle, peerIdle, ratioIdle,
		fmt.Sprintf("%.2f s of CPU over %v, from /proc/PID/task/*/schedstat; %.1f notifications/s to NOTIFY_SOCKET in all; load average %s; %s", r.cpuPerSec*waitIdle.Seconds(), *waitIdle, r.notifyRate, r.loadIdle, r.teardown))
}

// waitCeiling reports how many waiting launchers this host could hold, from r's measurements,
// and which limit binds: pids (kernel.pid_max, which counts threads), threads-max, or memory.
func waitCeiling(r *waitResult) {
	pidMax, threadsMax := readInt(pidMaxPath), readInt("/proc/sys/kernel/threads-max")
	base := threadsInUse() // the launchers are gone again: the rest of the machine
	mem := memAvailableKiB()
	byPidMax := float64(pidMax-base-pidReserve) / r.pidsPer
	byThreads := float64(threadsMax-base-pidReserve) / r.pidsPer
	byMem := (mem - memReserveKiB) / r.hostKiB
	bySystemd := float64(min(systemdPidMax, threadsMax)-base-pidReserve) / r.pidsPer
	binds, c := "memory", byMem
	if byPidMax < c {
		binds, c = "kernel.pid_max", byPidMax
	}
	if byThreads < c {
		binds, c = "kernel.threads-max", byThreads
	}
	note := fmt.Sprintf("%s binds: pid_max %d → %.0f, threads-max %d → %.0f (%.1f pids each with the stand-in, %d tasks in use, %d kept), %.1f GiB available less %d GiB kept → %.0f at %.2f MiB each (stand-in included)",
		binds, pidMax, byPidMax, threadsMax, byThreads, r.pidsPer, base, pidReserve, mem/(1<<20), memReserveKiB>>20, byMem, r.hostKiB/1024)
	if pidMax < systemdPidMax {
		note += fmt.Sprintf("; with systemd's pid_max %d: %.0f", systemdPidMax, min(bySystemd, byMem))
	}
	if pidMaxRaised != "" {
		note += "; " + pidMaxRaised
	}
	add("scale", "ceiling of waiting launchers here", fmt.Sprintf("~%s", thousands(int(c/100)*100)), "", "", note)
}

// restoreLeftPidMax undoes a raise a killed bench left behind.
func restoreLeftPidMax() {
	b, err := os.ReadFile(pidMaxNote)
	if err != nil {
		return
	}
	old, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err == nil && old > 0 && os.WriteFile(pidMaxPath, []byte(strconv.Itoa(old)), 0o644) == nil {
		fmt.Fprintf(os.Stderr, "bench: restored kernel.pid_max to %d, left raised by an earlier run\n", old)
		os.Remove(pidMaxNote)
	}
}

// raisePidMaxForRun raises kernel.pid_max to systemdPidMax when -raise-pid-max asks and this is
// root, and returns what restores it.
func raisePidMaxForRun() func() {
	if !*raisePidMax {
		return func() {}
	}
	old := readInt(pidMaxPath)
	switch {
	case os.Geteuid() != 0:
		fmt.Fprintln(os.Stderr, "bench: -raise-pid-max needs root; kernel.pid_max stays", old)
		return func() {}
	case old >= systemdPidMax || old <= 0:
		return func() {}
	}
	if err := os.WriteFile(pidMaxNote, []byte(strconv.Itoa(old)), 0o600); err != nil {
		fmt.Fprintln(os.Stderr, "bench: kernel.pid_max not raised:", err)
		return func() {}
	}
	if err := os.WriteFile(pidMaxPath, []byte(strconv.Itoa(systemdPidMax)), 0o644); err != nil {
		os.Remove(pidMaxNote)
		fmt.Fprintln(os.Stderr, "bench: kernel.pid_max not raised:", err)
		return func() {}
	}
	fmt.Fprintf(os.Stderr, "bench: kernel.pid_max raised from %d to %d (systemd's value) for scale-wait\n", old, systemdPidMax)
	pidMaxRaised = fmt.Sprintf("kernel.pid_max raised from %d to %d (systemd's) for this section and restored after it", old, systemdPidMax)
	var once sync.Once
	return func() {
		once.Do(func() {
			if err := os.WriteFile(pidMaxPath, []byte(strconv.Itoa(old)), 0o644); err != nil {
				fmt.Fprintf(os.Stderr, "bench: could not restore kernel.pid_max to %d: %v (note kept in %s)\n", old, err, pidMaxNote)
				return
			}
			os.Remove(pidMaxNote)
			fmt.Fprintf(os.Stderr, "bench: kernel.pid_max restored to %d\n", old)
		})
	}
}

// waitUndo kills every launcher still running (their stand-ins die with them: PDEATHSIG) and
// restores kernel.pid_max.
func waitUndo() {
	waitLive.Lock()
	defer waitLive.Unlock()
	for c := range waitLive.cmds {
		c.Process.Kill()
	}
	for c := range waitLive.cmds {
		c.Wait()
	}
	clear(waitLive.cmds)
	if waitLive.restore != nil {
		waitLive.restore()
	}
}

func readInt(p string) int {
	b, _ := os.ReadFile(p)
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return n
}

// threadsInUse counts the tasks (threads) on the host: what kernel.pid_max and threads-max count.
func threadsInUse() int {
	n := 0
	ds, _ := os.ReadDir("/proc")
	for _, d := range ds {
		if _, err := strconv.Atoi(d.Name()); err == nil {
			if ts, err := os.ReadDir("/proc/" + d.Name() + "/task"); err == nil {
				n += len(ts)
			}
		}
	}
	return n
}

func thousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// waitNotify is the NOTIFY_SOCKET every launcher of a run shares. Like systemd it learns the
// sender of each datagram from SCM_CREDENTIALS, so that a launcher's failure (whose STATUS=
// need not name its VM) is its own.
type waitNotify struct {
	path      string
	conn      *net.UnixConn
	datagrams atomic.Int64
	mu        sync.Mutex
	byPID     map[int]*waitSlot
}

// waitSlot is one launcher's start: done is closed at its first waiting or failed STATUS=.
type waitSlot struct {
	done    chan struct{}
	waiting bool
	failed  string
	at      time.Time
}

func listenWaitNotify(dir string) (*waitNotify, error) {
	p := filepath.Join(dir, "notify")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: p, Net: "unixgram"})
	if err != nil {
		return nil, err
	}
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	rc.Control(func(fd uintptr) {
		err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_PASSCRED, 1)
	})
	if err != nil {
		return nil, err
	}
	c.SetReadBuffer(4 << 20)
	n := &waitNotify{path: p, conn: c, byPID: map[int]*waitSlot{}}
	go n.loop()
	return n, nil
}

func (n *waitNotify) loop() {
	buf := make([]byte, 4096)
	oob := make([]byte, syscall.CmsgSpace(syscall.SizeofUcred))
	for {
		k, ok, _, _, err := n.conn.ReadMsgUnix(buf, oob)
		if err != nil {
			return
		}
		n.datagrams.Add(1)
		pid := 0
		if cms, err := syscall.ParseSocketControlMessage(oob[:ok]); err == nil {
			for _, cm := range cms {
				if u, err := syscall.ParseUnixCredentials(&cm); err == nil {
					pid = int(u.Pid)
				}
			}
		}
		// The launchers' messages parsed as systemd does; kept per sender (SO_PASSCRED), not
		// all of them: 10,000 launchers refreshing STATUS= would otherwise fill the bench.
		status, has := sdnotify.Parse(string(buf[:k]), time.Time{}).Fields["STATUS"]
		if !has {
			continue
		}
		n.mu.Lock()
		if s := n.byPID[pid]; s != nil && !s.waiting && s.failed == "" {
			switch {
			case strings.HasPrefix(status, "Waiting for acknowledgement from "):
				s.waiting, s.at = true, time.Now()
				close(s.done)
			case strings.HasPrefix(status, "Failed"), strings.HasPrefix(status, "Configuration error"):
				s.failed = status
				close(s.done)
			}
		}
		n.mu.Unlock()
	}
}

func (n *waitNotify) close() { n.conn.Close(); os.Remove(n.path) }

// taskStats sums, over the threads of pid, the CPU time (ns) and the times they were scheduled
// (/proc/PID/task/TID/schedstat: sum_exec_runtime, run_delay, pcount).
func taskStats(pid int) (cpuNs, switches int64) {
	dir := fmt.Sprintf("/proc/%d/task", pid)
	ts, _ := os.ReadDir(dir)
	for _, t := range ts {
		b, err := os.ReadFile(dir + "/" + t.Name() + "/schedstat")
		if err != nil {
			continue
		}
		f := strings.Fields(string(b))
		if len(f) == 3 {
			c, _ := strconv.ParseInt(f[0], 10, 64)
			s, _ := strconv.ParseInt(f[2], 10, 64)
			cpuNs += c
			switches += s
		}
	}
	return
}

// childPIDs lists the children of pid, whichever of its threads forked them.
func childPIDs(pid int) []int {
	var out []int
	ts, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	for _, t := range ts {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", pid, t.Name()))
		for _, f := range strings.Fields(string(b)) {
			if c, err := strconv.Atoi(f); err == nil {
				out = append(out, c)
			}
		}
	}
	return out
}

func smapsKiB(pid int, field string) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, field+":") {
			v, _ := strconv.ParseFloat(strings.Fields(l)[1], 64)
			return v
		}
	}
	return 0
}

// scaleWaitingOnce starts n launchers, *waitStarts at a time, each counted as started when it
// reports waiting (or failed); measures them waiting; stops them.
func scaleWaitingOnce(work, fake, creds, launcher, launcherEnv string, n int) *waitResult {
	r := &waitResult{n: n}
	dir, _ := os.MkdirTemp(work, "wait")
	notify, err := listenWaitNotify(dir)
	must(err)
	defer notify.close()
	availBefore := memAvailableKiB()

	var (
		mu      sync.Mutex
		cmds    []*exec.Cmd
		slots   []*waitSlot
		stop    atomic.Bool
		reasonM sync.Mutex
	)
	halt := func(why string) {
		reasonM.Lock()
		if r.stopReason == "" {
			r.stopReason = why
		}
		reasonM.Unlock()
		stop.Store(true)
	}
	// Memory is shared with whatever else runs here: stop starting well before it runs out.
	memDone := make(chan struct{})
	go func() {
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-memDone:
				return
			case <-t.C:
				if a := memAvailableKiB(); a > 0 && a < memReserveKiB {
					halt(fmt.Sprintf("MemAvailable fell to %.0f MiB", a/1024))
					return
				}
			}
		}
	}()
	next := make(chan int)
	var wg sync.WaitGroup
	start := time.Now()
	for range max(*waitStarts, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				rt := filepath.Join(dir, strconv.Itoa(i))
				os.Mkdir(rt, 0o700)
				c := exec.Command(launcher, "run", "--vm", fmt.Sprintf("vm%d", i), "--hypervisor", "qemu",
					"--qemu", fake, "--ack-via", "serial", "--runtime-dir", rt, "--ack-timeout", "30m", "--shutdown-timeout", "1s",
					"--credential", "API_KEY=API_KEY", "--credential", "DB_PASSWORD=DB_PASSWORD", "--credential", "JWT_SECRET=JWT_SECRET", "--", "-m", "64")
				c.Env = append(os.Environ(), "NOTIFY_SOCKET="+notify.path, "CREDENTIALS_DIRECTORY="+creds)
				if launcherEnv != "" {
					c.Env = append(c.Env, launcherEnv)
				}
				c.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
				s := &waitSlot{done: make(chan struct{})}
				t0 := time.Now()
				notify.mu.Lock() // the launcher's first STATUS= cannot arrive before its slot exists
				err := c.Start()
				if err == nil {
					notify.byPID[c.Process.Pid] = s
				}
				notify.mu.Unlock()
				if err != nil {
					halt(fmt.Sprintf("launcher %d: %v", i, err))
					continue
				}
				waitLive.Lock()
				waitLive.cmds[c] = true
				waitLive.Unlock()
				mu.Lock()
				cmds = append(cmds, c)
				slots = append(slots, s)
				mu.Unlock()
				select {
				case <-s.done:
					if s.failed != "" {
						halt(fmt.Sprintf("launcher %d: %s", i, s.failed))
					} else {
						mu.Lock()
						r.startLat = append(r.startLat, s.at.Sub(t0).Seconds())
						mu.Unlock()
					}
				case <-time.After(2 * time.Minute):
					halt(fmt.Sprintf("launcher %d: not waiting after 2 minutes", i))
				}
			}
		}()
	}
	for i := 0; i < n && !stop.Load(); i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	close(memDone)
	r.startWall = time.Since(start)
	r.loadStart = loadAvg()
	r.started = len(cmds)
	notify.mu.Lock()
	for _, s := range slots {
		if s.waiting {
			r.waiting++
		}
	}
	notify.mu.Unlock()

	time.Sleep(2 * time.Second) // start-up garbage settles, as it would while guests boot
	// CPU and notifications while nothing happens but waiting.
	cpu0, sw0 := int64(0), int64(0)
	for _, c := range cmds {
		a, b := taskStats(c.Process.Pid)
		cpu0, sw0 = cpu0+a, sw0+b
	}
	d0, t0 := notify.datagrams.Load(), time.Now()
	time.Sleep(*waitIdle)
	cpu1, sw1 := int64(0), int64(0)
	for _, c := range cmds {
		a, b := taskStats(c.Process.Pid)
		cpu1, sw1 = cpu1+a, sw1+b
	}
	window := time.Since(t0).Seconds()
	r.notifyRate = float64(notify.datagrams.Load()-d0) / window
	r.cpuPerSec = float64(cpu1-cpu0) / 1e9 / window
	r.wakeups = float64(sw1-sw0) / window / float64(max(len(cmds), 1))
	r.loadIdle = loadAvg()

	var standIn []float64
	threadsAll := 0.0
	for i, c := range cmds {
		pid := c.Process.Pid
		p := smapsKiB(pid, "Pss")
		if p == 0 {
			continue
		}
		th := procKiB(pid, "Threads")
		r.pss = append(r.pss, p)
		r.pssAnon = append(r.pssAnon, smapsKiB(pid, "Pss_Anon"))
		r.threads = append(r.threads, th)
		kids := childPIDs(pid)
		threadsAll += th + float64(len(kids))
		if i < 200 {
			for _, k := range kids {
				standIn = append(standIn, smapsKiB(k, "Pss"))
			}
		}
	}
	r.standInPSS = quantile(standIn, 0.5)
	r.pidsPer = threadsAll / float64(max(len(r.pss), 1))
	r.hostKiB = (availBefore - memAvailableKiB()) / float64(max(len(cmds), 1))

	t1 := time.Now()
	for _, c := range cmds {
		c.Process.Signal(syscall.SIGTERM)
	}
	stopped, codes := 0, map[int]int{}
	for _, c := range cmds {
		err := c.Wait()
		var ee *exec.ExitError
		switch {
		case err == nil:
			stopped++
		case errors.As(err, &ee):
			codes[ee.ExitCode()]++
		default:
			codes[-2]++
		}
		waitLive.Lock()
		delete(waitLive.cmds, c)
		waitLive.Unlock()
	}
	r.teardown = fmt.Sprintf("SIGTERM to all: %d of %d exited 0 in %.1f s", stopped, len(cmds), time.Since(t1).Seconds())
	for code, k := range codes {
		r.teardown += fmt.Sprintf(", %d with %d", k, code) // -1: a signal
	}
	return r
}
