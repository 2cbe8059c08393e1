// Package listen opens the host ends of the sockets a launch serves, with the checks each kind
// needs before a byte is read:
//
//   - [Unix]: a private (0600) Unix socket, replacing a stale socket but never another kind of
//     file, removed on Close; path length checked against sun_path. The acknowledgement in local
//     mode and over virtio-serial, cloud-hypervisor's filtered API proxy.
//   - [HybridVsock]: the Unix socket "<socket>_<port>" where cloud-hypervisor's and
//     Firecracker's hybrid vsock delivers a guest's connect(CID 2, port).
//   - [Vsock]: AF_VSOCK on every CID with a kernel-chosen port, wrapped in a [CIDFilter] that
//     closes connections from any other VM before a byte is read.
//
// The acknowledgement protocol served on them is package ack's; host-launcher's guest-notify
// listener (vmm.notify_socket) uses the same listeners.
package listen
