// Package launch is host-launcher's logic: it loads a VM's credentials from systemd's
// $CREDENTIALS_DIRECTORY, checks them before anything starts, adds credlink's control
// credentials, starts the hypervisor with the credentials as SMBIOS Type 11 OEM strings without
// a secret ever reaching argv, the environment or disk, waits for the guest-agent's authenticated
// acknowledgement (package ack), and tells systemd READY=1 only then.
//
// The package has one room per concern:
//
//   - config.go: Config (what host-launcher is told), loading and checking the credentials,
//     the control credentials, the SMBIOS budget (Prepare).
//   - launcher.go: the generic lifecycle (Plan, Run): STATUS=, the acknowledgement wait,
//     READY=1, the failure policy, the watchdog and shutdown. It never asks which hypervisor
//     it drives.
//   - hypervisor.go: the Hypervisor interface, the Spec a hypervisor receives, the machine
//     interface of one VM, and the registry with each hypervisor's flags (HypervisorFlags).
//   - channel.go: the host end of an acknowledgement channel and the constructors hypervisors
//     share (Unix socket, vhost-vsock, hybrid vsock), with the guest-notify listener.
//   - one file per hypervisor, each owning its options, flags and channel:
//     qemu.go and qemusmbios.go (by default each Type 11 structure built by credlink and passed
//     as a sealed memfd, -smbios file=/dev/fd/N, so any number of credentials and no exposure
//     to the path= overrun of QEMU 6.1 until its 2025 fix; or --smbios-delivery path, one
//     inherited pipe per string, -smbios type=11,path=/dev/fd/N; vhost-vsock when
//     /dev/vhost-vsock exists, else virtio-serial),
//     cloudhv.go and cloudhv_proxy.go (cloud-hypervisor: only --api-socket on the command line,
//     vm.create with platform.oem_strings over a private socket, hybrid vsock; the filtered
//     API for ch-remote) with chargv.go (the drop-in: cloud-hypervisor's own command line after
//     --, translated by package chconfig; tap descriptors through vm.add-net) and plan.go (the
//     credlink-plan/1 JSON of host-launcher plan --format json), local.go (no VM: the guest-agent as a child on a generated sysfs
//     tree, a Unix socket).
//   - process.go (a supervised child), guestnotify.go (the guest systemd's vmm.notify_socket).
//
// Adding a hypervisor is one file: a type with its options that implements Hypervisor (Name,
// flags, open, smbiosStructures) and registers itself in init; open returns a machine that owns
// its channel.
//
// Exit codes (see ExitCode): 0 clean stop, 1 delivery not verified (rejected, timed out),
// 2 configuration error, 3 the hypervisor failed (crashed or exited before the acknowledgement).
package launch
