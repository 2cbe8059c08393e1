package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/credlink/credlink/pkg/ack"
	"github.com/credlink/credlink/pkg/credential"
	"github.com/credlink/credlink/pkg/listen"
	"github.com/credlink/credlink/pkg/sdnotify"
)

// Instruction counts do not drift with the machine's load the way wall times do: valgrind's
// callgrind counts every instruction the process retires (all threads), and dumps its counters
// when a chosen function is entered. perf stat would be cheaper, but these VMs expose no PMU
// ("instructions <not supported>").
//
// Marks (callgrind --dump-before patterns; each dump holds the cost since the previous one):
const (
	markNotify = "github.com/coreos/go-systemd/v22/daemon.SdNotify"
	markAck    = "github.com/credlink/credlink/pkg/ack.WriteFrame"
	markExec   = "syscall.forkExec"
)

// noPreempt turns off the Go runtime's signal-based preemption for processes under callgrind:
// valgrind 3.19 asserts in its signal bookkeeping (threads.c:247) when SIGURG arrives while it
// delivers another. Goroutines still yield at function calls; the count changes by the handful
// of instructions preemption would have spent.
const noPreempt = "GODEBUG=asyncpreemptoff=1"

// symbolBinaries builds guest-agent and host-launcher from src with their symbol tables (what
// make build strips), so that callgrind can name functions; the code is the same.
func symbolBinaries(src, out string) string {
	cmd := exec.Command("go", "build", "-trimpath", "-o", out+"/", "./cmd/guest-agent", "./cmd/host-launcher")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		must(fmt.Errorf("build %s with symbols: %v\n%s", src, err, b))
	}
	return out
}

// beforeTree extracts git ref -before into work and returns its directory ("" without -before):
// the same measurements run on it, interleaved, as the peer "before".
func beforeTree(work string) string {
	if *before == "" {
		return ""
	}
	dir := filepath.Join(work, "before-src")
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
		return dir
	}
	must(os.MkdirAll(dir, 0o755))
	cmd := exec.Command("sh", "-c", "git archive \"$0\" | tar -x -C \"$1\"", *before, dir)
	if b, err := cmd.CombinedOutput(); err != nil {
		must(fmt.Errorf("git archive %s: %v\n%s", *before, err, b))
	}
	return dir
}

// callgrindRun is one process under callgrind: the dump files in order and what triggered each.
type callgrindRun struct {
	files    []string
	triggers []string
	costs    []int64
}

// upTo returns the instructions from exec to the first dump whose trigger contains mark (the
// cost of the dumps before it, inclusive of the one it triggered) and the files involved.
func (r callgrindRun) upTo(mark string) (int64, []string, bool) {
	var sum int64
	for i, t := range r.triggers {
		sum += r.costs[i]
		if strings.Contains(t, mark) {
			return sum, r.files[:i+1], true
		}
	}
	return 0, nil, false
}

func readCallgrind(prefix string) callgrindRun {
	files, _ := filepath.Glob(prefix + "*")
	// callgrind names them PREFIX.N (N from 1, in dump order) and PREFIX for the final one.
	num := func(f string) int {
		if n, err := strconv.Atoi(strings.TrimPrefix(filepath.Ext(f), ".")); err == nil && f != prefix {
			return n
		}
		return 1 << 30
	}
	sort.Slice(files, func(i, j int) bool { return num(files[i]) < num(files[j]) })
	var r callgrindRun
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		trigger, cost := "", int64(-1)
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			l := sc.Text()
			switch {
			case strings.HasPrefix(l, "desc: Trigger:"):
				trigger = strings.TrimSpace(strings.TrimPrefix(l, "desc: Trigger:"))
			case strings.HasPrefix(l, "summary:"), strings.HasPrefix(l, "totals:") && cost < 0:
				cost, _ = strconv.ParseInt(strings.Fields(l)[1], 10, 64)
			}
		}
		r.files, r.triggers, r.costs = append(r.files, f), append(r.triggers, trigger), append(r.costs, cost)
	}
	return r
}

// mark is a callgrind --dump-before pattern and the name of the phase that starts there; the
// instructions between one mark and the next are charged to the earlier one. An empty name
// keeps the current phase (a function called again later).
type mark struct{ pattern, phase string }

// initMarks split start-up at every package initialiser: the runtime calls them one after the
// other, so the instructions from one to the next belong to the first. Not the runtime's own:
// callgrind 3.19 crashes dumping inside runtime.init.0 or sync.init.1, and given "*.init.??" (hence "*/" and named top-level
// packages; an unnamed one is charged to the initialiser before it).
var initMarks = func() []mark {
	var ms []mark
	for _, p := range []string{"*/*", "fmt", "net", "os", "time", "syscall", "flag", "reflect", "regexp", "mime", "log", "main"} {
		ms = append(ms, mark{p + ".init", "init"}, mark{p + ".init.?", "init"})
	}
	return ms
}()

var initFunc = regexp.MustCompile(`^([^()]+)\.init(\.\d+)?$`)

// initGroup names the module whose initialiser a dump trigger names.
func initGroup(fn string) string {
	m := initFunc.FindStringSubmatch(fn)
	if m == nil {
		return ""
	}
	switch pkg := m[1]; {
	case strings.HasPrefix(pkg, "github.com/prometheus/"):
		return "init client_golang"
	case strings.HasPrefix(pkg, "google.golang.org/protobuf/"):
		return "init protobuf"
	case strings.HasPrefix(pkg, "github.com/digitalocean/go-smbios"):
		return "init go-smbios"
	case strings.HasPrefix(pkg, "runtime"), strings.HasPrefix(pkg, "internal/"):
		return "runtime"
	default:
		return "init other"
	}
}

// phases charges each dump to the phase of the trigger before it, up to and including the dump
// triggered by stop, and returns "phase N M, …" in first-seen order.
func phases(r callgrindRun, marks []mark, stop string) string {
	cur := "runtime"
	sums := map[string]int64{}
	var order []string
	for i, t := range r.triggers {
		if _, ok := sums[cur]; !ok {
			order = append(order, cur)
		}
		sums[cur] += r.costs[i]
		if strings.Contains(t, stop) {
			break
		}
		fn := strings.TrimPrefix(t, "--dump-before=")
		if g := initGroup(fn); g != "" {
			cur = g
			continue
		}
		for _, m := range marks {
			if m.phase != "" && wildcard(m.pattern, fn) {
				cur = m.phase
				break
			}
		}
	}
	var out []string
	for _, p := range order {
		if sums[p] >= 5000 {
			out = append(out, fmt.Sprintf("%s %s", p, mi(sums[p])))
		}
	}
	return strings.Join(out, ", ")
}

func mi(n int64) string { return fmt.Sprintf("%.2f M", float64(n)/1e6) }

func callgrindArgs(prefix string, marks []mark) []string {
	args := []string{"--tool=callgrind", "--callgrind-out-file=" + prefix}
	for _, m := range append(slices.Clone(initMarks), marks...) {
		args = append(args, "--dump-before="+m.pattern)
	}
	return args
}

const cred = "github.com/credlink/credlink/pkg/"

// agentMarks follow guest-agent's start-up; the order they fire in is the order it does things.
var agentMarks = []mark{
	{"main.main", "main (flags, logger)"},
	{cred + "manifest.Load", "manifest"},
	{cred + "metrics.NewAgent", "metrics setup"},
	{cred + "metrics.Registry", "metrics setup"},
	// (callgrind 3.19 never fired "agent.(*Options).Read" among these patterns; the sources'
	// value-receiver methods it does.)
	{cred + "sources.SMBIOS.Read", "sysfs reads"},
	{cred + "sources.FwCfg.Read", "sysfs reads"},
	{cred + "sources.Dir.Read", "sysfs reads"},
	{cred + "verify.Verify", "verification"},
	{"log/slog.(*Logger).log", "logging"},
	{markNotify, "notify"},
	{cred + "agent.(*daemon).report", "report (MACs)"},
	{cred + "ack.(*Client).Exchange", "exchange"},
	{markAck, ""},
}

// agentInstructions runs guest-agent under callgrind with n credentials (plus credlink.ack and
// credlink.key), acknowledging to an ack.Server in this process, and returns the instructions
// to READY=1 and to the first byte of the acknowledgement, and the breakdown up to that byte.
func agentInstructions(work, bin string, n int) (toReady, toAck int64, detail string) {
	dir, _ := os.MkdirTemp(work, "cg")
	key := make([]byte, ack.KeySize)
	rand.Read(key)
	sock := filepath.Join(dir, "ack.sock")
	l, err := listen.Unix(sock)
	must(err)
	sys, manifest, sent := guestTreeAck(dir, n, "unix:"+sock, key)
	accepted := make(chan struct{}, 1)
	srv := &ack.Server{Key: key, Sent: sent, OnResult: func(r ack.Result) {
		if r.Accepted {
			accepted <- struct{}{}
		}
	}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go srv.Serve(ctx, l)
	notify, err := sdnotify.Listen(dir)
	must(err)
	defer notify.Close()
	prefix := filepath.Join(dir, "callgrind.out")
	cmd := exec.Command("valgrind", append(callgrindArgs(prefix, agentMarks),
		filepath.Join(bin, "guest-agent"), "run", "--source", "smbios", "--sysfs", sys, "--manifest", manifest)...)
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+notify.Path, noPreempt)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	must(cmd.Start())
	select {
	case <-accepted:
	case <-time.After(2 * time.Minute):
		cmd.Process.Kill()
		cmd.Wait()
		os.WriteFile(filepath.Join(dir, "stderr"), stderr.Bytes(), 0o600)
		must(fmt.Errorf("guest-agent under callgrind did not acknowledge (valgrind output: %s/stderr): %s", dir, lastLine(stderr.String())))
	}
	if _, err := notify.Wait(time.Minute, sdnotify.Has("READY", "1")); err != nil {
		must(fmt.Errorf("guest-agent under callgrind: no READY=1: %w", err))
	}
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
	r := readCallgrind(prefix)
	toReady, _, okR := r.upTo(markNotify)
	toAck, _, okA := r.upTo(markAck)
	if !okR || !okA {
		must(fmt.Errorf("callgrind marks missing (dumps triggered by %q)", r.triggers))
	}
	return toReady, toAck, phases(r, agentMarks, markAck)
}

var launcherMarks = []mark{
	{"main.main", "main (flags)"},
	{cred + "launch.(*Config).loadCredentials", "credentials dir"},
	{cred + "credential.Encode", "encode"},
	{cred + "launch.Run", "launch"},
	{markExec, ""},
}

// launcherInstructions runs host-launcher under callgrind up to its exec of QEMU (a stand-in
// that exits at once: the launcher then stops with exit status 3, after the measured part).
func launcherInstructions(work, bin string) (int64, string) {
	dir, _ := os.MkdirTemp(work, "cgl")
	creds := filepath.Join(dir, "creds")
	os.Mkdir(creds, 0o700)
	for name, n := range map[string]int{"API_KEY": 33, "DB_PASSWORD": 33, "JWT_SECRET": 66} {
		raw := make([]byte, n)
		rand.Read(raw)
		os.WriteFile(filepath.Join(creds, name), []byte(base64.StdEncoding.EncodeToString(raw)), 0o400)
	}
	prefix := filepath.Join(dir, "callgrind.out")
	cmd := exec.Command("valgrind", append(callgrindArgs(prefix, launcherMarks),
		filepath.Join(bin, "host-launcher"), "run", "--vm", "bench", "--hypervisor", "qemu", "--qemu", "/bin/true", "--ack-via", "serial",
		"--runtime-dir", dir, "--shutdown-timeout", "1s",
		"--credential", "API_KEY=API_KEY", "--credential", "DB_PASSWORD=DB_PASSWORD", "--credential", "JWT_SECRET=JWT_SECRET",
		"--set", "ENVIRONMENT=bench", "--set", "CLUSTER=local", "--", "-machine", "q35", "-m", "256")...)
	cmd.Env = append(os.Environ(), "CREDENTIALS_DIRECTORY="+creds, noPreempt)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Run()
	r := readCallgrind(prefix)
	n, _, ok := r.upTo(markExec)
	if !ok {
		must(fmt.Errorf("host-launcher under callgrind never exec'd QEMU: %s", lastLine(stderr.String())))
	}
	return n, phases(r, launcherMarks, markExec)
}

// guestTreeAck is guestTree with the launcher's control credentials first, as host-launcher
// orders them, then n credentials (shortened a little more than guestTree's so that 253 and
// the two control credentials fit one Type 11 structure).
func guestTreeAck(dir string, n int, addr string, key []byte) (sys, manifest string, sent []credential.Credential) {
	size := 33
	if n > 200 {
		size = 10
	}
	control := []credential.Credential{
		{Name: "credlink.ack", Value: credential.NewValue([]byte(addr))},
		{Name: "credlink.key", Value: credential.NewValue(key)},
	}
	return writeGuestTree(dir, n, size, control)
}

func instructions(work string) {
	if _, err := exec.LookPath("valgrind"); err != nil {
		add("instr", "instruction counts", "skipped", "", "", "valgrind not installed")
		return
	}
	bin := symbolBinaries(".", filepath.Join(work, "sym"))
	var binBefore string
	if src := beforeTree(work); src != "" {
		binBefore = symbolBinaries(src, filepath.Join(work, "sym-before"))
	}
	peer := func(n int64) (string, string) { return "", "" }
	vs := func(after, before int64) (string, string) {
		return mi(before), fmt.Sprintf("%.2f×", float64(after)/float64(before))
	}
	// 253 credentials and the two control credentials fill one Type 11 structure (255 strings).
	for _, n := range []int{5, 253} {
		ready, first, detail := agentInstructions(work, bin, n)
		var readyB, firstB int64
		detailB := ""
		if binBefore != "" {
			readyB, firstB, detailB = agentInstructions(work, binBefore, n)
		}
		p, r := peer(0)
		if binBefore != "" {
			p, r = vs(ready, readyB)
		}
		add("instr", fmt.Sprintf("agent exec → READY=1, %d credentials", n), mi(ready), p, r, "")
		if binBefore != "" {
			p, r = vs(first, firstB)
			detail += "; before: " + detailB
		}
		add("instr", fmt.Sprintf("agent exec → first ack byte, %d credentials", n), mi(first), p, r, detail)
	}
	n, detail := launcherInstructions(work, bin)
	p, r := peer(0)
	if binBefore != "" {
		nb, detailB := launcherInstructions(work, binBefore)
		p, r = vs(n, nb)
		detail += "; before: " + detailB
	}
	add("instr", "launcher exec → QEMU exec, 5 credentials", mi(n), p, r, detail)
}

// wildcard matches callgrind's patterns: '*' any run, '?' one character.
func wildcard(pattern, s string) bool {
	re := "^" + strings.NewReplacer(`\*`, ".*", `\?`, ".").Replace(regexp.QuoteMeta(pattern)) + "$"
	return regexp.MustCompile(re).MatchString(s)
}
