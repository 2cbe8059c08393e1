package chconfig

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// The three microvm.nix shapes in testdata/microvm-*.argv are the command lines that
// lib/runners/cloud-hypervisor.nix (microvm.nix 71beea00) builds: opsMapped renders each
// option's attributes sorted by name, tapMultiQueue (vcpu > 1) adds num_queues=vcpu to disks
// and 2*vcpu to nets, lib/macvtap.nix numbers macvtap queue fds from 3, and a set vsock.cid adds
// --vsock cid=N,socket=notify.vsock and the vmm.notify_socket OEM string. Here each field is
// checked against what that command line means, one by one.

func translateFile(t *testing.T, name string) *Translation {
	t.Helper()
	raw, err := os.ReadFile("testdata/" + name + ".argv")
	if err != nil {
		t.Fatal(err)
	}
	tr, err := Translate(strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n"))
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func check(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s = %#v, want %#v", what, got, want)
	}
}

func TestMicrovmVolumesVirtiofsTap(t *testing.T) {
	tr := translateFile(t, "microvm-volumes-virtiofs-tap")
	c := tr.Config
	check(t, "vcpus (microvm.vcpu=2)", [2]uint32{c.Cpus.BootVcpus, c.Cpus.MaxVcpus}, [2]uint32{2, 2})
	check(t, "memory bytes (microvm.mem=1024)", c.Memory.Size, uint64(1024<<20))
	check(t, "shared memory (virtiofs needs it)", c.Memory.Shared, true)
	check(t, "mergeable (not with shared)", c.Memory.Mergeable, false)
	check(t, "kernel", *c.Payload.Kernel, "/nix/store/aaaa-linux-6.12.30-dev/vmlinux")
	check(t, "initramfs", *c.Payload.Initramfs, "/nix/store/bbbb-initrd-linux-6.12.30/initrd")
	check(t, "cmdline keeps init= and regInfo=", strings.Contains(*c.Payload.Cmdline, " init=/nix/store/cccc-nixos-system-web-25.11/init regInfo=/nix/store/dddd-closure-info/registration"), true)
	check(t, "firmware", c.Payload.Firmware, (*string)(nil))
	check(t, "one volume", len(c.Disks), 1)
	d := c.Disks[0]
	check(t, "volume path", *d.Path, "var.img")
	check(t, "volume direct=off readonly=off", [2]bool{d.Direct, d.Readonly}, [2]bool{false, false})
	check(t, "volume image_type=raw", d.ImageType, "Raw")
	check(t, "volume queues (tapMultiQueue: vcpu)", d.NumQueues, uint64(2))
	check(t, "one share", len(c.Fs), 1)
	check(t, "share tag/socket", [2]string{c.Fs[0].Tag, c.Fs[0].Socket}, [2]string{"ro-store", "web-virtiofs-ro-store.sock"})
	check(t, "one tap", len(c.Net), 1)
	n := c.Net[0]
	check(t, "tap name", *n.Tap, "vm-web")
	check(t, "tap mac", *n.Mac, "02:00:00:00:00:01")
	check(t, "tap queues (2*vcpu)", n.NumQueues, uint64(4))
	check(t, "no fds for a tap", n.FDs, []int(nil))
	check(t, "serial tty (journal gets the console)", c.Serial.Mode, "Tty")
	check(t, "console null", c.Console.Mode, "Null")
	check(t, "watchdog", c.Watchdog, true)
	check(t, "no vsock without microvm.vsock.cid", c.Vsock, (*VsockConfig)(nil))
	check(t, "--platform '' gives a default platform", *c.Platform, PlatformConfig{NumPciSegments: 1, IommuAddressWidthBits: 64, VfioP2PDma: true})
	check(t, "no balloon", c.Balloon, (*BalloonConfig)(nil))
	check(t, "VMM args", tr.VMMArgs, []string{"--seccomp", "true"})
	check(t, "api socket", tr.APISocket, "web.sock")
	check(t, "no notify socket", tr.NotifySocket, "")
}

func TestMicrovmMacvtap(t *testing.T) {
	tr := translateFile(t, "microvm-macvtap")
	c := tr.Config
	check(t, "memory (mem=512, mergeable without virtiofs)", [2]any{c.Memory.Size, c.Memory.Mergeable}, [2]any{uint64(512 << 20), true})
	check(t, "store disk", *c.Disks[0].Path, "/nix/store/eeee-microvm-store-disk.erofs")
	check(t, "store disk read-only", c.Disks[0].Readonly, true)
	check(t, "store disk queues", c.Disks[0].NumQueues, uint64(2))
	n := c.Net[0]
	check(t, "macvtap fds opened by microvm-run (3, 4)", n.FDs, []int{3, 4})
	check(t, "queues = 2 per fd", n.NumQueues, uint64(2*len(n.FDs)))
	check(t, "macvtap has no tap name", n.Tap, (*string)(nil))
	check(t, "mac", *n.Mac, "02:00:00:00:00:02")
	check(t, "api socket", tr.APISocket, "mvt.sock")
}

func TestMicrovmBalloonVsock(t *testing.T) {
	tr := translateFile(t, "microvm-balloon-vsock")
	c := tr.Config
	check(t, "one vcpu", c.Cpus.BootVcpus, uint32(1))
	check(t, "memory", c.Memory.Size, uint64(2048<<20))
	check(t, "balloon size (initialBalloonMem=512)", c.Balloon.Size, uint64(512<<20))
	check(t, "balloon deflate_on_oom, free_page_reporting", [2]bool{c.Balloon.DeflateOnOOM, c.Balloon.FreePageReporting}, [2]bool{true, true})
	check(t, "vsock (microvm.vsock.cid=5)", *c.Vsock, VsockConfig{Cid: 5, Socket: "notify.vsock"})
	check(t, "platformOEMStrings kept", c.Platform.OemStrings, []string{"hello"})
	check(t, "vmm.notify_socket taken over, not forwarded", tr.NotifySocket, "vsock-stream:2:8888")
	check(t, "two disks", len(c.Disks), 2)
	check(t, "volume serial", *c.Disks[1].Serial, "data")
	check(t, "volume queues (no multiqueue with one vcpu)", c.Disks[1].NumQueues, uint64(1))
	check(t, "api socket", tr.APISocket, "bal.sock")
}

// TestMicrovmRunnerArgv evaluates microvm.nix's real runner (testdata/microvm-runner.nix) and
// checks that testdata/microvm-*.argv are exactly the command lines it builds, so the goldens
// above are microvm.nix's, not a reading of it. It needs nix-instantiate and the snapshots of
// nixpkgs' lib and microvm.nix in shared/third-party beside the repository (or
// $CREDLINK_SHARED); make nix evaluates the whole module with them.
func TestMicrovmRunnerArgv(t *testing.T) {
	nixInstantiate, err := exec.LookPath("nix-instantiate")
	if err != nil {
		t.Skip("nix-instantiate not installed (apt-get install nix-bin)")
	}
	// Where make nix (nixos-module/tests/run.sh) looks: $CREDLINK_SHARED, beside the repository,
	// or beside the main checkout of a git worktree.
	candidates := []string{os.Getenv("CREDLINK_SHARED"), "../../../shared"}
	if out, err := exec.Command("git", "rev-parse", "--path-format=absolute", "--git-common-dir").Output(); err == nil {
		candidates = append(candidates, filepath.Join(strings.TrimSpace(string(out)), "../../shared"))
	}
	var tarballs []string
	for _, c := range candidates {
		m, l := filepath.Join(c, "third-party/microvm.nix.tar.gz"), filepath.Join(c, "third-party/nixpkgs-lib.tar.gz")
		_, e1 := os.Stat(m)
		_, e2 := os.Stat(l)
		if c != "" && e1 == nil && e2 == nil {
			tarballs = []string{m, l}
			break
		}
	}
	if tarballs == nil {
		t.Skip("shared/third-party/{microvm.nix,nixpkgs-lib}.tar.gz not found beside the repository: set CREDLINK_SHARED")
	}
	dir := t.TempDir()
	for i, sub := range []string{"microvm", "nixlib"} {
		d := filepath.Join(dir, sub)
		os.Mkdir(d, 0o755)
		if out, err := exec.Command("tar", "-xzf", tarballs[i], "-C", d).CombinedOutput(); err != nil {
			t.Fatalf("tar: %v\n%s", err, out)
		}
	}
	cmd := exec.Command(nixInstantiate, "--eval", "--strict", "--json", "testdata/microvm-runner.nix",
		"--arg", "microvm", filepath.Join(dir, "microvm"), "--arg", "nixpkgsLib", filepath.Join(dir, "nixlib"))
	cmd.Env = append(os.Environ(), "NIX_STATE_DIR="+filepath.Join(dir, "state"), "HOME="+dir)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("nix-instantiate: %v\n%s", err, stderr.String())
	}
	var commands map[string]string
	if err := json.Unmarshal(out, &commands); err != nil {
		t.Fatal(err)
	}
	if len(commands) != 3 {
		t.Fatalf("want 3 shapes, got %d", len(commands))
	}
	for shape, line := range commands {
		words, err := shellWords(line)
		if err != nil || len(words) < 2 || !strings.HasSuffix(words[0], "/bin/cloud-hypervisor") {
			t.Fatalf("%s: %v %q", shape, err, words)
		}
		raw, err := os.ReadFile("testdata/microvm-" + shape + ".argv")
		if err != nil {
			t.Fatal(err)
		}
		if want := strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n"); !reflect.DeepEqual(words[1:], want) {
			t.Errorf("%s: microvm.nix builds\n%q\nbut testdata has\n%q", shape, words[1:], want)
		}
	}
}

// shellWords splits what lib.escapeShellArgs joined: words separated by blanks, single quotes
// around literal text, a backslash escaping the quote that escapeShellArgs puts between two
// quoted parts.
func shellWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	in, started := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case in && c == '\'':
			in = false
		case in:
			cur.WriteByte(c)
		case c == '\'':
			in, started = true, true
		case c == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
			started = true
		case c == ' ' || c == '\t' || c == '\n':
			if started {
				words = append(words, cur.String())
				cur.Reset()
				started = false
			}
		default:
			cur.WriteByte(c)
			started = true
		}
	}
	if in {
		return nil, fmt.Errorf("unbalanced quote")
	}
	if started {
		words = append(words, cur.String())
	}
	return words, nil
}
