package launch

import (
	"bytes"
	"encoding/json"
	"strings"

	"github.com/credlink/credlink/pkg/credential"
	"github.com/credlink/credlink/pkg/smbios"
)

// PlanFormat names the JSON form of a plan (host-launcher plan --format json). Fields are only
// ever added within one format; a change of meaning gets a new name.
const PlanFormat = "credlink-plan/1"

// PlanRuntimeDir stands in plans for the launch's private runtime directory, whose name is
// random, so that two plans of the same launch compare equal.
const PlanRuntimeDir = "$RUNTIME"

// PlanReport is a launch as `host-launcher plan --format json` prints it: everything run would
// do, without starting anything, and without a credential value.
type PlanReport struct {
	Format     string `json:"format"` // PlanFormat
	VM         string `json:"vm"`
	Hypervisor string `json:"hypervisor"`
	// Credentials in OEM string order: credlink's control credentials, then the operator's.
	Credentials []PlanCredential `json:"credentials"`
	// Type11Structures is the size in bytes of each SMBIOS Type 11 structure the guest gets, in
	// order (qemu splits more than 255 strings over several; cloud-hypervisor builds one, the
	// operator's own OEM strings included).
	Type11Structures []int   `json:"type11_structures"`
	Ack              PlanAck `json:"ack"`
	// GuestNotify is the vmm.notify_socket address given to the guest when READY=1 also waits
	// for the guest's systemd (--wait-guest-boot, or a vmm.notify_socket OEM string in the
	// cloud-hypervisor command line); empty otherwise.
	GuestNotify string `json:"guest_notify,omitempty"`
	// Exec is the hypervisor's (or local agent's) argv. It holds no credential.
	Exec            []string  `json:"exec"`
	CloudHypervisor *PlanCHVM `json:"cloud_hypervisor,omitempty"`
	// Warnings are what is allowed but likely a mistake (an empty credential without
	// --manifest); the launch would log each. Absent when none.
	Warnings []string `json:"warnings,omitempty"`
}

// PlanCredential describes one delivered credential by name and size only.
type PlanCredential struct {
	Name     string `json:"name"`
	Bytes    int    `json:"bytes"`    // decoded length
	Encoding string `json:"encoding"` // text or binary (io.systemd.credential.binary:, base64)
	Control  bool   `json:"control"`  // credlink.ack, credlink.key, credlink.vm, vmm.notify_socket
}

// PlanAck is where and how long host-launcher waits for the guest-agent.
type PlanAck struct {
	Address   string `json:"address"`   // credlink.ack as the guest sees it; the port is random per launch
	Transport string `json:"transport"` // vsock, hybrid-vsock, virtio-serial, unix
	// TimeoutSeconds is --ack-timeout in seconds, to the millisecond (never below
	// MinAckTimeout, so JSON prints it as a plain decimal: 300, 1.5).
	TimeoutSeconds float64 `json:"timeout_seconds"`
	OnFailure      string  `json:"on_failure"`
}

// PlanCHVM is what goes over cloud-hypervisor's private API socket, in order: vm.create with
// VmConfig, vm.add-net for each of AddNet (with its descriptors over SCM_RIGHTS), vm.boot.
type PlanCHVM struct {
	APISocket string `json:"api_socket"` // private: PlanRuntimeDir/api.sock
	// APIProxy is the filtered API socket for ch-remote (--api-proxy, or the command line's
	// --api-socket); empty when none.
	APIProxy string `json:"api_proxy,omitempty"`
	// VmConfig is the vm.create body: platform.oem_strings lists every credential as
	// "io.systemd.credential:NAME=[redacted N bytes]".
	VmConfig map[string]any   `json:"vm_config"`
	AddNet   []map[string]any `json:"add_net,omitempty"` // NetConfig bodies; "fds" are host-launcher's descriptor numbers
}

// PlanJSON validates everything and returns the PlanReport as indented JSON.
func (c *Config) PlanJSON() ([]byte, error) {
	vm, p, cleanup, err := c.setup()
	defer cleanup()
	if err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(c.planReport(vm, p), "", "  ")
	if err != nil {
		return nil, err
	}
	// The private directory's name is random; a plan should not be.
	quoted, _ := json.Marshal(p.runDir)
	b = bytes.ReplaceAll(b, quoted[1:len(quoted)-1], []byte(PlanRuntimeDir))
	return append(b, '\n'), nil
}

// planReport describes a set-up launch.
func (c *Config) planReport(vm machine, p *Prepared) PlanReport {
	t := vm.channel()
	r := PlanReport{Format: PlanFormat, VM: c.VM, Hypervisor: c.Hypervisor.Name(),
		Ack:         PlanAck{Address: t.addr.String(), Transport: t.kind, TimeoutSeconds: float64(c.AckTimeout.Milliseconds()) / 1000, OnFailure: c.OnFailure},
		GuestNotify: t.notifyAddr}
	for _, st := range p.Structures {
		r.Type11Structures = append(r.Type11Structures, smbios.StructureSize(st))
	}
	for _, s := range p.OEM {
		name, size, enc, _ := credential.OEMStringInfo(s)
		r.Credentials = append(r.Credentials, PlanCredential{Name: name, Bytes: size, Encoding: enc.String(), Control: credential.IsControl(name)})
	}
	r.Warnings = c.warnings(p)
	if pe, ok := vm.(interface{ planExec() []string }); ok {
		r.Exec = pe.planExec()
	}
	if ch, ok := vm.(*chVM); ok {
		r.CloudHypervisor = ch.planCH()
		// The structure also holds the operator's own plain OEM strings.
		var all []string
		for _, s := range ch.config["platform"].(map[string]any)["oem_strings"].([]any) {
			all = append(all, s.(string))
		}
		r.Type11Structures = []int{smbios.StructureSize(all)}
	}
	return r
}

func (p *process) planExec() []string { return append([]string{}, p.cmd.Args...) }

// planCH is the API side of a cloud-hypervisor plan, OEM strings redacted.
func (ch *chVM) planCH() *PlanCHVM {
	cfg := map[string]any{}
	for k, v := range ch.config {
		cfg[k] = v
	}
	plat := map[string]any{}
	for k, v := range ch.config["platform"].(map[string]any) {
		plat[k] = v
	}
	var oem []string
	for _, s := range plat["oem_strings"].([]any) {
		oem = append(oem, credential.RedactOEMString(s.(string)))
	}
	plat["oem_strings"] = oem
	cfg["platform"] = plat
	out := &PlanCHVM{APISocket: ch.api, APIProxy: ch.h.APIProxy, VmConfig: cfg}
	for _, n := range ch.src.addNets {
		body := map[string]any{}
		for k, v := range n.body {
			body[k] = v
		}
		body["fds"] = n.fds
		out.AddNet = append(out.AddNet, body)
	}
	return out
}

// planText is the cloud-hypervisor part of the text plan.
func (ch *chVM) planText() []string {
	b, _ := json.MarshalIndent(ch.planCH().VmConfig, "", "  ")
	out := []string{"exec: " + strings.Join(ch.cmd.Args, " "), "PUT /api/v1/vm.create (over the private API socket):", string(b)}
	for _, n := range ch.planCH().AddNet {
		nb, _ := json.Marshal(n)
		out = append(out, "PUT /api/v1/vm.add-net with the descriptors over SCM_RIGHTS: "+string(nb))
	}
	out = append(out, "PUT /api/v1/vm.boot")
	if ch.h.APIProxy != "" {
		out = append(out, "filtered API for ch-remote at "+ch.h.APIProxy)
	}
	return out
}
