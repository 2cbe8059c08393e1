package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/credlink/credlink/pkg/launch"
	"github.com/credlink/credlink/pkg/testkit"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestMain(m *testing.M) { testkit.Main(m) }

// launcherBin is host-launcher built once for this test process (with guest-agent beside it,
// where the demo looks for it), with this test's -race setting.
func launcherBin(t testing.TB) string { return testkit.Bin(t, "host-launcher", "guest-agent") }

const secretA = "launcher-cli-secret-AAAAAAAAAAAAAAAAAAAAAAAA" // 44 bytes
const secretB = "second,secret=with-commas-and-\x01-control"

type fixture struct {
	dir, creds, manifest string
}

func newFixture(t *testing.T) fixture {
	d, err := os.MkdirTemp("", "hl")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	f := fixture{dir: d, creds: filepath.Join(d, "creds"), manifest: filepath.Join(d, "m.json")}
	os.Mkdir(f.creds, 0o700)
	os.WriteFile(filepath.Join(f.creds, "api"), []byte(secretA), 0o400)
	os.WriteFile(filepath.Join(f.creds, "db"), []byte(secretB), 0o400)
	os.WriteFile(filepath.Join(f.creds, "empty"), nil, 0o400)
	os.WriteFile(filepath.Join(f.creds, "big"), bytes.Repeat([]byte("b"), 40000), 0o400)
	os.WriteFile(f.manifest, []byte(`{"credentials": {"API_KEY": {"bytes": 44}, "DB_PASSWORD": {"min_bytes": 8}}}`), 0o600)
	return f
}

// leaks searches output for any form of the secrets.
var leaks = testkit.NewSecrets(map[string]string{"secretA": secretA, "secretB": secretB})

func launcher(t *testing.T, env []string, args ...string) (string, string, int) {
	t.Helper()
	r := testkit.Run(t, 60*time.Second, env, launcherBin(t), args...)
	leaks.CheckString(t, "stdout", r.Stdout)
	leaks.CheckString(t, "stderr", r.Stderr)
	return r.Stdout, r.Stderr, r.Code
}

func TestOptionErrors(t *testing.T) {
	f := newFixture(t)
	env := []string{"CREDENTIALS_DIRECTORY=" + f.creds}
	base := []string{"--vm", "web", "--hypervisor", "qemu", "--credential", "API_KEY=api"}
	qemu := []string{"--", "-machine", "q35"}
	args := func(extra ...string) []string {
		a := append([]string{"plan"}, base...)
		return append(a, extra...)
	}
	vmcfg := filepath.Join(f.dir, "vm.json")
	os.WriteFile(vmcfg, []byte(`{"payload": {"kernel": "/vm/vmlinux"}}`), 0o600)
	tests := []struct {
		name string
		args []string
		env  []string
		err  string
	}{
		{"256 credentials on cloud-hypervisor", append([]string{"plan", "--vm", "x", "--hypervisor", "cloud-hypervisor", "--vm-config", vmcfg}, manySets(253)...), env,
			`credential "S252": SMBIOS budget exceeded: it is OEM string 256, but one Type 11 structure holds 255 and this delivery (cloud-hypervisor) builds only 1`},
		{"no command", nil, env, "host-launcher: a command is required"},
		{"unknown command", []string{"launch"}, env, `unknown command "launch"`},
		{"missing vm", []string{"plan", "--hypervisor", "qemu", "--", "-M", "q35"}, env, "configuration error: --vm NAME is required"},
		{"bad hypervisor", []string{"plan", "--vm", "x", "--hypervisor", "xen"}, env, "--hypervisor must be " + hypervisorList() + `, not "xen"`},
		{"bad spec", args("--credential", "NOVALUE", "--"), env, `--credential "NOVALUE": want NAME=ID`},
		{"bad name", args("--credential", "a/b=api", "--"), env, "--credential: invalid credential name: '/' at byte 1"},
		{"bad set", args("--set", "a:b=1", "--"), env, "--set: invalid credential name: ':' at byte 1"},
		{"missing file", args(append([]string{"--credential", "DB=nope"}, qemu...)...), env, `credential "DB": ` + f.creds + "/nope: stat: no such file or directory"},
		{"relative without dir", args(qemu...), nil, `credential "API_KEY": "api" is not an absolute path and $CREDENTIALS_DIRECTORY is not set`},
		{"slash in id", args(append([]string{"--credential", "DB=../db"}, qemu...)...), env, `credential "DB": ID "../db" must be a plain file name in $CREDENTIALS_DIRECTORY`},
		{"duplicate", args(append([]string{"--credential", "API_KEY=db"}, qemu...)...), env, `credential "API_KEY" given twice or reserved by credlink`},
		{"reserved", args(append([]string{"--credential", "credlink.key=db"}, qemu...)...), env, `credential "credlink.key" given twice or reserved by credlink`},
		{"empty secret vs manifest", args(append([]string{"--credential", "DB_PASSWORD=empty", "--manifest", f.manifest}, qemu...)...), env,
			"host-side credentials do not match the manifest: DB_PASSWORD wrong_length (0 bytes, want at least 8)"},
		{"budget", args(append([]string{"--credential", "B1=big", "--credential", "B2=" + f.creds + "/big"}, qemu...)...), env,
			`credential "B2": SMBIOS budget exceeded: its 40025-byte OEM string brings the SMBIOS table to`},
		{"systemd 252 page", args(append([]string{"--guest-systemd", "252", "--credential", "B1=big"}, qemu...)...), env,
			`credential "B1": SMBIOS budget exceeded: its 40025-byte OEM string does not fit in the first 4096 bytes of a Type 11 entry, all that systemd before 257 reads`},
		{"wait-guest-boot with systemd 252", args(append([]string{"--guest-systemd", "252", "--wait-guest-boot"}, qemu...)...), env,
			"--wait-guest-boot needs a guest whose systemd sends READY=1 to vmm.notify_socket (254 and newer); --guest-systemd 252 never would"},
		{"all-credentials on an empty directory", []string{"plan", "--vm", "x", "--hypervisor", "qemu", "--all-credentials", "--", "-M", "q35"}, []string{"CREDENTIALS_DIRECTORY=" + t.TempDir()},
			"--all-credentials: $CREDENTIALS_DIRECTORY"},
		{"bad smbios-delivery", args(append([]string{"--smbios-delivery", "floppy"}, qemu...)...), env, `--smbios-delivery must be file or path, not "floppy"`},
		{"256 credentials through path=", args(append(manySets(256), append([]string{"--smbios-delivery", "path"}, qemu...)...)...), env,
			`credential "S251": SMBIOS budget exceeded: it is OEM string 256, but one Type 11 structure holds 255 and this delivery (QEMU -smbios type=11,path=) builds only 1`},
		{"microvm", args("--", "-M", "microvm"), env, "qemu -M microvm builds no SMBIOS tables"},
		{"machine type microvm", args("--", "-machine", "type=microvm,accel=tcg"), env, "qemu -M microvm builds no SMBIOS tables"},
		{"credential in argv", args("--", "-append", "io.systemd.credential:X=y"), env, "qemu argv already contains a systemd credential (argument 2)"},
		{"smbios 11 path", args("--", "-smbios", "type=11,path=/tmp/x"), env, "qemu argv already has -smbios type=11 (argument 2)"},
		{"fw_cfg", args("--", "-fw_cfg", "name=opt/io.systemd.credentials/X,file=/tmp/x"), env, "qemu argv passes credentials through fw_cfg (argument 2)"},
		{"no qemu argv", args(), env, "qemu needs its arguments after --"},
		{"argv for local", []string{"plan", "--vm", "x", "--hypervisor", "local", "--", "-M", "q35"}, env, "arguments after -- are only for --hypervisor cloud-hypervisor or qemu"},
		{"bad on-failure", args(append([]string{"--on-failure", "retry"}, qemu...)...), env, `--on-failure must be stop or ready-anyway, not "retry"`},
		{"bad ack-via", args(append([]string{"--ack-via", "carrier-pigeon"}, qemu...)...), env, `--ack-via must be auto, vsock or serial, not "carrier-pigeon"`},
		{"ch without config", []string{"plan", "--vm", "x", "--hypervisor", "cloud-hypervisor"}, env, "cloud-hypervisor needs --vm-config FILE"},
		{"api proxy for qemu", args(append([]string{"--api-proxy", "/tmp/x.sock"}, qemu...)...), env, "--api-proxy is for --hypervisor cloud-hypervisor"},
		{"local without manifest", []string{"plan", "--vm", "x", "--hypervisor", "local", "--agent", "/bin/true"}, env, "local mode needs --manifest"},
		{"unknown flag", []string{"run", "--frobnicate"}, env, "flag provided but not defined: -frobnicate"},
		{"vm name with a newline", []string{"plan", "--vm", "a\nb", "--hypervisor", "qemu", "--credential", "API_KEY=api", "--", "-M", "q35"}, env, `--vm: byte 1 ('\n') is not allowed in a VM name`},
		{"vm name of 300 bytes", []string{"plan", "--vm", strings.Repeat("v", 300), "--hypervisor", "qemu", "--credential", "API_KEY=api", "--", "-M", "q35"}, env, "--vm: a VM name is 1 to 64 bytes long, not 300"},
		{"vm name with a slash", []string{"plan", "--vm", "a/b", "--hypervisor", "qemu", "--credential", "API_KEY=api", "--", "-M", "q35"}, env, `byte 1 ('/') is not allowed`},
		{"vm name starting with a dash", []string{"plan", "--vm", "-x", "--hypervisor", "qemu", "--credential", "API_KEY=api", "--", "-M", "q35"}, env, `must not start with '-'`},
		{"ack-timeout 0", args(append([]string{"--ack-timeout", "0"}, qemu...)...), env, "--ack-timeout and --shutdown-timeout must be positive"},
		{"ack-timeout negative", args(append([]string{"--ack-timeout", "-5s"}, qemu...)...), env, "--ack-timeout and --shutdown-timeout must be positive"},
		{"ack-timeout 1ns", args(append([]string{"--ack-timeout", "1ns"}, qemu...)...), env, "--ack-timeout must be at least 100ms"},
		{"shutdown-timeout -1s", args(append([]string{"--shutdown-timeout", "-1s"}, qemu...)...), env, "--ack-timeout and --shutdown-timeout must be positive"},
		{"guest-cid 2 (host)", args(append([]string{"--guest-cid", "2"}, qemu...)...), env, "--guest-cid: a guest CID is from 3 to 4294967294"},
		{"guest-cid 1", args(append([]string{"--guest-cid", "1"}, qemu...)...), env, "--guest-cid: a guest CID is from 3"},
		{"guest-cid 0 given", args(append([]string{"--guest-cid", "0"}, qemu...)...), env, "--guest-cid: a guest CID is from 3"},
		{"guest-cid VMADDR_CID_ANY", args(append([]string{"--guest-cid", "4294967295"}, qemu...)...), env, "not 4294967295"},
		{"guest-cid 2^32", args(append([]string{"--guest-cid", "4294967296"}, qemu...)...), env, "not 4294967296"},
		{"guest-systemd 251", args(append([]string{"--guest-systemd", "251"}, qemu...)...), env, "--guest-systemd 251: systemd imports credentials from SMBIOS Type 11 only from 252 on"},
		{"guest-systemd negative", args(append([]string{"--guest-systemd", "-1"}, qemu...)...), env, "--guest-systemd -1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, stderr, code := launcher(t, tt.env, tt.args...)
			if code != 2 || !strings.Contains(stderr, tt.err) {
				t.Errorf("exit %d, stderr:\n%s\nwant exit 2 and %q", code, stderr, tt.err)
			}
		})
	}
}

// manySets is n --set S000=v … arguments.
func manySets(n int) []string {
	var out []string
	for i := range n {
		out = append(out, "--set", fmt.Sprintf("S%03d=v", i))
	}
	return out
}

// hypervisorList is "a, b or c" over pkg/launch's registry, so a new hypervisor needs no edit here.
func hypervisorList() string {
	n := launch.HypervisorNames()
	return strings.Join(n[:len(n)-1], ", ") + " or " + n[len(n)-1]
}

var volatile = []*regexp.Regexp{
	regexp.MustCompile(`/tmp/hl[0-9]+`),
	regexp.MustCompile(`credlink-web-[0-9]+`),
	regexp.MustCompile(`guest-cid=[0-9]+`),
	regexp.MustCompile(`vsock:2:[0-9]+`),
	regexp.MustCompile(`"cid": [0-9]+`),
	regexp.MustCompile(`/[^ ]*credlink-testbin-[0-9]+`), // testkit.Bin's directory
	// The ack path's length varies with the temporary directory's name.
	regexp.MustCompile(`credlink\.ack(=\[redacted | \()[0-9]+ bytes`),
	regexp.MustCompile(`[0-9]+-byte Type 11 structure`),
	// Structure sizes vary with the ack path's length.
	regexp.MustCompile(`strings, [0-9+]+ bytes`),
}

func normalize(s string) string {
	for i, re := range volatile {
		s = re.ReplaceAllString(s, fmt.Sprintf("<V%d>", i))
	}
	return s
}

// TestPlanGolden: each hypervisor's invocation, with every secret redacted.
func TestPlanGolden(t *testing.T) {
	f := newFixture(t)
	env := []string{"CREDENTIALS_DIRECTORY=" + f.creds}
	vmcfg := filepath.Join(f.dir, "vm.json")
	os.WriteFile(vmcfg, []byte(`{"payload": {"kernel": "/vm/vmlinux"}, "memory": {"size": 268435456}}`), 0o600)
	common := []string{"--vm", "web", "--runtime-dir", f.dir, "--credential", "API_KEY=api", "--credential", "DB_PASSWORD=db", "--set", "ENVIRONMENT=prod", "--manifest", f.manifest}
	cases := map[string][]string{
		"qemu-serial":      append(append([]string{"plan", "--hypervisor", "qemu", "--ack-via", "serial"}, common...), "--", "-machine", "q35", "-m", "256"),
		"qemu-path":        append(append([]string{"plan", "--hypervisor", "qemu", "--ack-via", "serial", "--smbios-delivery", "path"}, common...), "--", "-machine", "q35", "-m", "256"),
		"qemu-300":         append(append(append([]string{"plan", "--hypervisor", "qemu", "--ack-via", "serial", "--vm", "web", "--runtime-dir", f.dir}, manySets(300)...), "--"), "-machine", "q35"),
		"cloud-hypervisor": append([]string{"plan", "--hypervisor", "cloud-hypervisor", "--vm-config", vmcfg}, common...),
		"local":            append([]string{"plan", "--hypervisor", "local", "--agent", testkit.Bin(t, "guest-agent")}, common...),
	}
	for name, args := range cases {
		t.Run(name, func(t *testing.T) {
			out, stderr, code := launcher(t, env, args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			got := normalize(out)
			golden := filepath.Join("testdata", "plan-"+name+".golden")
			if *update {
				os.WriteFile(golden, []byte(got), 0o644)
			}
			want, _ := os.ReadFile(golden)
			if got != string(want) {
				t.Errorf("plan differs from %s:\n%s", golden, got)
			}
			if left, _ := filepath.Glob(filepath.Join(f.dir, "credlink-*")); len(left) > 0 {
				t.Errorf("plan left %v behind", left)
			}
		})
	}
}

// TestDemo runs the README's main job.
func TestDemo(t *testing.T) {
	start := time.Now()
	out, stderr, code := launcher(t, nil, "demo")
	if code != 0 {
		t.Fatalf("demo exit %d\n%s\n%s", code, out, stderr)
	}
	for _, want := range []string{"5/5 credentials delivered byte-exact", "API_KEY      44", "JWT_SECRET   88", "credlink_verification_success 1", "READY=1 with \"STATUS=Ready: 5/5 credentials delivered byte-exact\""} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
	t.Logf("demo took %v", time.Since(start))
}

// TestNonDumpable: run as an unprivileged user, the launcher's /proc entries belong to root,
// which is how Linux shows a non-dumpable process: other processes of that user cannot read
// its memory or environment.
func TestNonDumpable(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to run the launcher as another user")
	}
	f := newFixture(t)
	os.Chmod(f.dir, 0o755)
	os.Chmod(f.creds, 0o755)
	for _, n := range []string{"api", "db"} {
		os.Chmod(filepath.Join(f.creds, n), 0o444)
	}
	os.Chmod(f.manifest, 0o644)
	bin := launcherBin(t)
	os.Chmod(filepath.Dir(bin), 0o755)
	rt := filepath.Join(f.dir, "rt")
	os.Mkdir(rt, 0o700)
	os.Chmod(rt, 0o777) // past the umask
	// A "guest" that never acknowledges keeps the launcher waiting, secrets in hand.
	guest := filepath.Join(f.dir, "guest")
	os.WriteFile(guest, []byte("#!/bin/sh\nexec sleep 30\n"), 0o755)
	cmd := exec.Command(bin, "run", "--vm", "web", "--hypervisor", "local", "--runtime-dir", rt,
		"--credential", "API_KEY=api", "--credential", "DB_PASSWORD=db", "--manifest", f.manifest, "--agent", guest, "--ack-timeout", "20s")
	cmd.Env = append(os.Environ(), "CREDENTIALS_DIRECTORY="+f.creds)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	var se testkit.SyncBuffer
	cmd.Stderr = &se
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	// The launcher hardens itself before it reads a credential, so by its "starting" line it
	// holds secrets and must be non-dumpable.
	if err := se.WaitForText(30*time.Second, `msg=starting`); err != nil {
		t.Fatalf("%v\n%s", err, se.String())
	}
	var st syscall.Stat_t
	if err := syscall.Stat(fmt.Sprintf("/proc/%d/environ", cmd.Process.Pid), &st); err != nil {
		t.Fatal(err)
	}
	if st.Uid != 0 {
		t.Errorf("/proc/PID/environ owned by uid %d: the launcher is dumpable\n%s", st.Uid, se.String())
	}
	// An exited launcher's /proc entries prove nothing: it must still have been waiting.
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", cmd.Process.Pid)); err != nil || strings.Contains(string(b), ") Z ") {
		t.Errorf("the launcher had exited (%v):\n%s", err, se.String())
	}
}

// hangingAgent is a guest-agent stand-in that never acknowledges, so a launch stays up until
// the test signals it.
func hangingAgent(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "hanging-agent")
	if err := os.WriteFile(p, []byte("#!/bin/sh\nexec sleep 60\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// waitForFile polls until a path matching glob, other than those in not, exists (the process
// under test creates it).
func waitForFile(t *testing.T, glob string, not ...string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		m, _ := filepath.Glob(glob)
		for _, p := range m {
			if !slices.Contains(not, p) {
				return p
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("%s never appeared", glob)
	return ""
}

// leftovers lists every file under dir.
func leftovers(dir string) []string {
	var out []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			out = append(out, p)
		}
		return nil
	})
	return out
}

// The demo generates real-looking secrets: SIGTERM or SIGINT must not leave them behind, and
// what a SIGKILL leaves is removed by the next run.
func TestDemoLeavesNoSecrets(t *testing.T) {
	agent := hangingAgent(t)
	// A short TMPDIR: the demo's sockets must fit in sun_path.
	shortTemp := func(t *testing.T) string {
		d, err := os.MkdirTemp("", "hd")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(d) })
		return d
	}
	start := func(tmp string, not ...string) (*exec.Cmd, string) {
		cmd := exec.Command(launcherBin(t), "demo", "--agent", agent)
		cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		p := waitForFile(t, filepath.Join(tmp, "credlink-demo-*", "credentials", "JWT_SECRET"), not...)
		waitForFile(t, filepath.Join(filepath.Dir(filepath.Dir(p)), "credlink-demo-*", "ack.sock")) // running
		return cmd, p
	}
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT} {
		t.Run(sig.String(), func(t *testing.T) {
			tmp := shortTemp(t)
			cmd, _ := start(tmp)
			cmd.Process.Signal(sig)
			cmd.Wait()
			if left := leftovers(tmp); len(left) > 0 {
				t.Errorf("demo left after %v: %v", sig, left)
			}
		})
	}
	t.Run("SIGKILL then next run", func(t *testing.T) {
		tmp := shortTemp(t)
		cmd, first := start(tmp)
		cmd.Process.Kill()
		cmd.Wait()
		if len(leftovers(tmp)) == 0 {
			t.Fatal("nothing left after SIGKILL: the test does not test the sweep")
		}
		next, _ := start(tmp, first) // the next run sweeps at start
		next.Process.Signal(syscall.SIGTERM)
		next.Wait()
		if left := leftovers(tmp); len(left) > 0 {
			t.Errorf("the killed demo's files survived the next run: %v", left)
		}
	})
}

// Local mode writes a firmware table with every credential in it: a launcher killed with
// SIGKILL cannot remove it, so the next launch in the same runtime directory does.
func TestKilledLocalLaunchLeavesNoSecrets(t *testing.T) {
	f := newFixture(t)
	rt := filepath.Join(f.dir, "rt")
	os.Mkdir(rt, 0o700)
	args := []string{"--vm", "web", "--hypervisor", "local", "--runtime-dir", rt, "--credential", "API_KEY=api",
		"--credential", "DB_PASSWORD=db", "--manifest", f.manifest, "--agent", hangingAgent(t)}
	cmd := exec.Command(launcherBin(t), append([]string{"run"}, args...)...)
	cmd.Env = append(os.Environ(), "CREDENTIALS_DIRECTORY="+f.creds)
	var se bytes.Buffer
	cmd.Stderr = &se
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("launcher stderr:\n%s", se.String())
		}
	})
	raw := waitForFile(t, filepath.Join(rt, "credlink-web-*", "sys", "firmware", "dmi", "entries", "11-0", "raw"))
	time.Sleep(50 * time.Millisecond) // let the write finish
	cmd.Process.Kill()
	cmd.Wait()
	if b, _ := os.ReadFile(raw); !bytes.Contains(b, []byte(secretA)) {
		t.Fatal("the killed launch left no table with the secret: the test does not test the sweep")
	}
	if _, stderr, code := launcher(t, []string{"CREDENTIALS_DIRECTORY=" + f.creds}, append([]string{"plan"}, args...)...); code != 0 {
		t.Fatalf("plan: exit %d\n%s", code, stderr)
	}
	if left := leftovers(rt); len(left) > 0 {
		t.Errorf("the killed launch's files survived the next one: %v", left)
	}
}

// TestLocalLaunchStopSignals: every stop signal (SIGHUP and SIGQUIT too) ends a local-mode run
// cleanly, exit 0, with the firmware table holding every credential removed and no goroutine
// dump on stderr.
func TestLocalLaunchStopSignals(t *testing.T) {
	f := newFixture(t)
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT} {
		t.Run(sig.String(), func(t *testing.T) {
			rt, err := os.MkdirTemp("", "hs")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.RemoveAll(rt) })
			cmd := exec.Command(launcherBin(t), "run", "--vm", "web", "--hypervisor", "local", "--runtime-dir", rt,
				"--credential", "API_KEY=api", "--credential", "DB_PASSWORD=db", "--manifest", f.manifest, "--agent", hangingAgent(t))
			cmd.Env = append(os.Environ(), "CREDENTIALS_DIRECTORY="+f.creds)
			var se bytes.Buffer
			cmd.Stderr = &se
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			waitForFile(t, filepath.Join(rt, "credlink-web-*", "sys", "firmware", "dmi", "entries", "11-0", "raw"))
			cmd.Process.Signal(sig)
			err = cmd.Wait()
			if code := cmd.ProcessState.ExitCode(); code != 0 {
				t.Errorf("exit %d after %v (%v), want 0:\n%s", code, sig, err, se.String())
			}
			if strings.Contains(se.String(), "goroutine ") {
				t.Errorf("goroutine dump after %v:\n%s", sig, se.String())
			}
			if left := leftovers(rt); len(left) > 0 {
				t.Errorf("left after %v: %v", sig, left)
			}
		})
	}
}

// script writes an executable shell script into dir.
func script(t *testing.T, dir, name, body string) string {
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestExitCodeContract: every failure class ends with the documented exit status — 0 clean
// stop, 1 delivery not verified, 2 configuration (including an unusable runtime directory),
// 3 the hypervisor failed.
func TestExitCodeContract(t *testing.T) {
	f := newFixture(t)
	env := []string{"CREDENTIALS_DIRECTORY=" + f.creds}
	bin := t.TempDir()
	hanging := script(t, bin, "hanging", "exec sleep 60")
	crashing := script(t, bin, "crashing", "exit 7")
	wrongManifest := filepath.Join(f.dir, "wrong.json")
	os.WriteFile(wrongManifest, []byte(`{"credentials": {"API_KEY": {"bytes": 45}, "DB_PASSWORD": {"min_bytes": 8}}}`), 0o600)
	vmcfg := filepath.Join(f.dir, "vm.json")
	os.WriteFile(vmcfg, []byte(`{"payload": {"kernel": "/vm/vmlinux"}}`), 0o600)
	rt := func() string { d, _ := os.MkdirTemp(f.dir, "rt"); return d }
	local := func(runtime string, extra ...string) []string {
		return append([]string{"run", "--vm", "web", "--hypervisor", "local", "--runtime-dir", runtime,
			"--credential", "API_KEY=api", "--credential", "DB_PASSWORD=db", "--manifest", f.manifest}, extra...)
	}
	long := filepath.Join(f.dir, strings.Repeat("d", 100))
	os.Mkdir(long, 0o700)
	fifo := filepath.Join(f.creds, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(fifo)

	tests := []struct {
		name   string
		args   []string
		signal string // glob that appears once the state to interrupt is reached; SIGTERM then
		want   int
		stderr string
	}{
		{"unknown flag", []string{"run", "--frobnicate"}, "", 2, "flag provided but not defined"},
		{"missing credential file", local(rt(), "--credential", "X=nope", "--agent", hanging), "", 2, "no such file"},
		{"missing runtime directory", local(filepath.Join(f.dir, "does-not-exist"), "--agent", hanging), "", 2, "configuration error"},
		{"runtime directory too long for a socket", local(long, "--agent", hanging), "", 2, "socket path too long"},
		{"guest rejects (wrong length)", local(rt(), "--agent", testkit.Bin(t, "guest-agent"), "--agent-manifest", wrongManifest, "--ack-timeout", "20s"), "", 1, "wrong_length"},
		{"no acknowledgement in time", local(rt(), "--agent", hanging, "--ack-timeout", "300ms"), "", 1, "no acknowledgement within 300ms"},
		{"hypervisor crashes", local(rt(), "--agent", crashing), "", 3, "exited before"},
		{"hypervisor binary missing", local(rt(), "--agent", filepath.Join(bin, "nope")), "", 3, "start guest-agent"},
		{"SIGTERM while waiting for the ack", local(rt(), "--agent", hanging), "ack.sock", 0, ""},
		// A FIFO used to block open(2) forever, SIGTERM or not; it is refused at once now.
		{"credential is a FIFO (by ID)", local(rt(), "--credential", "PIPE=fifo", "--agent", hanging), "", 2, "not a regular file"},
		{"credential is a FIFO (absolute path)", local(rt(), "--credential", "PIPE="+fifo, "--agent", hanging), "", 2, "not a regular file"},
		{"manifest is a FIFO", []string{"run", "--vm", "web", "--hypervisor", "local", "--runtime-dir", rt(), "--credential", "API_KEY=api",
			"--manifest", fifo, "--agent", hanging}, "", 2, "not a regular file"},
		{"--vm-config is a FIFO", []string{"run", "--vm", "web", "--hypervisor", "cloud-hypervisor", "--vm-config", fifo,
			"--runtime-dir", rt(), "--credential", "API_KEY=api", "--cloud-hypervisor", hanging}, "", 2, "not a regular file"},
		{"SIGTERM during cloud-hypervisor set-up", []string{"run", "--vm", "web", "--hypervisor", "cloud-hypervisor", "--vm-config", vmcfg,
			"--runtime-dir", rt(), "--credential", "API_KEY=api", "--cloud-hypervisor", hanging}, "vsock.sock_*", 0, ""},
	}
	if os.Getuid() == 0 {
		full := filepath.Join(f.dir, "full")
		os.Mkdir(full, 0o700)
		if err := exec.Command("mount", "-t", "tmpfs", "-o", "size=4k,nr_inodes=2,mode=0700", "credlink-full", full).Run(); err == nil {
			t.Cleanup(func() { exec.Command("umount", full).Run() })
			os.WriteFile(filepath.Join(full, "filler"), bytes.Repeat([]byte("x"), 4096), 0o600)
			tests = append(tests, struct {
				name   string
				args   []string
				signal string
				want   int
				stderr string
			}{"full disk", local(full, "--agent", hanging), "", 2, "no space left on device"})
		} else {
			t.Logf("full-disk case skipped: cannot mount a tmpfs: %v", err)
		}
	} else {
		t.Log("full-disk case skipped: needs root to mount a full tmpfs")
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, launcherBin(t), tc.args...)
			cmd.Env = append(os.Environ(), env...)
			var se bytes.Buffer
			cmd.Stderr = &se
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			dir := ""
			if i := slices.Index(tc.args, "--runtime-dir"); i >= 0 {
				dir = tc.args[i+1]
			}
			if tc.signal != "" {
				waitForFile(t, filepath.Join(dir, "credlink-web-*", tc.signal))
				cmd.Process.Signal(syscall.SIGTERM)
			} else {
				// Nothing here should need a signal to end; if it hangs, SIGTERM must end it.
				timer := time.AfterFunc(5*time.Second, func() {
					t.Errorf("still running after 5s; sending SIGTERM")
					cmd.Process.Signal(syscall.SIGTERM)
				})
				defer timer.Stop()
			}
			err := cmd.Wait()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tc.want || !strings.Contains(se.String(), tc.stderr) {
				t.Errorf("exit %d, want %d (and %q in stderr):\n%s", code, tc.want, tc.stderr, se.String())
			}
			if left, _ := filepath.Glob(filepath.Join(dir, "credlink-*")); dir != "" && len(left) > 0 {
				t.Errorf("left %v behind", left)
			}
		})
	}
}

// TestPlanJSONGolden: `plan --format json` for a drop-in cloud-hypervisor launch with
// microvm.nix's command line (balloon + vsock shape), the interface Nix checks read. The
// per-launch values (ack and notify ports, and the sizes that depend on them) are normalized.
func TestPlanJSONGolden(t *testing.T) {
	f := newFixture(t)
	env := []string{"CREDENTIALS_DIRECTORY=" + f.creds}
	raw, err := os.ReadFile("../../pkg/chconfig/testdata/microvm-balloon-vsock.argv")
	if err != nil {
		t.Fatal(err)
	}
	chArgv := strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
	for i, a := range chArgv {
		chArgv[i] = strings.ReplaceAll(strings.ReplaceAll(a, "socket=notify.vsock", "socket="+f.dir+"/notify.vsock"), "bal.sock", f.dir+"/bal.sock")
	}
	args := append([]string{"plan", "--format", "json", "--hypervisor", "cloud-hypervisor", "--cloud-hypervisor", "/nix/store/x-cloud-hypervisor/bin/cloud-hypervisor",
		"--vm", "bal", "--runtime-dir", f.dir, "--credential", "API_KEY=api", "--credential", "DB_PASSWORD=db", "--set", "ENVIRONMENT=prod", "--manifest", f.manifest, "--"}, chArgv...)
	out, stderr, code := launcher(t, env, args...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var plan map[string]any
	if err := json.Unmarshal([]byte(out), &plan); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	plan["ack"].(map[string]any)["address"] = "vsock:2:<PORT>"
	plan["guest_notify"] = "vsock-stream:2:<PORT+1>"
	plan["type11_structures"] = "<N…>"
	for _, c := range plan["credentials"].([]any) {
		if n := c.(map[string]any)["name"]; n == "credlink.ack" || n == "vmm.notify_socket" {
			c.(map[string]any)["bytes"] = "<N>"
		}
	}
	oem := plan["cloud_hypervisor"].(map[string]any)["vm_config"].(map[string]any)["platform"].(map[string]any)["oem_strings"].([]any)
	for i, s := range oem {
		oem[i] = regexp.MustCompile(`^(io\.systemd\.credential:(credlink\.ack|vmm\.notify_socket)=\[redacted )[0-9]+`).ReplaceAllString(s.(string), "${1}<N>")
	}
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	enc.Encode(plan)
	got := strings.ReplaceAll(b.String(), f.dir, "$DIR")
	golden := filepath.Join("testdata", "plan-json-cloud-hypervisor.golden")
	if *update {
		os.WriteFile(golden, []byte(got), 0o644)
	}
	want, _ := os.ReadFile(golden)
	if got != string(want) {
		t.Errorf("plan --format json differs from %s:\n%s", golden, got)
	}
	if _, stderr, code := launcher(t, env, "plan", "--format", "yaml", "--vm", "x", "--hypervisor", "local"); code != 2 || !strings.Contains(stderr, "--format must be text or json") {
		t.Errorf("--format yaml: exit %d, %s", code, stderr)
	}
}

// TestPlanJSONAckTimeout: ack.timeout_seconds is --ack-timeout to the millisecond, a plain
// decimal for any accepted value (never 1e-09).
func TestPlanJSONAckTimeout(t *testing.T) {
	f := newFixture(t)
	env := []string{"CREDENTIALS_DIRECTORY=" + f.creds}
	for _, tc := range []struct{ flag, want string }{
		{"5m", `"timeout_seconds": 300,`},
		{"1500ms", `"timeout_seconds": 1.5,`},
		{"100000001ns", `"timeout_seconds": 0.1,`},
	} {
		out, stderr, code := launcher(t, env, "plan", "--format", "json", "--vm", "web", "--hypervisor", "qemu", "--credential", "API_KEY=api", "--ack-timeout", tc.flag, "--", "-M", "q35")
		if code != 0 || !strings.Contains(out, tc.want) {
			t.Errorf("--ack-timeout %s: exit %d, %s\n%s\nwant %s", tc.flag, code, stderr, out, tc.want)
		}
	}
}

// TestPlanWarnsEmptyCredential: an empty credential file without --manifest is delivered, but
// plan (text and JSON) and run's log say so; with a manifest the manifest decides.
func TestPlanWarnsEmptyCredential(t *testing.T) {
	f := newFixture(t)
	env := []string{"CREDENTIALS_DIRECTORY=" + f.creds}
	const want = "credential DB_PASSWORD is empty (0 bytes) and no --manifest says whether that is right"
	for _, tc := range []struct {
		name string
		args []string
		warn bool
	}{
		{"text", []string{"plan"}, true},
		{"json", []string{"plan", "--format", "json"}, true},
		{"not empty", []string{"plan", "--credential", "OTHER=api"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append(tc.args, "--vm", "web", "--hypervisor", "qemu", "--credential", "API_KEY=api")
			if tc.warn {
				args = append(args, "--credential", "DB_PASSWORD=empty")
			}
			out, stderr, code := launcher(t, env, append(args, "--", "-M", "q35")...)
			if code != 0 || strings.Contains(out, want) != tc.warn {
				t.Errorf("exit %d, %s\n%s\nwant the warning: %v", code, stderr, out, tc.warn)
			}
		})
	}
}

// TestCommandsReadingCredentialsAreHardened: plan reads every credential like run does, so it
// gets the same HardenProcess: non-dumpable and RLIMIT_CORE 0 (soft and hard), the part a test
// can see from outside in /proc/PID/limits. The child is held on a full stdout pipe after it has
// read the credentials, while the test looks.
func TestCommandsReadingCredentialsAreHardened(t *testing.T) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_CORE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Max == 0 {
		t.Skip("RLIMIT_CORE hard limit is 0 here: a child could not show the difference")
	}
	_ = syscall.Setrlimit(syscall.RLIMIT_CORE, &syscall.Rlimit{Cur: lim.Max, Max: lim.Max})
	t.Cleanup(func() { _ = syscall.Setrlimit(syscall.RLIMIT_CORE, &lim) })
	f := newFixture(t)
	for _, format := range []string{"text", "json"} {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		// Fill the pipe so that the plan's first write blocks.
		fd := int(w.Fd()) // Fd puts w in blocking mode; raw writes see EAGAIN, not the poller
		syscall.SetNonblock(fd, true)
		for {
			if _, err := syscall.Write(fd, make([]byte, 4096)); err != nil {
				break
			}
		}
		syscall.SetNonblock(fd, false)
		cmd := exec.Command(launcherBin(t), "plan", "--format", format, "--vm", "web", "--hypervisor", "qemu",
			"--ack-via", "serial", "--runtime-dir", f.dir, "--credential", "API_KEY=api", "--", "-machine", "q35")
		cmd.Env = append(os.Environ(), "CREDENTIALS_DIRECTORY="+f.creds)
		cmd.Stdout = w
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		w.Close()
		core := regexp.MustCompile(`(?m)^Max core file size\s+(\S+)\s+(\S+)`)
		var got string
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", cmd.Process.Pid))
			if err != nil {
				break
			}
			if m := core.FindSubmatch(b); m != nil {
				got = string(m[1]) + " " + string(m[2])
				if got == "0 0" {
					break
				}
			}
		}
		go func() { _, _ = io.Copy(io.Discard, r) }()
		_ = cmd.Wait()
		r.Close()
		if got != "0 0" {
			t.Errorf("plan --format %s: core limit (soft hard) %q while it holds the credentials, want 0 0", format, got)
		}
	}
}
