package launch

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/credlink/credlink/pkg/sdnotify"
)

const vmConfig = `{"cpus": {"boot_vcpus": 2, "max_vcpus": 2}, "memory": {"size": 536870912},
 "payload": {"kernel": "/var/lib/vms/web/vmlinux", "cmdline": "console=ttyS0", "initramfs": "/var/lib/vms/web/initrd"},
 "serial": {"mode": "Tty"}, "console": {"mode": "Off"},
 "platform": {"oem_strings": ["vendor:acme"]}}`

func chConfig(e *env, cfg string) *Config {
	p := filepath.Join(e.dir, "vm.json")
	os.WriteFile(p, []byte(cfg), 0o600)
	return e.config(&CloudHypervisor{Binary: testBin, VMConfig: p})
}

// TestCloudHypervisorAccepted boots through the fake's API: vm.create carries the OEM strings
// and the vsock device, vm.boot starts the guest, the real agent acknowledges over hybrid vsock.
func TestCloudHypervisorAccepted(t *testing.T) {
	e := newEnv(t)
	t.Setenv("CREDLINK_FAKE", "cloud-hypervisor")
	t.Setenv("FAKE_CH_AGENT", agentBin)
	t.Setenv("FAKE_CH_MANIFEST", filepath.Join(e.dir, "manifest.json"))
	c := chConfig(e, vmConfig)
	ctx, cancel := context.WithCancel(context.Background())
	var apiInfo string
	var apiDirMode os.FileMode
	out, err := c.Run(ctx, func(o Outcome) {
		// What another local user could read if the socket were not private: vm.info returns
		// the whole config, OEM strings included.
		socks, _ := filepath.Glob(filepath.Join(e.dir, "credlink-vm1-*", "api.sock"))
		if len(socks) == 1 {
			fi, _ := os.Stat(filepath.Dir(socks[0]))
			apiDirMode = fi.Mode().Perm()
			apiInfo = getInfo(socks[0])
		}
		cancel()
	})
	if err != nil || !out.Ready {
		t.Fatalf("Run: %v %+v\n%s", err, out, e.logs.String())
	}
	if out.Transport == "" || !strings.HasPrefix(out.Transport, "vsock:2:") || !strings.HasSuffix(out.Transport, " via hybrid-vsock") {
		t.Errorf("transport %q", out.Transport)
	}
	if apiDirMode != 0o700 {
		t.Errorf("API socket directory mode %v, want 0700", apiDirMode)
	}
	if !strings.Contains(apiInfo, "vendor:acme") || !strings.Contains(apiInfo, "io.systemd.credential") {
		t.Errorf("vm.info does not show the merged oem_strings (the documented exposure): %.200s", apiInfo)
	}
	if _, err := e.notify.Wait(time.Second, sdnotify.Has("READY", "1")); err != nil {
		t.Error(err)
	}
	e.assertClean()
}

func getInfo(sock string) string {
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	resp, err := c.Get("http://localhost/api/v1/vm.info")
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// The fake rejects what the real API rejects, and host-launcher reports it without values.
func TestCloudHypervisorRejects(t *testing.T) {
	tests := []struct {
		name, cfg, err string
	}{
		// (An unknown field never gets this far: plan refuses it, TestVMConfigFileRefused.)
		{"payload without kernel", `{"payload": {"cmdline": "x"}}`, "vm.create: cloud-hypervisor PUT vm.create: 400 VmConfig: payload with a kernel or firmware is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			t.Setenv("CREDLINK_FAKE", "cloud-hypervisor")
			c := chConfig(e, tt.cfg)
			_, err := c.Run(context.Background(), nil)
			if !errors.Is(err, ErrHypervisor) || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("err = %v\nwant %s", err, tt.err)
			}
			e.assertNoSecrets("error", err.Error())
			e.assertClean()
		})
	}
}

// The fake itself enforces ordering: boot before create is 404, power-button before boot is 405.
func TestFakeCloudHypervisorOrdering(t *testing.T) {
	e := newEnv(t)
	t.Setenv("CREDLINK_FAKE", "cloud-hypervisor")
	c := chConfig(e, vmConfig)
	p, _ := c.Prepare(mustAddr(t))
	m, err := c.Hypervisor.open(Spec{VM: c.VM, RuntimeDir: shortTempDir(t), GuestCID: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer m.channel().close()
	if err := m.load(p.Structures); err != nil {
		t.Fatal(err)
	}
	ch := m.(*chVM)
	if err := ch.startProcess(); err != nil {
		t.Fatal(err)
	}
	defer ch.shutdownVMM()
	ctx := context.Background()
	for i := 0; i < 100; i++ {
		if _, err := ch.call(ctx, http.MethodGet, "vmm.ping", nil); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	_, err = ch.call(ctx, http.MethodPut, "vm.boot", nil)
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 404 {
		t.Errorf("boot before create: %v", err)
	}
	if _, err := ch.call(ctx, http.MethodPut, "vm.create", nil); !errors.As(err, &ae) || ae.Status != 400 {
		t.Errorf("create without a body: %v", err)
	}
	if _, err := ch.call(ctx, http.MethodPut, "vm.create", ch.config); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.call(ctx, http.MethodPut, "vm.power-button", nil); !errors.As(err, &ae) || ae.Status != 405 {
		t.Errorf("power-button before boot: %v", err)
	}
	b, err := ch.call(ctx, http.MethodGet, "vm.info", nil)
	var info struct {
		State  string
		Config struct{ Vsock struct{ Cid int } }
	}
	if err != nil || json.Unmarshal(b, &info) != nil || info.State != "Created" || info.Config.Vsock.Cid != 3 {
		t.Errorf("vm.info: %v %+v", err, info)
	}
}

// TestAPIProxy: ch-remote's view through --api-proxy: lifecycle and read-only calls pass,
// vm.info comes back with the credentials redacted, and calls that could read guest memory or
// change the VM are refused.
func TestAPIProxy(t *testing.T) {
	e := newEnv(t)
	t.Setenv("CREDLINK_FAKE", "cloud-hypervisor")
	t.Setenv("FAKE_CH_AGENT", agentBin)
	t.Setenv("FAKE_CH_MANIFEST", filepath.Join(e.dir, "manifest.json"))
	c := chConfig(e, vmConfig)
	proxy := filepath.Join(e.dir, "ch-api.sock")
	c.Hypervisor.(*CloudHypervisor).APIProxy = proxy
	ctx, cancel := context.WithCancel(context.Background())
	type answer struct {
		code int
		body string
	}
	got := map[string]answer{}
	out, err := c.Run(ctx, func(Outcome) {
		client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", proxy)
		}}}
		for _, req := range []struct{ method, endpoint string }{
			{"GET", "vmm.ping"}, {"GET", "vm.info"}, {"PUT", "vm.create"}, {"PUT", "vm.snapshot"},
			{"PUT", "vm.coredump"}, {"PUT", "vm.add-disk"}, {"PUT", "vm.delete"}, {"GET", "vm.pause"},
		} {
			r, _ := http.NewRequest(req.method, "http://localhost/api/v1/"+req.endpoint, strings.NewReader("{}"))
			resp, err := client.Do(r)
			if err != nil {
				got[req.method+" "+req.endpoint] = answer{-1, err.Error()}
				continue
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			got[req.method+" "+req.endpoint] = answer{resp.StatusCode, string(b)}
		}
		cancel()
	})
	if err != nil || !out.Ready {
		t.Fatalf("Run: %v\n%s", err, e.logs.String())
	}
	if a := got["GET vmm.ping"]; a.code != 200 {
		t.Errorf("vmm.ping: %+v", a)
	}
	info := got["GET vm.info"]
	if info.code != 200 || !strings.Contains(info.body, `io.systemd.credential:API_KEY=[redacted 44 bytes]`) || !strings.Contains(info.body, "vendor:acme") {
		t.Errorf("vm.info: %+v", info)
	}
	e.assertNoSecrets("proxied vm.info", info.body)
	if strings.Contains(info.body, "credlink.key=") && !strings.Contains(info.body, "credlink.key=[redacted") {
		t.Error("the ack key leaked through vm.info")
	}
	for _, k := range []string{"PUT vm.create", "PUT vm.snapshot", "PUT vm.coredump", "PUT vm.add-disk", "PUT vm.delete", "GET vm.pause"} {
		if a := got[k]; a.code != 403 {
			t.Errorf("%s: %+v, want 403", k, a)
		}
	}
	if _, err := os.Stat(proxy); err == nil {
		t.Error("proxy socket left behind")
	}
}
