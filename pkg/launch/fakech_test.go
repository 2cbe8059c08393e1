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

import (
	"bytes"
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

	"github.com/credlink/credlink/pkg/smbios"
)

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
	Cpus     *chCpus     `json:"cpus,omitempty"`
	Memory   *chMemory   `json:"memory,omitempty"`
	Payload  *chPayload  `json:"payload"`
	Disks    []chDisk    `json:"disks,omitempty"`
	Net      []chNet     `json:"net,omitempty"`
	Rng      *chRng      `json:"rng,omitempty"`
	Serial   *chConsole  `json:"serial,omitempty"`
	Console  *chConsole  `json:"console,omitempty"`
	Vsock    *chVsockCfg `json:"vsock,omitempty"`
	Iommu    bool        `json:"iommu,omitempty"`
	Watchdog bool        `json:"watchdog,omitempty"`
	Pvpanic  bool        `json:"pvpanic,omitempty"`
	Platform *chPlatform `json:"platform,omitempty"`
}

type fakeCH struct {
	mu     sync.Mutex
	cfg    *chVmConfig
	state  string // "", Created, Running, Shutdown
	guest  *exec.Cmd
	runDir string
	quit   chan struct{}
}

func fakeCloudHypervisor() {
	var api string
	for i, a := range os.Args {
		if a == "--api-socket" && i+1 < len(os.Args) {
			api = strings.TrimPrefix(os.Args[i+1], "path=")
		}
	}
	if api == "" || len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "fake cloud-hypervisor: want exactly --api-socket path=P, got", os.Args[1:])
		os.Exit(1)
	}
	l, err := net.Listen("unix", api)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fake cloud-hypervisor:", err)
		os.Exit(1)
	}
	f := &fakeCH{runDir: filepath.Dir(api), quit: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/vmm.ping", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"build_version": "fake", "version": "v41.0-fake", "pid": os.Getpid()})
	})
	mux.HandleFunc("PUT /api/v1/vm.create", f.create)
	mux.HandleFunc("PUT /api/v1/vm.boot", f.boot)
	mux.HandleFunc("GET /api/v1/vm.info", f.info)
	mux.HandleFunc("PUT /api/v1/vm.power-button", f.powerButton)
	mux.HandleFunc("PUT /api/v1/vm.shutdown", f.powerButton)
	mux.HandleFunc("PUT /api/v1/vmm.shutdown", func(w http.ResponseWriter, r *http.Request) {
		f.stopGuest()
		w.WriteHeader(http.StatusNoContent)
		go func() { close(f.quit) }()
	})
	srv := &http.Server{Handler: mux}
	go srv.Serve(l)
	<-f.quit
	l.Close()
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
	d := json.NewDecoder(&body)
	d.DisallowUnknownFields()
	var cfg chVmConfig
	if err := d.Decode(&cfg); err != nil {
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
	f.cfg, f.state = &cfg, "Created"
	w.WriteHeader(http.StatusNoContent)
}

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
			go func() {
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
	json.NewEncoder(w).Encode(map[string]any{"config": f.cfg, "state": f.state})
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
	default:
		http.Error(w, "VM not booted", http.StatusMethodNotAllowed)
	}
}
