// Package launch is host-launcher's logic: it loads a VM's credentials from systemd's
// $CREDENTIALS_DIRECTORY, checks them before anything starts, adds credlink's control
// credentials, starts the hypervisor with the credentials as SMBIOS Type 11 OEM strings without
// a secret ever reaching argv, the environment or disk, waits for the guest-agent's authenticated
// acknowledgement (package ack), and tells systemd READY=1 only then.
//
// Hypervisors:
//
//   - qemu: every OEM string goes through its own inherited pipe as -smbios type=11,path=/dev/fd/N;
//     the ack travels over vhost-vsock when /dev/vhost-vsock exists, else over a virtio-serial
//     port whose chardev connects to a socket in the launcher's private runtime directory.
//   - cloud-hypervisor: started with only --api-socket; the VM is created through the REST API
//     (vm.create with platform.oem_strings and the vsock device merged into the operator's
//     VmConfig, then vm.boot), so the strings never appear on a command line. The ack uses
//     hybrid vsock (the Unix socket "<vsock socket>_<port>").
//   - local: no VM; the guest-agent binary runs as a child on a generated sysfs tree and
//     acknowledges over a Unix socket. For the demo and tests.
//
// Exit codes (see ExitCode): 0 clean stop, 1 delivery not verified (rejected, timed out),
// 2 configuration error, 3 the hypervisor failed (crashed or exited before the acknowledgement).
package launch
