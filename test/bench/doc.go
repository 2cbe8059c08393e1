// Command bench measures credlink against what users run instead, on this machine, in one run:
//
//	make bench            (or: go run ./test/bench -bin bin -out .cache/bench)
//	go run ./test/bench -only instr,launch -before main    (this tree beside another ref)
//
// Sections (each figure a median with its spread over repeated runs):
//
//  0. instr: instructions (valgrind callgrind; these VMs have no PMU for perf stat) from exec to
//     READY=1 and to the first byte of the acknowledgement for guest-agent with 5 and 253
//     credentials, and for host-launcher from exec to its exec of QEMU, with the phases in
//     between (runtime, each module's package initialisers, manifest, sysfs reads, verification,
//     MACs, exchange). Counts do not drift with the machine's load; they are the steering metric.
//     With -before REF, the same counts for REF's binaries are the peer column;
//  1. agent (agent cost): exec → READY=1 with 5/100/255 credentials; idle RSS and RSS after 1,000
//     scrapes; /metrics latency p50/p99 at a fixed rate — beside Debian's
//     prometheus-node-exporter under the same load;
//  2. ack (ack path): host-side time from the guest's first byte to READY=1 on NOTIFY_SOCKET, credlink's
//     authenticated exchange vs. the socat relay microvm.nix uses;
//  3. launch (launch overhead): QEMU (TCG) boot to READY=1 through host-launcher vs. the same guest booted
//     by plain QEMU printing its own marker (needs the e2e assets), split at that marker (QEMU
//     exec → marker, with the guest's own uptime there; marker → READY=1); -boots boots per arm,
//     each round in a random order and every boot after a -boot-gap pause (a boot right after
//     another one runs slower here); with -before REF, REF's launcher and agent boot the same
//     guest in the same rounds; the load average is noted;
//     launch-kvm (not in the default -only list; root; `make bench-kvm`): the same comparison
//     with the guest under KVM, the setting users run: boots L1 (test/nested/l1.sh, nested
//     KVM under TCG) and, inside it, interleaves plain QEMU -accel kvm with host-launcher acking
//     over vhost-vsock and over virtio-serial, each boot's time split at the guest's marker and
//     by the launcher's log (launchkvm.go says why each step of the method is there);
//  4. scale: N concurrent local-mode launches: wall time until all are READY, launcher memory per
//     VM, failures; scale-wait (scalewait.go; root, since the launchers are non-dumpable): N launchers waiting for acknowledgements with no
//     agent on the host (each with a stand-in QEMU that never boots), started a few at a time:
//     start rate, PSS and threads per launcher, host memory, CPU and notifications while they
//     wait, and the ceiling (kernel.pid_max, which counts threads, threads-max or memory; the
//     bench keeps 4,096 pids and 2 GiB for the rest of the machine). -raise-pid-max (root)
//     raises pid_max to systemd's 4194304 for the section and restores it; a later size's peer
//     is the first, the first size's is -before REF's launcher;
//  5. go: codec and table benchmarks are `go test -bench` (make bench runs them), plus binary sizes.
//
// Results are printed as a Markdown table and written to OUT/results.md.
package main
