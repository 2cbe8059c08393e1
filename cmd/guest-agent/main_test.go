package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/credlink/credlink/pkg/ack"
	"github.com/credlink/credlink/pkg/credential"
	"github.com/credlink/credlink/pkg/listen"
	"github.com/credlink/credlink/pkg/sdnotify"
	"github.com/credlink/credlink/pkg/smbios"
	"github.com/credlink/credlink/pkg/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }

// agentBin is guest-agent built once for this test process, with this test's -race setting.
func agentBin(t testing.TB) string { return testkit.Bin(t, "guest-agent") }

// secrets are the values every test searches all output for.
var secrets = map[string]string{
	"API_KEY":     "sk-live-4f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e", // 44 bytes
	"DB_PASSWORD": "pg-Zq8!x$Lm2#Rt7@Wv4%Ny6^Kp3&Hs9*Bd5(Fg1)Jc0", // 44 bytes
	"TLS_SEED":    "\x00\x01binary\xff\xfe-seed-\x7f\x80",
}

const manifestOK = `{"credentials": {
  "API_KEY": {"bytes": 44}, "DB_PASSWORD": {"bytes": 44},
  "TLS_SEED": {"min_bytes": 8, "max_bytes": 64},
  "ENVIRONMENT": {"secret": false, "sha256": "e919a75364398a449f860aeadddc57fa0502145a4e63959ddb33c417a48dc0da"},
  "CLUSTER": {"secret": false, "optional": true}},
 "unexpected": "warn"}`

// leaks searches output for any form of the secrets.
var leaks = testkit.NewSecrets(map[string]string{"API_KEY": secrets["API_KEY"], "DB_PASSWORD": secrets["DB_PASSWORD"], "TLS_SEED": secrets["TLS_SEED"]})

// fixture writes a sysfs tree whose SMBIOS table carries the secrets plus extra credentials.
func fixture(t *testing.T, extra ...credential.Credential) string {
	t.Helper()
	creds := testkit.Values(secrets, "API_KEY", "DB_PASSWORD", "TLS_SEED")
	creds = append(creds, credential.Credential{Name: "ENVIRONMENT", Value: credential.NewValue([]byte("staging"))})
	return testkit.SMBIOSSysfs(t, append(creds, extra...)...)
}

func writeManifest(t *testing.T, dir, src string) string {
	p := filepath.Join(dir, "manifest.json")
	if err := os.WriteFile(p, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func runAgent(t *testing.T, env []string, args ...string) (string, string, int) {
	t.Helper()
	r := testkit.Run(t, 30*time.Second, env, agentBin(t), args...)
	leaks.CheckString(t, "stdout", r.Stdout)
	leaks.CheckString(t, "stderr", r.Stderr)
	return r.Stdout, r.Stderr, r.Code
}

func TestCheckCommand(t *testing.T) {
	dir := t.TempDir()
	sys := fixture(t)
	good := writeManifest(t, t.TempDir(), manifestOK)
	bad := writeManifest(t, t.TempDir(), strings.Replace(manifestOK, `"TLS_SEED": {"min_bytes": 8, "max_bytes": 64}`, `"TLS_SEED": {"bytes": 3}`, 1))
	broken := writeManifest(t, dir, `{"credentials": {"A": {"bytes": 1, "bytes": 2}}}`)

	tests := []struct {
		name   string
		args   []string
		code   int
		stdout []string
		stderr string
	}{
		{"ok table", []string{"check", "--manifest", good, "--sysfs", sys, "--source", "smbios"}, 0,
			[]string{"API_KEY      44     ok", `ENVIRONMENT  7      ok`, `"staging"`, "CLUSTER      0      missing", "4/4 credentials verified"}, ""},
		{"failure", []string{"check", "--manifest", bad, "--sysfs", sys}, 1,
			[]string{"TLS_SEED     18     wrong_length", "FAILED: TLS_SEED wrong_length (18 bytes, want 3)"}, ""},
		{"manifest error", []string{"check", "--manifest", broken, "--sysfs", sys}, 2, nil,
			`guest-agent check: configuration error: ` + broken + `: invalid manifest: credentials.A.bytes (line 1): duplicate key`},
		{"missing manifest", []string{"check", "--manifest", dir + "/nope.json", "--sysfs", sys}, 2, nil, "no such file"},
		{"bad source", []string{"check", "--manifest", good, "--source", "floppy"}, 2, nil, "--source must be auto, smbios, credentials or fwcfg"},
		{"no source", []string{"check", "--manifest", good, "--sysfs", t.TempDir()}, 1, nil, "no credential source readable"},
		{"bad flag", []string{"check", "--frobnicate"}, 2, nil, "flag provided but not defined"},
		{"stray argument", []string{"check", "extra"}, 2, nil, `unexpected argument "extra"`},
		{"unknown command", []string{"frob"}, 2, nil, `unknown command "frob"`},
		{"check systemd 100", []string{"check", "--manifest", good, "--sysfs", sys, "--systemd-version", "100"}, 2, nil, "systemd 100 imports no credentials from SMBIOS or fw_cfg (252 and newer do)"},
		{"check systemd 252", []string{"check", "--manifest", good, "--sysfs", sys, "--source", "smbios", "--systemd-version", "252"}, 0, []string{"rules: systemd 252"}, ""},
		// inspect: 0 clean, 1 a finding about the tree (nothing there, problems), 2 the command line.
		{"inspect", []string{"inspect", "--sysfs", sys}, 0, []string{"API_KEY", "4 credentials"}, ""},
		{"inspect no SMBIOS", []string{"inspect", "--sysfs", t.TempDir()}, 1, nil, "guest-agent inspect: source unavailable: no SMBIOS tables"},
		{"inspect sysfs missing", []string{"inspect", "--sysfs", dir + "/nope"}, 2, nil, "--sysfs " + dir + "/nope is not a directory"},
		{"inspect sysfs /dev/null", []string{"inspect", "--sysfs", "/dev/null"}, 2, nil, "--sysfs /dev/null is not a directory"},
		{"inspect --table --both", []string{"inspect", "--sysfs", sys, "--table", "--both"}, 2, nil, "--table and --both exclude each other"},
		{"inspect --demo --sysfs", []string{"inspect", "--demo", "--sysfs", sys}, 2, nil, "--demo inspects a generated tree, not --sysfs"},
		{"inspect systemd 100", []string{"inspect", "--sysfs", sys, "--systemd-version", "100"}, 2, nil, "systemd 100 imports no credentials"},
		{"version extra", []string{"version", "extra"}, 2, nil, `guest-agent version: unexpected argument "extra"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := runAgent(t, nil, tt.args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, out, errOut)
			}
			for _, s := range tt.stdout {
				if !strings.Contains(out, s) {
					t.Errorf("stdout lacks %q:\n%s", s, out)
				}
			}
			if !strings.Contains(errOut, tt.stderr) {
				t.Errorf("stderr lacks %q:\n%s", tt.stderr, errOut)
			}
		})
	}

	out, _, code := runAgent(t, nil, "check", "--json", "--manifest", bad, "--sysfs", sys)
	var j struct {
		OK          bool `json:"ok"`
		Credentials []struct {
			Name, Status, Source string
			Bytes                int
		} `json:"credentials"`
	}
	if err := json.Unmarshal([]byte(out), &j); err != nil || code != 1 || j.OK || len(j.Credentials) != 5 {
		t.Fatalf("json: %v code=%d %+v", err, code, j)
	}
	if c := j.Credentials[2]; c.Name != "TLS_SEED" || c.Status != "wrong_length" || c.Bytes != 18 || c.Source != "smbios" {
		t.Errorf("TLS_SEED = %+v", c)
	}
}

// TestCredentialsDirSource: $CREDENTIALS_DIRECTORY is preferred in auto mode, and a value that
// differs from SMBIOS is a source_mismatch.
func TestCredentialsDirSource(t *testing.T) {
	sys := fixture(t)
	dir := t.TempDir()
	for n, v := range secrets {
		os.WriteFile(filepath.Join(dir, n), []byte(v), 0o400)
	}
	os.WriteFile(filepath.Join(dir, "ENVIRONMENT"), []byte("staging"), 0o400)
	m := writeManifest(t, t.TempDir(), manifestOK)
	out, _, code := runAgent(t, []string{"CREDENTIALS_DIRECTORY=" + dir}, "check", "--manifest", m, "--sysfs", sys)
	if code != 0 || row(out, "API_KEY") != "API_KEY 44 ok credentials 44 bytes (secret)" {
		t.Fatalf("code %d\n%s", code, out)
	}
	os.Chmod(filepath.Join(dir, "API_KEY"), 0o600)
	os.WriteFile(filepath.Join(dir, "API_KEY"), []byte(strings.ToUpper(secrets["API_KEY"])), 0o400)
	out, _, code = runAgent(t, []string{"CREDENTIALS_DIRECTORY=" + dir}, "check", "--manifest", m, "--sysfs", sys)
	if code != 1 || row(out, "API_KEY") != "API_KEY 44 source_mismatch credentials credentials has 44 bytes, smbios has 44 different bytes (secret)" {
		t.Fatalf("code %d\n%s", code, out)
	}
}

// agentProc runs guest-agent as a service would: real notify socket, metrics on a free port.
type agentProc struct {
	*testkit.Proc
	notify  *sdnotify.Listener
	metrics string
}

var metricsAddr = regexp.MustCompile(`msg="serving metrics" addr=(\S+)`)

func startDaemon(t *testing.T, args ...string) *agentProc {
	t.Helper()
	n, err := sdnotify.Listen(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	d := &agentProc{notify: n}
	d.Proc = testkit.Start(t, []string{"NOTIFY_SOCKET=" + n.Path, "INVOCATION_ID=test"}, agentBin(t),
		append([]string{"run", "--metrics-listen", "127.0.0.1:0"}, args...)...)
	m, err := d.Stderr.WaitFor(10*time.Second, metricsAddr)
	if err != nil {
		t.Fatalf("%v; stderr:\n%s", err, d.Stderr.String())
	}
	d.metrics = m[1]
	return d
}

func (d *agentProc) scrape(t *testing.T) string {
	t.Helper()
	resp, err := http.Get("http://" + d.metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	leaks.Check(t, "metrics", b)
	return string(b)
}

// stop sends SIGTERM and returns the exit status once STOPPING=1 was sent and the agent exited.
func (d *agentProc) stop(t *testing.T) int {
	t.Helper()
	d.Signal(syscall.SIGTERM)
	code := d.Wait(t, 10*time.Second)
	if _, e := d.notify.Wait(2*time.Second, sdnotify.Has("STOPPING", "1")); e != nil {
		t.Errorf("no STOPPING=1: %v", e)
	}
	leaks.CheckString(t, "stderr", d.Stderr.String())
	return code
}

// count returns how many notifications so far match.
func (d *agentProc) count(match func(sdnotify.Message) bool) int {
	n := 0
	for _, m := range d.notify.Messages() {
		if match(m) {
			n++
		}
	}
	return n
}

// waitCount waits until at least n notifications match: the n-th STATUS= after a reload is the
// event that says the reload's verification is done.
func (d *agentProc) waitCount(t *testing.T, n int, match func(sdnotify.Message) bool) {
	t.Helper()
	if _, err := d.notify.WaitNth(10*time.Second, n, match); err != nil {
		t.Fatalf("fewer than %d matching notifications: %v\n%+v", n, err, d.notify.Messages())
	}
}

func TestDaemonReadyMetricsReloadStop(t *testing.T) {
	sys := fixture(t)
	dir := t.TempDir()
	m := writeManifest(t, dir, manifestOK)
	d := startDaemon(t, "--manifest", m, "--sysfs", sys)

	msg, err := d.notify.Wait(5*time.Second, sdnotify.Has("READY", "1"))
	if err != nil {
		t.Fatalf("%v\nstderr:\n%s", err, d.Stderr.String())
	}
	if msg.Fields["STATUS"] != "4/4 credentials verified" {
		t.Errorf("STATUS = %q", msg.Fields["STATUS"])
	}
	metrics := d.scrape(t)
	for _, want := range []string{
		`credlink_credential_state{name="API_KEY",status="ok"} 1`,
		`credlink_credential_bytes{name="TLS_SEED"} 18`,
		`credlink_credential_state{name="CLUSTER",status="missing"} 1`,
		"credlink_verification_success 1", "credlink_credentials_verified 4", "credlink_credentials_expected 4",
		"go_goroutines", "process_resident_memory_bytes",
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if err := d.Stderr.WaitForText(10*time.Second, `<6>msg=credential name=ENVIRONMENT status=ok bytes=7 source=smbios detail="7 bytes" value=staging`); err != nil {
		t.Errorf("journal-form log with the non-secret value missing:\n%s", d.Stderr.String())
	}

	// Tighten the manifest and reload: the failure shows in STATUS and the metrics.
	writeManifest(t, dir, strings.Replace(manifestOK, `"bytes": 44}, "DB_PASSWORD"`, `"bytes": 40}, "DB_PASSWORD"`, 1))
	d.Signal(syscall.SIGHUP)
	if _, err := d.notify.Wait(5*time.Second, sdnotify.HasPrefix("STATUS", "3/4 credentials verified; FAILED: API_KEY wrong_length (44 bytes, want 40)")); err != nil {
		t.Fatalf("%v\n%+v", err, d.notify.Messages())
	}
	if _, err := d.notify.Wait(time.Second, sdnotify.HasPrefix("MONOTONIC_USEC", "")); err != nil {
		t.Error("no RELOADING=1 with MONOTONIC_USEC")
	}
	metrics = d.scrape(t)
	if !strings.Contains(metrics, `credlink_credential_state{name="API_KEY",status="wrong_length"} 1`) || !strings.Contains(metrics, "credlink_verifications_total 2") {
		t.Errorf("metrics after reload:\n%s", grep(metrics, "credlink_"))
	}
	// A broken manifest on reload keeps the previous one: the third reload protocol's READY=1
	// (after the first start and one reload) ends a reload that logged the error and
	// re-verified under the previous manifest.
	writeManifest(t, dir, `{"credentials":`)
	d.Signal(syscall.SIGHUP)
	d.waitCount(t, 3, sdnotify.Has("READY", "1"))
	// stderr is a pipe read by another goroutine: its bytes may trail the notification.
	if err := d.Stderr.WaitForText(10*time.Second, "reload: keeping the previous manifest"); err != nil {
		t.Errorf("no reload error logged: %v\n%s", err, d.Stderr.String())
	}
	if m := d.notify.Messages(); !strings.HasPrefix(m[len(m)-2].Fields["STATUS"], "3/4 credentials verified; FAILED: API_KEY wrong_length") {
		t.Errorf("the reload with a broken manifest did not keep the previous one: %q", m[len(m)-2].Raw)
	}
	if code := d.stop(t); code != 0 {
		t.Errorf("exit %d after SIGTERM", code)
	}
}

func TestDaemonFailureModes(t *testing.T) {
	sys := fixture(t)
	m := writeManifest(t, t.TempDir(), strings.Replace(manifestOK, `"CLUSTER": {"secret": false, "optional": true}`, `"CLUSTER": {"secret": false}`, 1))

	// wait: not ready, but serving metrics that say why.
	d := startDaemon(t, "--manifest", m, "--sysfs", sys)
	msg, err := d.notify.Wait(5*time.Second, sdnotify.HasPrefix("STATUS", ""))
	if err != nil {
		t.Fatal(err)
	}
	if msg.Fields["STATUS"] != "4/5 credentials verified; FAILED: CLUSTER missing (not received)" || msg.Fields["READY"] != "" {
		t.Errorf("first notification %q", msg.Raw)
	}
	if metrics := d.scrape(t); !strings.Contains(metrics, "credlink_verification_success 0") || !strings.Contains(metrics, `credlink_credential_state{name="CLUSTER",status="missing"} 1`) {
		t.Errorf("metrics:\n%s", grep(metrics, "credlink_"))
	}
	if err := d.Stderr.WaitForText(10*time.Second, "<3>msg=\"credential failed verification\" name=CLUSTER status=missing"); err != nil {
		t.Errorf("%v:\n%s", err, d.Stderr.String())
	}
	// STOPPING=1 is the agent's last notification: none before it may have been READY=1.
	d.stop(t)
	if n := d.count(sdnotify.Has("READY", "1")); n != 0 {
		t.Errorf("READY=1 sent %d times despite a failed verification:\n%+v", n, d.notify.Messages())
	}

	// A reload that still fails must not make the starting unit ready; one that passes does.
	m2 := writeManifest(t, t.TempDir(), strings.Replace(manifestOK, `"CLUSTER": {"secret": false, "optional": true}`, `"CLUSTER": {"secret": false}`, 1))
	d = startDaemon(t, "--manifest", m2, "--sysfs", sys)
	if _, err := d.notify.Wait(5*time.Second, sdnotify.HasPrefix("STATUS", "4/5")); err != nil {
		t.Fatal(err)
	}
	d.Signal(syscall.SIGHUP)
	d.waitCount(t, 2, sdnotify.HasPrefix("STATUS", "4/5")) // the reload's verification is done
	for _, msg := range d.notify.Messages() {
		if msg.Fields["READY"] == "1" || msg.Fields["RELOADING"] == "1" {
			t.Errorf("a failing reload of a unit that never became ready sent %q", msg.Raw)
		}
	}
	writeManifest(t, filepath.Dir(m2), manifestOK)
	d.Signal(syscall.SIGHUP)
	if msg, err := d.notify.Wait(5*time.Second, sdnotify.Has("READY", "1")); err != nil || msg.Fields["STATUS"] != "4/4 credentials verified" {
		t.Errorf("fixed manifest did not make the agent ready: %v %q", err, msg.Raw)
	}
	d.stop(t)

	// exit: exit 1 at once.
	_, errOut, code := runAgent(t, nil, "run", "--on-failure", "exit", "--metrics-listen", "", "--manifest", m, "--sysfs", sys)
	if code != 1 || !strings.Contains(errOut, "credential verification failed") {
		t.Errorf("exit mode: code %d\n%s", code, errOut)
	}
	_, errOut, code = runAgent(t, nil, "run", "--on-failure", "maybe", "--manifest", m, "--sysfs", sys)
	if code != 2 || !strings.Contains(errOut, "--on-failure must be wait or exit") {
		t.Errorf("bad --on-failure: code %d\n%s", code, errOut)
	}
}

// TestDaemonAcknowledges: with credlink.ack and credlink.key among the credentials, the agent
// acknowledges to a real ack.Server, which verifies every credential's MAC.
func TestDaemonAcknowledges(t *testing.T) {
	key := make([]byte, ack.KeySize)
	rand.Read(key)
	sock := filepath.Join(t.TempDir(), "ack.sock")
	var sent []credential.Credential
	for _, n := range []string{"API_KEY", "DB_PASSWORD", "TLS_SEED"} {
		sent = append(sent, credential.Credential{Name: n, Value: credential.NewValue([]byte(secrets[n]))})
	}
	sent = append(sent, credential.Credential{Name: "ENVIRONMENT", Value: credential.NewValue([]byte("staging"))})
	results := make(chan ack.Result, 4)
	srv := &ack.Server{Key: key, Sent: sent, VM: "web1", OnResult: func(r ack.Result) { results <- r }}
	l, err := listen.Unix(sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go srv.Serve(ctx, l)

	sys := fixture(t,
		credential.Credential{Name: "credlink.ack", Value: credential.NewValue([]byte("unix:" + sock))},
		credential.Credential{Name: "credlink.key", Value: credential.NewValue(key)},
		credential.Credential{Name: "credlink.vm", Value: credential.NewValue([]byte("web1"))})
	m := writeManifest(t, t.TempDir(), manifestOK)
	d := startDaemon(t, "--manifest", m, "--sysfs", sys)
	select {
	case r := <-results:
		if !r.Accepted || r.Report.VM != "web1" || !r.NewBoot {
			t.Fatalf("host result %+v", r)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("no acknowledgement; stderr:\n%s", d.Stderr.String())
	}
	// The host learns the result before the agent reads the verdict; the agent's log line comes
	// after it counted the attempt.
	if err := d.Stderr.WaitForText(10*time.Second, "host accepted the acknowledgement"); err != nil {
		t.Fatal(err)
	}
	metrics := d.scrape(t)
	if !strings.Contains(metrics, `credlink_ack_attempts_total{result="accepted"} 1`) || !strings.Contains(metrics, "credlink_ack_accepted 1") {
		t.Errorf("ack metrics:\n%s", grep(metrics, "credlink_ack"))
	}
	if strings.Contains(metrics, "credlink.key") || strings.Contains(metrics, "credlink.ack") {
		t.Error("control credentials exported as credentials")
	}
	if strings.Contains(d.Stderr.String(), string(key)) || strings.Contains(d.Stderr.String(), fmt.Sprintf("%x", key)) {
		t.Error("key logged")
	}
	d.stop(t)
}

func grep(s, substr string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// row returns the table row for name with its columns joined by single spaces.
func row(table, name string) string {
	for _, l := range strings.Split(table, "\n") {
		if f := strings.Fields(l); len(f) > 0 && f[0] == name {
			return strings.Join(f, " ")
		}
	}
	return ""
}

// TestFwCfgSource: credentials QEMU passed with -fw_cfg name=opt/io.systemd.credentials/NAME,
// alone (--source fwcfg) and merged with SMBIOS in auto mode, where fw_cfg wins as in systemd.
func TestFwCfgSource(t *testing.T) {
	sys := fixture(t)
	base := filepath.Join(sys, "firmware/qemu_fw_cfg/by_name/opt/io.systemd.credentials")
	for n, v := range map[string]string{"API_KEY": secrets["API_KEY"], "DB_PASSWORD": secrets["DB_PASSWORD"], "TLS_SEED": secrets["TLS_SEED"], "ENVIRONMENT": "staging"} {
		os.MkdirAll(filepath.Join(base, n), 0o700)
		os.WriteFile(filepath.Join(base, n, "raw"), []byte(v), 0o400)
	}
	m := writeManifest(t, t.TempDir(), manifestOK)
	out, _, code := runAgent(t, nil, "check", "--source", "fwcfg", "--manifest", m, "--sysfs", sys)
	if code != 0 || row(out, "API_KEY") != "API_KEY 44 ok fwcfg 44 bytes (secret)" {
		t.Fatalf("fwcfg: code %d\n%s", code, out)
	}
	// In auto mode fw_cfg shadows a different SMBIOS value of the same name, as in systemd's
	// import; the other credentials come from SMBIOS.
	os.RemoveAll(filepath.Join(base, "DB_PASSWORD"))
	p := filepath.Join(base, "API_KEY", "raw")
	os.Chmod(p, 0o600)
	os.WriteFile(p, []byte(strings.ToUpper(secrets["API_KEY"])), 0o400)
	out, _, code = runAgent(t, nil, "check", "--manifest", m, "--sysfs", sys)
	if code != 0 || row(out, "API_KEY") != "API_KEY 44 ok fwcfg 44 bytes (secret)" || row(out, "DB_PASSWORD") != "DB_PASSWORD 44 ok smbios 44 bytes (secret)" {
		t.Fatalf("auto: code %d\n%s", code, out)
	}
}

// TestSystemdConformance: the small inputs of issue 12, through the binary. Each behaves as the
// named systemd version does, and a bad entry or source is reported, never silently dropped.
func TestSystemdConformance(t *testing.T) {
	tree := func(groups ...[]string) string {
		sys := t.TempDir()
		if err := smbios.WriteTree(sys, groups); err != nil {
			t.Fatal(err)
		}
		return sys
	}
	bigValue := make([]byte, 100<<10)
	rand.Read(bigValue)
	bigString, _ := credential.EncodeOEMString("BIG_BLOB_", bigValue)
	urlSafe := tree([]string{"io.systemd.credential.binary:TOKEN=-_-_AQ==", "io.systemd.credential:API_KEY=abcd"})
	big := tree([]string{bigString, "io.systemd.credential:API_KEY=abcd"})
	mTokenKey := writeManifest(t, t.TempDir(), `{"credentials": {"TOKEN": {"bytes": 4}, "API_KEY": {"bytes": 4}}}`)
	mBigKey := writeManifest(t, t.TempDir(), fmt.Sprintf(`{"credentials": {"BIG_BLOB_": {"bytes": %d}, "API_KEY": {"bytes": 4}}}`, len(bigValue)))
	mNewline := writeManifest(t, t.TempDir(), `{"credentials": {"API_KEY": {"bytes": 3}}}`)

	// A credentials directory plus firmware whose second Type 11 entry is malformed.
	credDir := t.TempDir()
	os.WriteFile(filepath.Join(credDir, "API_KEY"), []byte("abcd"), 0o400)
	broken := tree([]string{"io.systemd.credential:API_KEY=abcd"}, []string{"io.systemd.credential:LATER=x"})
	p := filepath.Join(broken, smbios.EntriesDir, "11-1", "raw")
	os.Chmod(p, 0o600)
	os.WriteFile(p, []byte{11, 4, 0, 0, 0, 0, 0}, 0o600)
	noDMISysfs := tree([]string{"io.systemd.credential:API_KEY=abcd"})
	os.Chmod(filepath.Join(noDMISysfs, smbios.EntriesDir, "11-0"), 0o700)
	os.RemoveAll(filepath.Join(noDMISysfs, smbios.EntriesDir))
	mKey := writeManifest(t, t.TempDir(), `{"credentials": {"API_KEY": {"bytes": 4}}}`)

	tests := []struct {
		name   string
		env    []string
		args   []string
		code   int
		stdout []string
	}{
		{"URL-safe base64, systemd 255 accepts", nil, []string{"--manifest", mTokenKey, "--sysfs", urlSafe, "--source", "smbios", "--systemd-version", "255"}, 0,
			[]string{"TOKEN    4      ok", "rules: systemd 255 (--systemd-version)"}},
		{"URL-safe base64, systemd 254 skips TOKEN only", nil, []string{"--manifest", mTokenKey, "--sysfs", urlSafe, "--source", "smbios", "--systemd-version", "254"}, 1,
			[]string{"TOKEN    0      invalid", "smbios: invalid base64 at character 0 of 8 (the value uses the URL-safe alphabet, which systemd 254 does not accept; systemd >= 255 does)", "API_KEY  4      ok"}},
		{"136,617-byte entry, systemd 257 reads it whole", nil, []string{"--manifest", mBigKey, "--sysfs", big, "--source", "smbios", "--systemd-version", "257"}, 0,
			[]string{"BIG_BLOB_  102400  ok", "API_KEY    4       ok", "source smbios: ok"}},
		{"136,617-byte entry, systemd 252 reads one page", nil, []string{"--manifest", mBigKey, "--sysfs", big, "--source", "smbios", "--systemd-version", "252"}, 1,
			[]string{"BIG_BLOB_  3039   wrong_length  smbios  3039 bytes, want 102400: cut short, systemd 252 reads only the first 4096 bytes of entries/11-0", "API_KEY    0      invalid       -       smbios: not imported by the guest's systemd: it starts beyond the first 4096 bytes of entries/11-0, all that systemd 252 reads",
				`source smbios: partial: entries/11-0 has 136617 bytes but systemd 252 reads only the first 4096: credential "BIG_BLOB_" crosses that boundary`}},
		{"auto: a malformed entry is reported, the rest verified", []string{"CREDENTIALS_DIRECTORY=" + credDir}, []string{"--manifest", mKey, "--sysfs", broken}, 0,
			[]string{"API_KEY  4      ok", "source credentials: ok", "source smbios: partial: entry 11-1: malformed SMBIOS data: formatted length 4; systemd accepts only 5"}},
		{"auto: no dmi_sysfs is said", []string{"CREDENTIALS_DIRECTORY=" + credDir}, []string{"--manifest", mKey, "--sysfs", noDMISysfs}, 0,
			[]string{"source smbios: unavailable", "dmi_sysfs is not loaded"}},
		{"auto: an unreadable credentials directory is reported, the firmware still verified", nil,
			[]string{"--manifest", mKey, "--sysfs", broken, "--credentials-dir", filepath.Join(credDir, "API_KEY")}, 0,
			[]string{"API_KEY  4      ok      smbios", "source credentials: error: open credentials source", "source smbios: partial"}},
		{"one byte more hints at a trailing newline", nil, []string{"--manifest", mNewline, "--sysfs", urlSafe, "--source", "smbios"}, 1,
			[]string{"4 bytes, want 3: 1 byte more, a trailing newline in the host file?"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := runAgent(t, tt.env, append([]string{"check"}, tt.args...)...)
			if code != tt.code {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, out, errOut)
			}
			for _, s := range tt.stdout {
				if !strings.Contains(out, s) {
					t.Errorf("stdout lacks %q:\n%s", s, out)
				}
			}
		})
	}

	// The daemon says the same in its metrics, log and STATUS=.
	d := startDaemon(t, "--manifest", mKey, "--sysfs", broken, "--systemd-version", "254", "--credentials-dir", credDir)
	msg, err := d.notify.Wait(5*time.Second, sdnotify.Has("READY", "1"))
	if err != nil {
		t.Fatalf("%v\n%s", err, d.Stderr.String())
	}
	if msg.Fields["STATUS"] != "1/1 credentials verified; sources: smbios partial" {
		t.Errorf("STATUS = %q", msg.Fields["STATUS"])
	}
	metrics := d.scrape(t)
	for _, want := range []string{`credlink_source_state{source="smbios",state="partial"} 1`, `credlink_source_state{source="fwcfg",state="unavailable"} 1`, "credlink_systemd_rules_version 254"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if !strings.Contains(d.Stderr.String(), `msg="credential source" source=smbios state=partial`) {
		t.Errorf("log lacks the partial source:\n%s", d.Stderr.String())
	}
	d.stop(t)
}

// TestDaemonSourceError: a source that cannot be read at all is reported in STATUS=, the log
// and the metrics, even though nothing could be verified.
func TestDaemonSourceError(t *testing.T) {
	sys := t.TempDir()
	if err := smbios.WriteTree(sys, [][]string{{"io.systemd.credential:API_KEY=abcd"}}); err != nil {
		t.Fatal(err)
	}
	raw := filepath.Join(sys, smbios.EntriesDir, "11-0", "raw")
	os.Chmod(raw, 0o600)
	os.Remove(raw)
	os.Mkdir(raw, 0o700) // reading it fails with EISDIR
	m := writeManifest(t, t.TempDir(), `{"credentials": {"API_KEY": {"bytes": 4}}}`)
	d := startDaemon(t, "--manifest", m, "--sysfs", sys, "--source", "smbios", "--systemd-version", "257")
	_, err := d.notify.Wait(5*time.Second, sdnotify.Has("STATUS", "0/1 credentials verified; FAILED: API_KEY missing (not received); sources: smbios error"))
	if err != nil {
		t.Fatalf("%v\n%s", err, d.Stderr.String())
	}
	if metrics := d.scrape(t); !strings.Contains(metrics, `credlink_source_state{source="smbios",state="error"} 1`) {
		t.Errorf("metrics lack the smbios error:\n%s", metrics)
	}
	if !strings.Contains(d.Stderr.String(), `msg="credential source" source=smbios state=error`) {
		t.Errorf("log lacks the source error:\n%s", d.Stderr.String())
	}
	d.stop(t)
}

// A metrics address that cannot be bound is a usage error (exit 2) and no READY=1, although the
// acknowledgement, which goes first, may have reached the host.
func TestDaemonBusyMetricsPort(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	dir := t.TempDir()
	notify, err := sdnotify.Listen(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer notify.Close()
	m := writeManifest(t, t.TempDir(), manifestOK)
	_, errOut, code := runAgent(t, []string{"NOTIFY_SOCKET=" + notify.Path}, "run", "--metrics-listen", busy.Addr().String(), "--manifest", m, "--sysfs", fixture(t))
	if code != 2 || !strings.Contains(errOut, "metrics listener") {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut)
	}
	for _, msg := range notify.Messages() {
		if msg.Fields["READY"] == "1" {
			t.Fatal("READY=1 sent although the agent exits with a usage error")
		}
	}
}

// wait-port (guest-agent.service's ExecStartPre=+) returns at once unless credlink.ack names a
// virtio-serial port, and never fails the unit: exit 0 even when the port does not appear.
func TestWaitPortCommand(t *testing.T) {
	for _, c := range []struct {
		name, ack string
		args      []string
		code      int
		minWait   time.Duration
		log       string
	}{
		{"vsock host", "vsock:2:1234", nil, 0, 0, ""},
		{"no credentials", "", nil, 0, 0, ""},
		{"serial port never appears", "serial:credlink.0", []string{"--timeout", "300ms"}, 0, 300 * time.Millisecond, "not found"},
		{"bad flag", "", []string{"--bogus"}, 2, 0, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			if c.ack != "" {
				os.WriteFile(filepath.Join(dir, "credlink.ack"), []byte(c.ack), 0o400)
			}
			cmd := exec.Command(agentBin(t), append([]string{"wait-port"}, c.args...)...)
			cmd.Env = append(os.Environ(), "CREDENTIALS_DIRECTORY="+dir)
			start := time.Now()
			out, _ := cmd.CombinedOutput()
			if code := cmd.ProcessState.ExitCode(); code != c.code {
				t.Errorf("exit %d, want %d: %s", code, c.code, out)
			}
			if d := time.Since(start); d < c.minWait || (c.minWait == 0 && d > 2*time.Second) {
				t.Errorf("returned after %v", d)
			}
			if !strings.Contains(string(out), c.log) {
				t.Errorf("output %q lacks %q", out, c.log)
			}
		})
	}
}

// TestBinaryBuiltLikeTheTest: the guest-agent the tests run was built with this test binary's
// -race setting, which is what lets its build reuse the test compile's cache entries (and puts
// the daemon's goroutines under the race detector when make test runs with -race).
func TestBinaryBuiltLikeTheTest(t *testing.T) {
	r := testkit.Run(t, 30*time.Second, nil, "go", "version", "-m", agentBin(t))
	if got := strings.Contains(r.Stdout, "-race=true"); got != testkit.Race || r.Code != 0 {
		t.Errorf("test built with -race=%v, guest-agent's build info:\n%s", testkit.Race, r.Stdout)
	}
}

func TestParseSystemdFlag(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want int // 0: refused
	}{
		{"252", 252}, {"257", 257}, {"257.13", 257}, {"258.1.2", 258}, {"100000", 100000},
		{"251", 0}, {"0", 0}, {"1", 0}, {"-1", 0}, {"+257", 0}, {" 257", 0}, {"257 ", 0},
		{"252xyz", 0}, {"257~rc1", 0}, {"257\njunk", 0}, {"257 (257.13-1)", 0}, {"1e3", 0},
		{"0x101", 0}, {"", 0}, {"100001", 0}, {"99999999999", 0}, {"257.", 0},
	} {
		got, err := parseSystemdFlag(tt.in)
		if (err == nil) != (tt.want != 0) || int(got) != tt.want {
			t.Errorf("parseSystemdFlag(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
}
