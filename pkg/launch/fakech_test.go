package launch

// A fake cloud-hypervisor built from its published OpenAPI spec
// (vmm/src/api/openapi/cloud-hypervisor.yaml, API v1): the endpoints host-launcher uses, with
// the same strictness the real VMM has — unknown fields and a missing payload are rejected,
// vm.boot before vm.create is 404, power-button before boot is 405 — and the hybrid vsock
// convention: a guest connection to CID 2, port P arrives on the Unix socket "<socket>_P".
// Its "guest" is the real guest-agent reading the VM's OEM strings from a generated sysfs tree;
// since a host process cannot originate AF_VSOCK traffic, the fake maps the guest's
// credlink.ack "vsock:2:P" to "unix:<socket>_P" when it writes that tree, which is exactly the
// mapping hybrid vsock performs.
//
// Also from the spec and cloud-hypervisor's source (vmm/src/api/http/http_endpoint.rs,
// cloud-hypervisor/src/main.rs): every VmConfig field must be one the OpenAPI schema names (the
// real VMM silently ignores unknown fields, which would hide a translation error, so the fake is
// stricter); vm.add-net takes its tap descriptors as SCM_RIGHTS with the request and needs
// num_queues = 2 × descriptors; vm.resize, vm.power-button and vm.shutdown answer 204; the VMM
// exits when its guest powers off unless --no-shutdown; VMM-level options (-v, --seccomp, --log-file,
// --log-format, --event-monitor, --no-shutdown) are accepted after --api-socket and anything else
// is refused. FAKE_CH_RECORD=DIR makes it write what it received (args.json, create.json,
// add-net-N.json, add-net-N.fds with the received descriptors' /proc targets) for tests to check.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/credlink/credlink/pkg/chconfig"
	"github.com/credlink/credlink/pkg/smbios"
)

// fdConn collects the descriptors that arrive with a request (SCM_RIGHTS).
type fdConn struct {
	*net.UnixConn
	mu  sync.Mutex
	fds []int
}

func (c *fdConn) Read(b []byte) (int, error) {
	oob := make([]byte, unix.CmsgSpace(64*4))
	n, oobn, _, _, err := c.ReadMsgUnix(b, oob)
	if oobn > 0 {
		msgs, _ := unix.ParseSocketControlMessage(oob[:oobn])
		for i := range msgs {
			if fds, err := unix.ParseUnixRights(&msgs[i]); err == nil {
				c.mu.Lock()
				c.fds = append(c.fds, fds...)
				c.mu.Unlock()
			}
		}
	}
	return n, err
}

func (c *fdConn) take() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	fds := c.fds
	c.fds = nil
	return fds
}

type fdListener struct{ *net.UnixListener }

func (l fdListener) Accept() (net.Conn, error) {
	c, err := l.AcceptUnix()
	if err != nil {
		return nil, err
	}
	return &fdConn{UnixConn: c}, nil
}

type fdConnKey struct{}

// record writes what the fake received into $FAKE_CH_RECORD, if set.
func record(name string, data []byte) {
	if dir := os.Getenv("FAKE_CH_RECORD"); dir != "" {
		os.WriteFile(filepath.Join(dir, name), data, 0o600)
	}
}

type chPayload struct {
	Firmware  string `json:"firmware,omitempty"`
	Kernel    string `json:"kernel,omitempty"`
	Cmdline   string `json:"cmdline,omitempty"`
	Initramfs string `json:"initramfs,omitempty"`
	Igvm      string `json:"igvm,omitempty"`
	HostData  string `json:"host_data,omitempty"`
}

type chCpus struct {
	BootVcpus int   `json:"boot_vcpus"`
	MaxVcpus  int   `json:"max_vcpus"`
	KvmHyperv bool  `json:"kvm_hyperv,omitempty"`
	Nested    *bool `json:"nested,omitempty"`
}

type chMemory struct {
	Size      int64 `json:"size"`
	Mergeable bool  `json:"mergeable,omitempty"`
	Shared    bool  `json:"shared,omitempty"`
	Hugepages bool  `json:"hugepages,omitempty"`
}

type chDisk struct {
	Path     string `json:"path,omitempty"`
	Readonly bool   `json:"readonly,omitempty"`
	Direct   bool   `json:"direct,omitempty"`
	ID       string `json:"id,omitempty"`
}

type chNet struct {
	Tap  string `json:"tap,omitempty"`
	IP   string `json:"ip,omitempty"`
	Mask string `json:"mask,omitempty"`
	Mac  string `json:"mac,omitempty"`
	ID   string `json:"id,omitempty"`
}

type chConsole struct {
	File   string `json:"file,omitempty"`
	Socket string `json:"socket,omitempty"`
	Mode   string `json:"mode"`
	Iommu  bool   `json:"iommu,omitempty"`
}

type chVsockCfg struct {
	Cid        int64  `json:"cid"`
	Socket     string `json:"socket"`
	Iommu      bool   `json:"iommu,omitempty"`
	PciSegment int    `json:"pci_segment,omitempty"`
	ID         string `json:"id,omitempty"`
}

type chPlatform struct {
	NumPciSegments     int      `json:"num_pci_segments,omitempty"`
	IommuSegments      []int    `json:"iommu_segments,omitempty"`
	SystemSerialNumber string   `json:"system_serial_number,omitempty"`
	SerialNumber       string   `json:"serial_number,omitempty"`
	SystemUUID         string   `json:"system_uuid,omitempty"`
	UUID               string   `json:"uuid,omitempty"`
	OemStrings         []string `json:"oem_strings,omitempty"`
	Tdx                bool     `json:"tdx,omitempty"`
	SevSnp             bool     `json:"sev_snp,omitempty"`
}

type chRng struct {
	Src   string `json:"src"`
	Iommu bool   `json:"iommu,omitempty"`
}

type chVmConfig struct {
	Cpus    *chCpus     `json:"cpus,omitempty"`
	Memory  *chMemory   `json:"memory,omitempty"`
	Payload *chPayload  `json:"payload"`
	Disks   []chDisk    `json:"disks,omitempty"`
	Net     []chNet     `json:"net,omitempty"`
	Rng     *chRng      `json:"rng,omitempty"`
	Serial  *chConsole  `json:"serial,omitempty"`
	Console *chConsole  `json:"console,omitempty"`
	Vsock   *chVsockCfg `json:"vsock,omitempty"`
	Balloon *struct {
		Size int64 `json:"size"`
	} `json:"balloon,omitempty"`
	Iommu    bool        `json:"iommu,omitempty"`
	Watchdog bool        `json:"watchdog,omitempty"`
	Pvpanic  bool        `json:"pvpanic,omitempty"`
	Platform *chPlatform `json:"platform,omitempty"`
}

type fakeCH struct {
	mu         sync.Mutex
	cfg        *chVmConfig
	raw        map[string]any // the config as received (plus added nets), for vm.info
	addedNets  int
	noShutdown bool
	verbose    int // -v count: at 1 (Info) and above the real one logs each request's body
	quitOnce   sync.Once
	state      string // "", Created, Running, Shutdown
	guest      *exec.Cmd
	runDir     string
	quit       chan struct{}
	pid1       sync.WaitGroup // the fake guest systemd's notification, reported before exit
}

func fakeCloudHypervisor() {
	if len(os.Args) < 3 || os.Args[1] != "--api-socket" || !strings.HasPrefix(os.Args[2], "path=") {
		fmt.Fprintln(os.Stderr, "fake cloud-hypervisor: want --api-socket path=P first, got", os.Args[1:])
		os.Exit(1)
	}
	api := strings.TrimPrefix(os.Args[2], "path=")
	f := &fakeCH{runDir: filepath.Dir(api), quit: make(chan struct{})}
	for i := 3; i < len(os.Args); i++ { // the VMM-level options of main.rs
		a := os.Args[i]
		name, _, inline := strings.Cut(a, "=")
		switch {
		case strings.Trim(a, "-v") == "" && strings.HasPrefix(a, "-v"):
			f.verbose += len(a) - 1
		case a == "--no-shutdown":
			f.noShutdown = true
		case name == "--seccomp" || name == "--log-file" || name == "--log-format" || name == "--event-monitor":
			v := strings.TrimPrefix(a, name+"=")
			if !inline {
				if i+1 >= len(os.Args) {
					fmt.Fprintln(os.Stderr, "fake cloud-hypervisor:", a, "needs a value")
					os.Exit(1)
				}
				i++
				v = os.Args[i]
			}
			if name == "--seccomp" && v != "true" && v != "false" && v != "log" && v != "errno" {
				fmt.Fprintln(os.Stderr, "fake cloud-hypervisor: invalid --seccomp", v)
				os.Exit(1)
			}
		default:
			fmt.Fprintln(os.Stderr, "fake cloud-hypervisor: unexpected argument", a)
			os.Exit(1)
		}
	}
	args, _ := json.Marshal(os.Args[1:])
	record("args.json", args)
	ul, err := net.ListenUnix("unix", &net.UnixAddr{Name: api, Net: "unix"})
	if err != nil {
		fmt.Fprintln(os.Stderr, "fake cloud-hypervisor:", err)
		os.Exit(1)
	}
	l := fdListener{ul}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/vmm.ping", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"build_version": "fake", "version": "v41.0-fake", "pid": os.Getpid()})
	})
	mux.HandleFunc("PUT /api/v1/vm.create", f.create)
	mux.HandleFunc("PUT /api/v1/vm.boot", f.boot)
	mux.HandleFunc("GET /api/v1/vm.info", f.info)
	mux.HandleFunc("PUT /api/v1/vm.power-button", f.powerButton)
	mux.HandleFunc("PUT /api/v1/vm.shutdown", f.powerButton)
	mux.HandleFunc("PUT /api/v1/vm.add-net", f.addNet)
	mux.HandleFunc("PUT /api/v1/vm.resize", f.resize)
	mux.HandleFunc("PUT /api/v1/vmm.shutdown", func(w http.ResponseWriter, r *http.Request) {
		f.stopGuest()
		w.WriteHeader(http.StatusNoContent)
		go f.exit()
	})
	srv := &http.Server{Handler: mux, ConnContext: func(ctx context.Context, c net.Conn) context.Context {
		return context.WithValue(ctx, fdConnKey{}, c)
	}}
	go srv.Serve(l)
	<-f.quit
	l.Close()
	// The fake PID 1 reports how long the host held its connection only after the host closed
	// it, which may be just before the VMM is told to exit: give it a moment to say so.
	reported := make(chan struct{})
	go func() { f.pid1.Wait(); close(reported) }()
	select {
	case <-reported:
	case <-time.After(2 * time.Second):
	}
	os.Exit(0)
}

func (f *fakeCH) create(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var body bytes.Buffer
	body.ReadFrom(r.Body)
	if body.Len() == 0 {
		http.Error(w, "missing VmConfig body", http.StatusBadRequest)
		return
	}
	var raw map[string]any
	if err := json.Unmarshal(body.Bytes(), &raw); err != nil {
		http.Error(w, "invalid VmConfig: "+err.Error(), http.StatusBadRequest)
		return
	}
	if f.verbose > 0 {
		// vmm/src/api/mod.rs VmCreate::request: info!("API request event: VmCreate {config:?}"),
		// the derived Debug of VmConfig, OEM strings (credentials) included; the logger writes
		// to stderr or --log-file (cloud-hypervisor/src/main.rs start_vmm). The launch tests scan
		// our stderr for secrets, so passing -v again would fail them.
		fmt.Fprintf(os.Stderr, "cloud-hypervisor: INFO:vmm/src/api/mod.rs: API request event: VmCreate %+v\n", raw)
	}
	if err := chconfig.CheckSchema("VmConfig", raw); err != nil {
		http.Error(w, "invalid VmConfig: "+err.Error(), http.StatusBadRequest)
		return
	}
	if nets, ok := raw["net"].([]any); ok {
		for _, n := range nets {
			if _, hasFDs := n.(map[string]any)["fds"]; hasFDs {
				http.Error(w, "invalid VmConfig: fds in vm.create would be -1 (vmm/src/api/http/http_endpoint.rs VmCreate)", http.StatusBadRequest)
				return
			}
		}
	}
	var cfg chVmConfig
	if err := json.Unmarshal(body.Bytes(), &cfg); err != nil {
		http.Error(w, "invalid VmConfig: "+err.Error(), http.StatusBadRequest)
		return
	}
	if cfg.Payload == nil || (cfg.Payload.Kernel == "" && cfg.Payload.Firmware == "" && cfg.Payload.Igvm == "") {
		http.Error(w, "VmConfig: payload with a kernel or firmware is required", http.StatusBadRequest)
		return
	}
	if cfg.Vsock != nil && (cfg.Vsock.Cid < 3 || cfg.Vsock.Socket == "") {
		http.Error(w, "VmConfig: vsock needs cid >= 3 and socket", http.StatusBadRequest)
		return
	}
	if cfg.Platform != nil && len(cfg.Platform.OemStrings) > 255 {
		http.Error(w, "too many OEM strings", http.StatusBadRequest)
		return
	}
	if f.state != "" {
		http.Error(w, "VM already created", http.StatusInternalServerError)
		return
	}
	f.cfg, f.raw, f.state = &cfg, raw, "Created"
	record("create.json", body.Bytes())
	w.WriteHeader(http.StatusNoContent)
}

// addNet is vm.add-net before boot: the NetConfig joins the VM's config with the descriptors
// that came with the request (VmAddNet + attach_fds_to_cfg, NetConfig::validate).
func (f *fakeCH) addNet(w http.ResponseWriter, r *http.Request) {
	conn, _ := r.Context().Value(fdConnKey{}).(*fdConn)
	var fds []int
	if conn != nil {
		fds = conn.take()
	}
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()
	f.mu.Lock()
	defer f.mu.Unlock()
	var raw map[string]any
	if err := json.NewDecoder(r.Body).Decode(&raw); err != nil {
		http.Error(w, "invalid NetConfig: "+err.Error(), http.StatusBadRequest)
		return
	}
	if err := chconfig.CheckSchema("NetConfig", raw); err != nil {
		http.Error(w, "invalid NetConfig: "+err.Error(), http.StatusBadRequest)
		return
	}
	if f.state != "Created" {
		http.Error(w, "the fake only adds nets before boot", http.StatusInternalServerError)
		return
	}
	queues, _ := raw["num_queues"].(float64)
	if len(fds) > 0 && int(queues) != 2*len(fds) {
		http.Error(w, fmt.Sprintf("VnetQueueFdMismatch(%v, %d)", queues, 2*len(fds)), http.StatusInternalServerError)
		return
	}
	var targets []string
	for _, fd := range fds {
		t, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd))
		if err != nil {
			http.Error(w, "bad descriptor", http.StatusBadRequest)
			return
		}
		targets = append(targets, t)
	}
	nets, _ := f.raw["net"].([]any)
	f.raw["net"] = append(nets, raw)
	b, _ := json.Marshal(raw)
	record(fmt.Sprintf("add-net-%d.json", f.addedNets), b)
	t, _ := json.Marshal(targets)
	record(fmt.Sprintf("add-net-%d.fds", f.addedNets), t)
	f.addedNets++
	w.WriteHeader(http.StatusNoContent)
}

// resize is what microvm-balloon's `ch-remote resize --balloon` sends.
func (f *fakeCH) resize(w http.ResponseWriter, r *http.Request) {
	var body struct {
		DesiredVcpus   *int   `json:"desired_vcpus"`
		DesiredRAM     *int64 `json:"desired_ram"`
		DesiredBalloon *int64 `json:"desired_balloon"`
	}
	d := json.NewDecoder(r.Body)
	d.DisallowUnknownFields()
	if err := d.Decode(&body); err != nil {
		http.Error(w, "invalid VmResize: "+err.Error(), http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.state != "Running" {
		http.Error(w, "VM not running", http.StatusInternalServerError)
		return
	}
	if body.DesiredBalloon != nil && f.cfg.Balloon == nil {
		http.Error(w, "no balloon device", http.StatusInternalServerError)
		return
	}
	b, _ := json.Marshal(body)
	record("resize.json", b)
	w.WriteHeader(http.StatusNoContent)
}

func (f *fakeCH) exit() { f.quitOnce.Do(func() { close(f.quit) }) }

func (f *fakeCH) boot(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.state == "" {
		http.Error(w, "VM not created", http.StatusNotFound)
		return
	}
	if f.state == "Running" {
		http.Error(w, "VM already running", http.StatusInternalServerError)
		return
	}
	if err := f.startGuest(); err != nil {
		http.Error(w, "boot: "+err.Error(), http.StatusInternalServerError)
		return
	}
	f.state = "Running"
	w.WriteHeader(http.StatusNoContent)
}

// startGuest lays out the firmware tables a guest would see and runs the agent on them.
func (f *fakeCH) startGuest() error {
	var oem []string
	if f.cfg.Platform != nil {
		oem = f.cfg.Platform.OemStrings
	}
	for i, s := range oem {
		// Hybrid vsock: connect(CID 2, P) from the guest reaches "<socket>_P" on the host.
		if strings.HasPrefix(s, "io.systemd.credential:credlink.ack=vsock:2:") && f.cfg.Vsock != nil {
			port := strings.TrimPrefix(s, "io.systemd.credential:credlink.ack=vsock:2:")
			oem[i] = "io.systemd.credential:credlink.ack=unix:" + f.cfg.Vsock.Socket + "_" + port
		}
	}
	// A guest systemd (v254+) reporting READY=1 to vmm.notify_socket the way PID 1 does: one
	// connection, half-closed, then waiting for the host to close.
	for _, s := range oem {
		if rest, ok := strings.CutPrefix(s, "io.systemd.credential:vmm.notify_socket=vsock-stream:2:"); ok && f.cfg.Vsock != nil && os.Getenv("FAKE_CH_GUEST_READY_AFTER") != "" {
			delay, _ := time.ParseDuration(os.Getenv("FAKE_CH_GUEST_READY_AFTER"))
			path := f.cfg.Vsock.Socket + "_" + rest
			f.pid1.Add(1)
			go func() {
				defer f.pid1.Done()
				time.Sleep(delay)
				c, err := net.Dial("unix", path)
				if err != nil {
					fmt.Fprintln(os.Stderr, "fake guest systemd:", err)
					return
				}
				start := time.Now()
				c.Write([]byte("READY=1\nSTATUS=Startup finished"))
				c.(*net.UnixConn).CloseWrite()
				io.ReadAll(c) // PID 1 waits here for the host to close
				fmt.Fprintf(os.Stderr, "fake guest systemd: host closed after %v\n", time.Since(start))
				c.Close()
			}()
		}
	}
	tb, err := smbios.Build([][]string{oem}, smbios.EntryPoint64)
	if err != nil {
		return err
	}
	sys := filepath.Join(f.runDir, "fake-guest-sys")
	if err := tb.WriteSysfs(sys); err != nil {
		return err
	}
	agent := os.Getenv("FAKE_CH_AGENT")
	if agent == "" {
		return nil // a guest without an agent
	}
	f.guest = exec.Command(agent, "run", "--source", "smbios", "--sysfs", sys, "--manifest", os.Getenv("FAKE_CH_MANIFEST"), "--metrics-listen", "")
	f.guest.Stdout, f.guest.Stderr = os.Stderr, os.Stderr
	f.guest.Env = filterEnv(os.Environ(), "NOTIFY_SOCKET")
	return f.guest.Start()
}

func (f *fakeCH) stopGuest() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.guest != nil && f.guest.Process != nil {
		f.guest.Process.Signal(os.Interrupt)
		f.guest.Wait()
		f.guest = nil
	}
	if f.state == "Running" {
		f.state = "Shutdown"
	}
}

func (f *fakeCH) info(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.state == "" {
		http.Error(w, "VM not created", http.StatusNotFound)
		return
	}
	// Like the real one: the whole config, OEM strings included.
	json.NewEncoder(w).Encode(map[string]any{"config": f.raw, "state": f.state})
}

func (f *fakeCH) powerButton(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	state := f.state
	f.mu.Unlock()
	switch state {
	case "":
		http.Error(w, "VM not created", http.StatusNotFound)
	case "Running":
		f.stopGuest()
		w.WriteHeader(http.StatusNoContent)
		if !f.noShutdown { // the guest powered off: the VMM exits with it
			go func() { time.Sleep(50 * time.Millisecond); f.exit() }()
		}
	default:
		http.Error(w, "VM not booted", http.StatusMethodNotAllowed)
	}
}
