package launch

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/credlink/credlink/pkg/credential"
	"github.com/credlink/credlink/pkg/regfile"
	"github.com/credlink/credlink/pkg/smbios"
)

// CloudHypervisor is --hypervisor cloud-hypervisor. It drives cloud-hypervisor through its REST
// API (vmm/src/api/openapi/cloud-hypervisor.yaml): the process starts with nothing but
// --api-socket, and the operator's VmConfig, with the OEM strings and a vsock device merged
// in, goes over that socket (vm.create, then vm.boot), so no string is ever on a command line.
// The socket lives in the launcher's 0700 runtime directory because vm.info returns the whole
// config, OEM strings included, to anyone who can connect. The acknowledgement uses hybrid
// vsock on the VmConfig's vsock device, or one added with --guest-cid.
//
// The VM comes from --vm-config, or from cloud-hypervisor's own command line after -- (the
// drop-in: chargv.go, translated by package chconfig).
type CloudHypervisor struct {
	Binary   string // --cloud-hypervisor; default cloud-hypervisor
	VMConfig string // --vm-config: a VmConfig JSON file without secrets
	APIProxy string // --api-proxy: socket path for a filtered API for ch-remote (cloudhv_proxy.go)
	argv     []string
}

func init() { register(func() Hypervisor { return &CloudHypervisor{} }) }

// Name implements Hypervisor.
func (*CloudHypervisor) Name() string { return "cloud-hypervisor" }

func (h *CloudHypervisor) flags(fs *flag.FlagSet) {
	fs.StringVar(&h.Binary, "cloud-hypervisor", "cloud-hypervisor", "cloud-hypervisor binary `PATH`")
	fs.StringVar(&h.VMConfig, "vm-config", "", "cloud-hypervisor VmConfig JSON `FILE`, without secrets (or give cloud-hypervisor's own arguments after --)")
	fs.StringVar(&h.APIProxy, "api-proxy", "", "serve a filtered API for ch-remote on the socket `PATH` (vm.info redacted; memory-reading and device-changing calls refused)")
}

// chVM is one cloud-hypervisor launch.
type chVM struct {
	process
	h      *CloudHypervisor
	ch     *channel
	oem    []string
	api    string
	config map[string]any // the operator's VmConfig with our additions
	src    *chSource
	client *http.Client
	proxy  *apiProxy // --api-proxy, once booted
}

// chVsock is a VmConfig vsock device.
type chVsock struct {
	CID    uint32
	Socket string
}

func (h *CloudHypervisor) open(s Spec) (machine, error) {
	src, err := h.source()
	if err != nil {
		return nil, err
	}
	if src.apiSocket != "" {
		if h.APIProxy != "" && h.APIProxy != src.apiSocket {
			return nil, configErr("--api-proxy %s and cloud-hypervisor's --api-socket %s disagree; give one", h.APIProxy, src.apiSocket)
		}
		h.APIProxy = src.apiSocket
	}
	cfg := src.config
	vs, err := configVsock(cfg)
	if err != nil {
		return nil, err
	}
	if vs == nil {
		vs = &chVsock{CID: s.guestCID(), Socket: runtimePath(s, "vsock.sock")}
		cfg["vsock"] = map[string]any{"cid": vs.CID, "socket": vs.Socket}
	}
	ch := &chVM{h: h, api: runtimePath(s, "api.sock"), config: cfg, src: src}
	if ch.ch, err = hybridVsockChannel(vs.Socket, s.GuestNotify || src.notify); err != nil {
		return nil, err
	}
	ch.client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", ch.api)
		}}}
	bin := h.Binary
	if bin == "" {
		bin = "cloud-hypervisor"
	}
	// The VMM-level options of a translated command line (-v, --log-file, --seccomp, …) stay on
	// the process; the VM itself comes over the private API socket.
	ch.process = newProcess(exec.Command(bin, append([]string{"--api-socket", "path=" + ch.api}, src.vmmArgs...)...))
	ch.cmd.Stdout, ch.cmd.Stderr = s.Stdout, s.Stderr
	if src.tty {
		ch.cmd.Stdin = os.Stdin // --serial tty / --console tty read the VMM's stdin
	}
	return ch, nil
}

func (ch *chVM) channel() *channel { return ch.ch }

// smbiosStructures: cloud-hypervisor builds the one Type 11 structure itself and writes its
// count byte as oem_strings.len() as u8 (arch/src/x86_64/smbios.rs, setup_smbios), so more
// than 255 strings would wrap it.
func (*CloudHypervisor) smbiosStructures() (int, string) { return 1, "cloud-hypervisor" }

// load puts the OEM strings into the VmConfig's platform.oem_strings: the credentials first,
// the operator's own strings after them. setup counted those in the budget (otherOEM), and a
// guest whose systemd reads only the first 4 KiB of the structure still gets the control
// credentials and every credential that was checked to fit there.
func (ch *chVM) load(structures [][]string) error {
	oem := credential.Flatten(structures)
	ch.oem = oem
	plat, _ := ch.config["platform"].(map[string]any)
	if plat == nil {
		plat = map[string]any{}
		ch.config["platform"] = plat
	}
	var strs []any
	for _, s := range oem {
		strs = append(strs, s)
	}
	for _, s := range vmConfigOEM(ch.config) {
		strs = append(strs, s)
	}
	if len(strs) > smbios.MaxStrings {
		return configErr("the VM config's %d OEM strings and credlink's %d make %d; cloud-hypervisor builds one Type 11 structure of at most %d",
			len(strs)-len(oem), len(oem), len(strs), smbios.MaxStrings)
	}
	plat["oem_strings"] = strs
	return nil
}

// otherOEM implements otherOEMer: --vm-config's own platform.oem_strings share the Type 11
// structure, and so the SMBIOS budget, with the credentials.
func (ch *chVM) otherOEM() []string { return vmConfigOEM(ch.config) }

// vmConfigOEM returns the operator's own platform.oem_strings (checked by loadVMConfig); after
// load, the ones behind the credentials.
func vmConfigOEM(cfg map[string]any) []string {
	plat, _ := cfg["platform"].(map[string]any)
	list, _ := plat["oem_strings"].([]any)
	var out []string
	for _, v := range list {
		if s, ok := v.(string); ok && !strings.HasPrefix(s, credential.PrefixText) && !strings.HasPrefix(s, credential.PrefixBinary) {
			out = append(out, s)
		}
	}
	return out
}

// maxVMConfig bounds --vm-config: a VmConfig with every device is a few KiB.
const maxVMConfig = 1 << 20

// loadVMConfig reads --vm-config: a cloud-hypervisor VmConfig without secrets.
func loadVMConfig(path string) (map[string]any, error) {
	if path == "" {
		return nil, configErr("cloud-hypervisor needs --vm-config FILE (a VmConfig JSON) or its own arguments after --")
	}
	b, err := regfile.ReadPath(path, maxVMConfig) // a regular file, never blocking on a FIFO
	if err != nil {
		return nil, configErr("--vm-config %s: %v", path, err)
	}
	cfg, err := decodeVMConfig(b)
	if err != nil {
		return nil, configErr("--vm-config %s: %v", path, err)
	}
	if _, ok := cfg["payload"].(map[string]any); !ok {
		return nil, configErr("--vm-config %s: \"payload\" (kernel/firmware) is required by vm.create", path)
	}
	// The decoded strings, not the bytes: a JSON escape ("io.systemd\u002ecredential") hides
	// the prefix from a byte search, and vmConfigOEM would then drop the string unseen.
	if anyString(cfg, func(s string) bool { return strings.Contains(s, "io.systemd.credential") }) {
		return nil, configErr("--vm-config %s already contains systemd credentials; pass them with --credential so they never sit in a file", path)
	}
	if plat, ok := cfg["platform"].(map[string]any); ok {
		if _, ok := plat["oem_strings"]; ok {
			list, isList := plat["oem_strings"].([]any)
			if !isList {
				return nil, configErr("--vm-config %s: platform.oem_strings must be an array", path)
			}
			for i, v := range list {
				// SMBIOS strings end at a NUL, and an empty one would end the whole set.
				if s, ok := v.(string); !ok || s == "" || strings.IndexByte(s, 0) >= 0 {
					return nil, configErr("--vm-config %s: platform.oem_strings must be non-empty strings without NUL (element %d is not)", path, i)
				}
			}
		}
	}
	return cfg, nil
}

// anyString reports whether f holds for a string (object key or value) anywhere in v, a
// decoded JSON value.
func anyString(v any, f func(string) bool) bool {
	switch v := v.(type) {
	case string:
		return f(v)
	case []any:
		for _, e := range v {
			if anyString(e, f) {
				return true
			}
		}
	case map[string]any:
		for k, e := range v {
			if f(k) || anyString(e, f) {
				return true
			}
		}
	}
	return false
}

// configVsock returns the vsock device the operator's config already has, if any.
func configVsock(cfg map[string]any) (*chVsock, error) {
	v, ok := cfg["vsock"]
	if !ok {
		return nil, nil
	}
	m, ok := v.(map[string]any)
	sock, _ := m["socket"].(string)
	cidNum, _ := m["cid"].(json.Number)
	cid, err := cidNum.Int64()
	if !ok || sock == "" || err != nil || cid < 3 {
		return nil, configErr("--vm-config: vsock must be {\"cid\": N ≥ 3, \"socket\": PATH}")
	}
	return &chVsock{CID: uint32(cid), Socket: sock}, nil
}

// APIError is a non-2xx answer of the cloud-hypervisor API.
type APIError struct {
	Method, Path string
	Status       int
	Body         string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("cloud-hypervisor %s %s: %d %s", e.Method, e.Path, e.Status, strings.TrimSpace(e.Body))
}

// call performs one API request. Response bodies are never logged whole: vm.info would echo
// the OEM strings.
func (ch *chVM) call(ctx context.Context, method, endpoint string, body any) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://localhost/api/v1/"+endpoint, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := ch.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return ch.answer(method, endpoint, resp)
}

func (ch *chVM) start(ctx context.Context) error {
	if err := ch.startProcess(); err != nil {
		return fmt.Errorf("start cloud-hypervisor: %w", err)
	}
	// Wait for the API socket: ping until it answers.
	deadline := time.Now().Add(10 * time.Second)
	for {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		_, err := ch.call(pctx, http.MethodGet, "vmm.ping", nil)
		cancel()
		if err == nil {
			break
		}
		select {
		case <-ch.exit:
			return fmt.Errorf("cloud-hypervisor exited before its API came up: %s", describeExit(ch.err))
		case <-ctx.Done():
			_ = ch.terminate(time.Second)
			return fmt.Errorf("cloud-hypervisor set-up: %w", ctx.Err())
		default:
		}
		if time.Now().After(deadline) {
			_ = ch.cmd.Process.Kill()
			return fmt.Errorf("cloud-hypervisor API did not come up: %w", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := ch.call(ctx, http.MethodPut, "vm.create", ch.config); err != nil {
		_ = ch.shutdownVMM()
		return fmt.Errorf("vm.create: %w", err)
	}
	for i, n := range ch.src.addNets {
		if _, err := ch.callWithFDs(ctx, http.MethodPut, "vm.add-net", n.body, n.fds); err != nil {
			_ = ch.shutdownVMM()
			return fmt.Errorf("vm.add-net (--net #%d with fd=%v): %w", i+1, n.fds, err)
		}
	}
	if _, err := ch.call(ctx, http.MethodPut, "vm.boot", nil); err != nil {
		_ = ch.shutdownVMM()
		return fmt.Errorf("vm.boot: %w", err)
	}
	if ch.h.APIProxy != "" {
		p, err := startAPIProxy(ch, ch.h.APIProxy)
		if err != nil {
			_ = ch.shutdownVMM()
			return err
		}
		ch.proxy = p
	}
	return nil
}

func (ch *chVM) shutdownVMM() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := ch.call(ctx, http.MethodPut, "vmm.shutdown", nil)
	if !ch.waitExit(5 * time.Second) {
		return ch.terminate(time.Second)
	}
	return err
}

// stop presses the power button, waits for the guest to shut down, then shuts the VMM down.
// release closes the API proxy, whatever ended the launch.
func (ch *chVM) release() {
	if ch.proxy != nil {
		ch.proxy.close()
	}
}

func (ch *chVM) stop(timeout time.Duration) error {
	ch.release()
	if !ch.started() || ch.exited() {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	_, err := ch.call(ctx, http.MethodPut, "vm.power-button", nil)
	cancel()
	if err == nil {
		end := time.Now().Add(timeout)
		for time.Now().Before(end) {
			if ch.state() == "Shutdown" {
				break
			}
			select {
			case <-ch.exit:
				return nil
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return ch.shutdownVMM()
}

// state reads vm.info's state without keeping the rest (which holds the OEM strings).
func (ch *chVM) state() string {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	b, err := ch.call(ctx, http.MethodGet, "vm.info", nil)
	if err != nil {
		return ""
	}
	var info struct {
		State string `json:"state"`
	}
	_ = json.Unmarshal(b, &info)
	return info.State
}

// plan shows the command line and the API calls with the OEM strings redacted.
func (ch *chVM) plan() []string { return ch.planText() }
