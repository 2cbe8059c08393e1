//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/credlink/credlink/pkg/sdnotify"
)

// TestSystemdGuest: a guest whose PID 1 is Debian 12's systemd 252. host-launcher delivers the
// credentials, PID 1 imports them into /run/credentials/@system, the shipped guest-agent.service
// with its systemd-252.conf drop-in verifies them — comparing what systemd imported with its own
// SMBIOS reading — and acknowledges over virtio-serial; the host sees READY=1 only after that,
// and a unit that Requires=/After= the agent starts only once the agent is ready.
func TestSystemdGuest(t *testing.T) {
	dir, img, sysInitrd := systemdImage(t)
	// Debian 12's systemd 252 imports only the first 4 KiB of each Type 11 entry: told so,
	// host-launcher starts a second structure rather than pass that page, and systemd 252 reads
	// both (entries/11-0 and 11-1). A 2.8 KiB bundle (3.9 KiB of base64) makes the split.
	dep := deploymentWithBundle(t, 2800)
	v := startSystemdVM(t, dir, img, sysInitrd, vmOpts{dep: dep, agent: true, ep64: true, ackTimeout: 100 * time.Second, systemd: 252})
	m, err := v.notify.Wait(2*time.Minute, sdnotify.Has("READY", "1"))
	if err != nil {
		t.Fatalf("no READY=1 from host-launcher: %v", err)
	}
	t.Logf("systemd guest: boot to READY=1 in %v", m.Received.Sub(v.started).Round(time.Millisecond))
	if m.Fields["STATUS"] != "Ready: 5/5 credentials delivered byte-exact" {
		t.Errorf("STATUS=%q", m.Fields["STATUS"])
	}
	console := waitConsole(v, "E2E-APP-STARTED", "E2E-CHECK 5/5 credentials verified")
	for _, want := range []string{
		"E2E-ENTRIES 2",                // two Type 11 structures, each within the page systemd 252 reads
		"E2E-APP-STARTED agent=active", // the dependent ran after the agent was ready
		"verification passed",          // the agent under systemd
		"sources=credentials,smbios",   // it compared systemd's import with SMBIOS
		`rules="systemd 252"`,          // under the rules of the systemd it runs under
		"host accepted the acknowledgement",
		"E2E-CHECK 5/5 credentials verified", // and so does a second look, after the fact
	} {
		if !strings.Contains(console, want) {
			t.Errorf("console lacks %q", want)
		}
	}
	if strings.Contains(console, "source_mismatch") {
		t.Error("systemd's imported credentials and the SMBIOS table disagree")
	}
	// systemd imported every credential with the sizes the host sent.
	for name, val := range dep.files {
		if want := fmt.Sprintf("E2E-IMPORTED %s %d", name, len(val)); !strings.Contains(console, want) {
			t.Errorf("console lacks %q", want)
		}
	}
	assertClean(t, "systemd guest console", []byte(console), dep.secrets())
	if t.Failed() {
		t.Logf("console:\n%s", console)
	}
}

// TestSystemd252Truncation: told the guest runs systemd 257, host-launcher sends a 9 KiB
// credential; systemd 252 reads only the first page of the Type 11 structure and imports a
// truncated TLS_BUNDLE or, when the cut base64 no longer decodes, none (and nothing after it).
// The agent, which learns from systemctl that it runs under 252 and reads the firmware with
// 252's rules, knows the value was cut and says so either way (even where the cut size would
// satisfy the manifest's min_bytes); the launcher refuses READY=1 and names the credential.
// (This is why --guest-systemd exists.)
func TestSystemd252Truncation(t *testing.T) {
	dir, img, sysInitrd := systemdImage(t)
	v := startSystemdVM(t, dir, img, sysInitrd, vmOpts{dep: realDeployment(t), agent: true, ep64: true, ackTimeout: 100 * time.Second})
	if code := v.waitExit(2 * time.Minute); code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if _, err := v.notify.Wait(time.Second, sdnotify.Has("READY", "1")); err == nil {
		t.Error("READY=1 despite the truncation")
	}
	msgs := v.notify.Messages()
	last := ""
	for _, m := range msgs {
		if s, ok := m.Fields["STATUS"]; ok {
			last = s
		}
	}
	if !strings.Contains(last, "TLS_BUNDLE: wrong_length in the guest") && !strings.Contains(last, "TLS_BUNDLE: invalid in the guest") {
		t.Errorf("last STATUS=%q, want TLS_BUNDLE wrong_length or invalid", last)
	}
	console := readFile(v.console)
	for _, want := range []string{
		`rules="systemd 252" from="systemctl --version"`,
		"name=TLS_BUNDLE status=",
		"cut short, systemd 252 reads only the first 4096 bytes of entries/11-0",
		"source=smbios state=partial",
	} {
		if !strings.Contains(console, want) {
			t.Errorf("agent did not report %q:\n%s", want, grep(console, "guest-agent"))
		}
	}
}

func waitConsole(v *vm, wants ...string) string {
	var console string
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		console = readFile(v.console)
		all := true
		for _, w := range wants {
			all = all && strings.Contains(console, w)
		}
		if all {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	return console
}

func startSystemdVM(t *testing.T, dir, img, sysInitrd string, o vmOpts) *vm {
	console := filepath.Join(dir, fmt.Sprintf("console-%d.log", time.Now().UnixNano()))
	v := startVMWith(t, o, func([]string) []string {
		return []string{"-machine", "q35,smbios-entry-point-type=64", "-accel", "tcg", "-m", "512", "-nodefaults", "-display", "none",
			"-serial", "file:" + console, "-no-reboot", "-kernel", vmlinux, "-initrd", sysInitrd,
			"-append", "console=ttyS0 quiet systemd.show_status=0 panic=-1 root=/dev/vda",
			"-drive", "file=" + img + ",if=virtio,format=raw,snapshot=on"}
	})
	v.console = console
	return v
}

// systemdImage builds (per test) the ext4 root image with the shipped units and the initramfs.
func systemdImage(t *testing.T) (dir, img, sysInitrd string) {
	out, err := exec.Command("./rootfs.sh").Output()
	if err != nil {
		t.Fatalf("rootfs.sh: %v", err)
	}
	base := strings.TrimSpace(string(out))
	dir, _ = os.MkdirTemp(workDir, "sysd")
	root := filepath.Join(dir, "root")
	if out, err := exec.Command("cp", "-a", base, root).CombinedOutput(); err != nil {
		t.Fatalf("copy rootfs: %v %s", err, out)
	}
	install := func(rel string, data []byte, mode os.FileMode) {
		p := filepath.Join(root, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, data, mode); err != nil {
			t.Fatal(err)
		}
	}
	agent, _ := os.ReadFile(filepath.Join(workDir, "files", "guest-agent"))
	install("usr/bin/guest-agent", agent, 0o755)
	unit, _ := os.ReadFile("../../systemd/guest-agent.service")
	dropin, _ := os.ReadFile("../../systemd/guest-agent.service.d/systemd-252.conf")
	install("etc/systemd/system/guest-agent.service", unit, 0o644)
	install("etc/systemd/system/guest-agent.service.d/systemd-252.conf", dropin, 0o644)
	// Test only: the agent's log on the console too, so the test can read it.
	consoleConf := "[Service]\nStandardError=journal+console\n"
	if os.Getenv("E2E_DEBUG") != "" {
		consoleConf += `ExecStartPre=/bin/sh -c 'grep -E "Uid|Cap|NoNew|Seccomp" /proc/self/status > /dev/console; ls -la /run/credentials/@system > /dev/console 2>&1; cat /proc/self/mountinfo | grep credentials > /dev/console'` + "\n"
	}
	install("etc/systemd/system/guest-agent.service.d/e2e-console.conf", []byte(consoleConf), 0o644)
	install("etc/credlink/manifest.json", []byte(manifests["sd252"]), 0o644)
	// A service that needs the credentials: it must start only after the agent is READY.
	install("etc/systemd/system/e2e-app.service", []byte(`[Unit]
Requires=guest-agent.service
After=guest-agent.service
[Service]
Type=oneshot
ExecStart=/bin/sh -c 'echo "E2E-APP-STARTED agent=$(systemctl is-active guest-agent.service)" > /dev/console'
[Install]
WantedBy=multi-user.target
`), 0o644)
	// What systemd imported, names and sizes only, for comparison with the agent's view.
	install("etc/systemd/system/e2e-report.service", []byte(`[Unit]
After=guest-agent.service
[Service]
Type=oneshot
ExecStart=/bin/sh -c 'echo "E2E-ENTRIES $(ls -d /sys/firmware/dmi/entries/11-* | wc -l)" > /dev/console; for f in /run/credentials/@system/*; do echo "E2E-IMPORTED $(basename $f) $(stat -c %%s $f)"; done > /dev/console; /usr/bin/guest-agent check --source auto --credentials-dir /run/credentials/@system --manifest /etc/credlink/manifest.json | sed "s/^/E2E-CHECK /" > /dev/console'
[Install]
WantedBy=multi-user.target
`), 0o644)
	if os.Getenv("E2E_DEBUG") != "" {
		install("etc/systemd/system/e2e-debug.service", []byte(`[Service]
Type=oneshot
ExecStart=/bin/sh -c 'stat -c "E2E-DEBUG %%a %%U %%F %%n" /run/credentials /run/credentials/@system /run/credentials/@system/* > /dev/console 2>&1; cat /proc/self/status | grep Cap > /dev/console'
[Install]
WantedBy=multi-user.target
`), 0o644)
		os.MkdirAll(filepath.Join(root, "etc/systemd/system/multi-user.target.wants"), 0o755)
		os.Symlink("/etc/systemd/system/e2e-debug.service", filepath.Join(root, "etc/systemd/system/multi-user.target.wants/e2e-debug.service"))
	}
	for _, u := range []string{"guest-agent.service", "e2e-app.service", "e2e-report.service"} {
		os.MkdirAll(filepath.Join(root, "etc/systemd/system/multi-user.target.wants"), 0o755)
		os.Symlink("/etc/systemd/system/"+u, filepath.Join(root, "etc/systemd/system/multi-user.target.wants", u))
	}
	img = filepath.Join(dir, "root.ext4")
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", "-L", "root", "-d", root, img, "600M").CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v %s", err, out)
	}
	os.RemoveAll(root)
	sysInitrd = filepath.Join(dir, "initrd.gz")
	empty := filepath.Join(dir, "empty")
	os.Mkdir(empty, 0o755)
	if out, err := exec.Command("./mkinitrd.sh", cacheDir, sysInitrd, "systemd-init", empty,
		"virtio_pci", "virtio_blk", "ext4", "crc32c_generic", "virtio_console").CombinedOutput(); err != nil {
		t.Fatalf("mkinitrd: %v %s", err, out)
	}

	return dir, img, sysInitrd
}
