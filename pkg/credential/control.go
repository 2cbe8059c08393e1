package credential

// Control credentials: what host-launcher adds to a VM's credentials so that the guest-agent
// can answer (see package ack), and what the agent looks for. Both sides read these names from
// here; a manifest cannot list them and verification never counts them as unexpected.
const (
	AckCredential = "credlink.ack" // where to acknowledge: an ack.Address, e.g. "vsock:2:1234"
	KeyCredential = "credlink.key" // the per-launch 32-byte MAC key
	VMCredential  = "credlink.vm"  // the VM's name, echoed in the report
	// NotifySocketCredential is systemd's own (v254+): where the guest's PID 1 sends READY=1.
	// host-launcher --wait-guest-boot delivers it; it is not the guest's business to verify.
	NotifySocketCredential = "vmm.notify_socket"
)

// IsControl reports whether name is one of the control credentials.
func IsControl(name string) bool {
	return name == AckCredential || name == KeyCredential || name == VMCredential || name == NotifySocketCredential
}
