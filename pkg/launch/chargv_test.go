package launch

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"

	"github.com/credlink/credlink/pkg/chconfig"
	"github.com/credlink/credlink/pkg/credential"
	"github.com/credlink/credlink/pkg/smbios"
)

// These tests run the drop-in path — cloud-hypervisor's own command line after -- — against
// the fake cloud-hypervisor of fakech_test.go (built from the OpenAPI spec and the VMM's
// source, not the real binary, which cannot run here) with the real guest-agent as its guest.

// microvmArgv is microvm.nix's runner command line for a VM with balloon + vsock (the shape of
// pkg/chconfig/testdata/microvm-balloon-vsock.argv), its sockets moved into dir.
func microvmArgv(dir string) []string {
	return []string{"--cpus", "boot=1", "--watchdog", "--kernel", "/nix/store/aaaa-linux-6.12.30-dev/vmlinux",
		"--initramfs", "/nix/store/bbbb-initrd-linux-6.12.30/initrd",
		"--cmdline", "earlyprintk=ttyS0 console=ttyS0 reboot=t panic=-1 root=fstab init=/nix/store/cccc-nixos-system-bal/init",
		"--seccomp", "true", "--memory", "mergeable=on,shared=off,size=2048M",
		"--platform", "oem_strings=[hello,io.systemd.credential:vmm.notify_socket=vsock-stream:2:8888]",
		"--console", "null", "--serial", "null", "--vsock", "cid=5,socket=" + filepath.Join(dir, "notify.vsock"),
		"--balloon", "deflate_on_oom=on,free_page_reporting=on,size=512M",
		"--disk", "num_queues=1,path=/nix/store/eeee-microvm-store-disk.erofs,readonly=on",
		"--api-socket", filepath.Join(dir, "bal.sock")}
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func unixClient(path string) *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", path)
	}}}
}

// TestCloudHypervisorArgvDropIn: microvm.nix's command line, unchanged, after --. The VM the
// fake receives is the translation plus the credentials; the VMM-level options stay on the
// process; the caller's --api-socket serves what microvm-balloon (vm.resize), ch-remote
// (vm.info, vmm.ping) and microvm-shutdown (vm.power-button) send; the caller's
// vmm.notify_socket is served by host-launcher, so READY=1 waits for the guest's own READY=1.
func TestCloudHypervisorArgvDropIn(t *testing.T) {
	e := newEnv(t)
	rec := t.TempDir()
	t.Setenv("CREDLINK_FAKE", "cloud-hypervisor")
	t.Setenv("FAKE_CH_AGENT", agentBin)
	t.Setenv("FAKE_CH_MANIFEST", filepath.Join(e.dir, "manifest.json"))
	t.Setenv("FAKE_CH_RECORD", rec)
	t.Setenv("FAKE_CH_GUEST_READY_AFTER", "300ms")
	c := e.config(&CloudHypervisor{Binary: testBin, argv: microvmArgv(e.dir)})
	userAPI := filepath.Join(e.dir, "bal.sock")
	got := map[string]int{}
	var info string
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out, err := c.Run(ctx, func(Outcome) {
		defer cancel() // if the power button did not get through, stop anyway: fail, never hang
		client := unixClient(userAPI)
		for _, r := range []struct{ method, endpoint, body string }{
			{"GET", "vmm.ping", ""} /* ch-remote resize --balloon 256M (microvm-balloon) */, {"PUT", "vm.resize", `{"desired_vcpus":null,"desired_ram":null,"desired_balloon":268435456}`}, {"GET", "vm.info", ""},
			{"PUT", "vm.add-net", `{"tap":"evil"}`}, {"PUT", "vm.power-button", ""}, // microvm-shutdown: the guest powers off
		} {
			req, _ := http.NewRequest(r.method, "http://localhost/api/v1/"+r.endpoint, strings.NewReader(r.body))
			resp, err := client.Do(req)
			if err != nil {
				got[r.endpoint] = -1
				continue
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			got[r.endpoint] = resp.StatusCode
			if r.endpoint == "vm.info" {
				info = string(b)
			}
		}
	})
	if err != nil || !out.Ready {
		t.Fatalf("Run: %v %+v\n%s", err, out, e.logs.String())
	}
	if !out.GuestBootWaited {
		t.Error("the command line's vmm.notify_socket did not make READY=1 wait for the guest's systemd")
	}
	for ep, want := range map[string]int{"vmm.ping": 200, "vm.resize": 204, "vm.info": 200, "vm.add-net": 403, "vm.power-button": 204} {
		if got[ep] != want {
			t.Errorf("%s through --api-socket: %d, want %d", ep, got[ep], want)
		}
	}
	e.assertNoSecrets("vm.info through --api-socket", info)
	if !strings.Contains(info, "API_KEY=[redacted 44 bytes]") {
		t.Errorf("vm.info not redacted as expected: %s", info)
	}
	var resize map[string]any
	readJSON(t, filepath.Join(rec, "resize.json"), &resize)
	if resize["desired_balloon"] != float64(268435456) {
		t.Errorf("vm.resize reached the VMM as %v", resize)
	}

	var args []string
	readJSON(t, filepath.Join(rec, "args.json"), &args)
	if len(args) != 4 || args[0] != "--api-socket" || args[1] == "path="+userAPI || !reflect.DeepEqual(args[2:], []string{"--seccomp", "true"}) {
		t.Errorf("cloud-hypervisor argv = %q: want the private API socket and the VMM options", args)
	}

	// The VM the fake received is the translation, field by field, plus our OEM strings.
	var sent map[string]any
	readJSON(t, filepath.Join(rec, "create.json"), &sent)
	tr, err := chconfig.Translate(microvmArgv(e.dir))
	if err != nil {
		t.Fatal(err)
	}
	var want map[string]any
	b, _ := json.Marshal(tr.Config)
	json.Unmarshal(b, &want)
	for k, v := range want {
		if k == "platform" {
			continue
		}
		if !reflect.DeepEqual(sent[k], v) {
			t.Errorf("vm.create %s = %v, want %v", k, sent[k], v)
		}
	}
	for k := range sent {
		if _, ok := want[k]; !ok {
			t.Errorf("vm.create has %s, which the command line did not ask for", k)
		}
	}
	var redacted []string
	for _, s := range sent["platform"].(map[string]any)["oem_strings"].([]any) {
		redacted = append(redacted, credential.RedactOEMString(s.(string)))
	}
	oem := strings.Join(redacted, " ") // never print a value, even when failing
	for _, s := range []string{"hello", "io.systemd.credential:API_KEY=[redacted 44 bytes]", "io.systemd.credential:credlink.ack=[redacted", "io.systemd.credential:vmm.notify_socket=[redacted"} {
		if !strings.Contains(oem, s) {
			t.Errorf("oem_strings lack %q: %s", s, oem)
		}
	}
	if strings.Contains(fmt.Sprint(sent["platform"]), "vsock-stream:2:8888") {
		t.Error("the caller's vmm.notify_socket (microvm.nix's socat relay) was forwarded instead of taken over")
	}
	if _, err := os.Stat(userAPI); err == nil {
		t.Error("--api-socket left behind")
	}
	e.assertClean()
}

// TestCloudHypervisorArgvMacvtap: descriptors host-launcher inherited (microvm-run's macvtap
// fds) reach cloud-hypervisor over SCM_RIGHTS with vm.add-net before vm.boot, and every net
// keeps its command-line order.
func TestCloudHypervisorArgvMacvtap(t *testing.T) {
	e := newEnv(t)
	rec := t.TempDir()
	t.Setenv("CREDLINK_FAKE", "cloud-hypervisor")
	t.Setenv("FAKE_CH_AGENT", agentBin)
	t.Setenv("FAKE_CH_MANIFEST", filepath.Join(e.dir, "manifest.json"))
	t.Setenv("FAKE_CH_RECORD", rec)
	var fds []int
	var targets []string
	for _, dev := range []string{"/dev/null", "/dev/zero"} { // character devices stand in for /dev/tapN
		f, err := os.OpenFile(dev, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		fds = append(fds, int(f.Fd()))
		targets = append(targets, dev)
	}
	c := e.config(&CloudHypervisor{Binary: testBin, argv: []string{"--cpus", "boot=2", "--kernel", "/k", "--serial", "null", "--console", "off",
		"--net", "tap=vm-a,mac=02:00:00:00:00:01,num_queues=4",
		fmt.Sprintf("fd=[%d,%d],mac=02:00:00:00:00:02,num_queues=4", fds[0], fds[1])}})
	ctx, cancel := context.WithCancel(context.Background())
	out, err := c.Run(ctx, func(Outcome) { cancel() })
	if err != nil || !out.Ready {
		t.Fatalf("Run: %v %+v\n%s", err, out, e.logs.String())
	}
	var create map[string]any
	readJSON(t, filepath.Join(rec, "create.json"), &create)
	if _, ok := create["net"]; ok {
		t.Errorf("vm.create carried nets although one needs descriptors: %v", create["net"])
	}
	var first, second map[string]any
	readJSON(t, filepath.Join(rec, "add-net-0.json"), &first)
	readJSON(t, filepath.Join(rec, "add-net-1.json"), &second)
	if first["tap"] != "vm-a" || second["mac"] != "02:00:00:00:00:02" || second["fds"] != nil {
		t.Errorf("add-net bodies out of order or with fds: %v / %v", first, second)
	}
	var gotTargets []string
	readJSON(t, filepath.Join(rec, "add-net-1.fds"), &gotTargets)
	if !reflect.DeepEqual(gotTargets, targets) {
		t.Errorf("cloud-hypervisor received %q, host-launcher had %q", gotTargets, targets)
	}
	var none []string
	readJSON(t, filepath.Join(rec, "add-net-0.fds"), &none)
	if len(none) != 0 {
		t.Errorf("the tap net got descriptors: %q", none)
	}
}

// TestCloudHypervisorArgvRefused: what cannot be translated faithfully stops the launch before
// anything starts, naming the option.
func TestCloudHypervisorArgvRefused(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		argv []string
		want string
	}{
		{[]string{"--kernel", "/k", "--memory-zone", "id=z,size=1G"}, "--memory-zone"},
		{[]string{"--kernel", "/k", "--net", "fd=[1000],num_queues=2"}, "--net #1 fd=1000: not an open descriptor"},
		{[]string{"--kernel", "/k", "--net", fmt.Sprintf("fd=[%d],num_queues=2", pipeFD(t))}, "not a character device"},
		{[]string{"--kernel", "/k", "--net", "fd=[1],num_queues=2"}, "standard input, output and error"},
		{[]string{"--cpus", "boot=2"}, "--kernel or --firmware"},
		{[]string{"--kernel", "/k", "--platform", "oem_strings=[io.systemd.credential:API_KEY=x]"}, "--credential"},
		{[]string{"--kernel", "/k", "--platform", `oem_strings=["io.systemd.credential:API_KEY=x"]`}, "argument 4 has a systemd credential"},
		{[]string{"--kernel", "/k", "--platform", `oem_strings=[a,'io.systemd.credential.binary:K=eA==']`}, "argument 4 has a systemd credential"},
		{[]string{"--kernel", "/k", "--platform", `oem_strings=[io.systemd.credential:vmm.notify_socket=vsock:2:9,"io.systemd.credential:X=y"]`}, "argument 4 has a systemd credential"},
		{[]string{"--kernel", "/k", "--cmdline", "console=hvc0 systemd.set_credential=API_KEY:x"}, "argument 4 has a kernel command-line credential"},
		{[]string{"--kernel", "/k", "--cmdline", "systemd.set_credential_binary=K:eA=="}, "kernel command-line credential"},
		{[]string{"--kernel", "/k", "--api-socket", "/x"}, "--api-proxy /y and cloud-hypervisor's --api-socket /x disagree"},
	} {
		h := &CloudHypervisor{Binary: "/nonexistent/cloud-hypervisor", argv: tc.argv}
		if strings.Contains(tc.want, "--api-proxy") {
			h.APIProxy = "/y"
		}
		c := e.config(h)
		_, err := c.Run(context.Background(), nil)
		if ExitCode(err) != ExitConfig || err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v (exit %d), want a configuration error with %q", tc.argv, err, ExitCode(err), tc.want)
		}
	}
	c := e.config(&CloudHypervisor{argv: []string{"--kernel", "/k"}, VMConfig: "/some.json"})
	if _, err := c.Run(context.Background(), nil); err == nil || !strings.Contains(err.Error(), "not both") {
		t.Errorf("--vm-config with an argv: %v", err)
	}
	e.assertClean()
}

// TestPlanJSONCloudHypervisor: the documented credlink-plan/1 form for a drop-in launch.
func TestPlanJSONCloudHypervisor(t *testing.T) {
	e := newEnv(t)
	c := e.config(&CloudHypervisor{Binary: "/run/current-system/sw/bin/cloud-hypervisor", argv: microvmArgv(e.dir)})
	b, err := c.PlanJSON()
	if err != nil {
		t.Fatal(err)
	}
	e.assertNoSecrets("plan", string(b))
	var r PlanReport
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	if r.Format != PlanFormat || r.VM != "vm1" || r.Hypervisor != "cloud-hypervisor" || r.Ack.Transport != "hybrid-vsock" || !strings.HasPrefix(r.GuestNotify, "vsock-stream:2:") {
		t.Errorf("plan header: %+v", r)
	}
	names := map[string]PlanCredential{}
	for _, cr := range r.Credentials {
		names[cr.Name] = cr
	}
	if names["API_KEY"].Bytes != 44 || names["API_KEY"].Control || !names["credlink.key"].Control || names["ENVIRONMENT"].Encoding != "text" {
		t.Errorf("credentials: %+v", r.Credentials)
	}
	if want := []string{"/run/current-system/sw/bin/cloud-hypervisor", "--api-socket", "path=" + PlanRuntimeDir + "/api.sock", "--seccomp", "true"}; !reflect.DeepEqual(r.Exec, want) {
		t.Errorf("exec = %q, want %q", r.Exec, want)
	}
	ch := r.CloudHypervisor
	if ch == nil || ch.APIProxy != filepath.Join(e.dir, "bal.sock") || ch.APISocket != PlanRuntimeDir+"/api.sock" {
		t.Fatalf("cloud_hypervisor: %+v", ch)
	}
	if ch.VmConfig["balloon"].(map[string]any)["size"] != float64(512<<20) || ch.VmConfig["vsock"].(map[string]any)["cid"] != float64(5) {
		t.Errorf("vm_config: %v", ch.VmConfig)
	}
	oem := fmt.Sprint(ch.VmConfig["platform"].(map[string]any)["oem_strings"])
	if !strings.Contains(oem, "io.systemd.credential:API_KEY=[redacted 44 bytes]") || !strings.Contains(oem, "hello") {
		t.Errorf("oem_strings: %s", oem)
	}
	e.assertClean()
}

// pipeFD is an open descriptor that is not a tap device, like the Go runtime's own.
func pipeFD(t *testing.T) int {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	return int(r.Fd())
}

// TestPlanType11Bytes: with cloud-hypervisor the structure holds the operator's own OEM strings
// too, and the plan counts them.
func TestPlanType11Bytes(t *testing.T) {
	e := newEnv(t)
	c := e.config(&CloudHypervisor{argv: microvmArgv(e.dir)})
	vm, p, cleanup, err := c.setup()
	if err != nil {
		t.Fatal(err)
	}
	got, want := c.planReport(vm, p).Type11Structures, []int{smbios.StructureSize(append(p.OEM, "hello"))}
	cleanup()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("type11_structures = %v, want %v (the caller's \"hello\" included)", got, want)
	}
	e.assertClean()
}

// closingPeer is a Unix stream socket whose peer reads the whole first message, answers and
// closes at once (Connection: close), as cloud-hypervisor may: every later write(2), even an
// empty one, fails with EPIPE. sent limits how much one sendmsg takes, to force a short write.
type closingPeer struct {
	sent, limit int
	oob         []byte
	closed      bool
}

func (p *closingPeer) WriteMsgUnix(b, oob []byte, _ *net.UnixAddr) (int, int, error) {
	n := min(len(b), p.limit)
	p.sent, p.oob = n, oob
	p.closed = n == len(b) // the whole request arrived: answered and closed
	return n, len(oob), nil
}

func (p *closingPeer) Write(b []byte) (int, error) {
	if p.closed {
		return 0, syscall.EPIPE
	}
	p.sent += len(b)
	p.closed = true
	return len(b), nil
}

// TestSendWithRights: a request that one sendmsg delivered whole is not followed by an empty
// write, which fails with EPIPE once cloud-hypervisor has answered and closed (the cause of
// TestCloudHypervisorArgvMacvtap failing 23 times in 400 runs); a short sendmsg still has
// its rest written; a net without descriptors sends no control message.
func TestSendWithRights(t *testing.T) {
	msg := []byte("PUT /api/v1/vm.add-net HTTP/1.1\r\n\r\n{}")
	for _, tc := range []struct {
		name  string
		limit int
		fds   []int
		oob   bool
	}{
		{"whole, no fds", len(msg), nil, false},
		{"whole, fds", len(msg), []int{7, 8}, true},
		{"short sendmsg", 5, []int{7}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &closingPeer{limit: tc.limit}
			if err := sendWithRights(p, msg, tc.fds); err != nil {
				t.Fatalf("sendWithRights: %v", err)
			}
			if p.sent != len(msg) {
				t.Errorf("sent %d of %d bytes", p.sent, len(msg))
			}
			if (p.oob != nil) != tc.oob {
				t.Errorf("control message %v with fds %v", p.oob, tc.fds)
			}
		})
	}
}
