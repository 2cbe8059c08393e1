// Command bench measures credlink against what users run instead, on this machine, in one run:
//
//	make bench            (or: go run ./test/bench -bin bin -out .cache/bench)
//
// Sections (each figure a median with its spread over repeated runs):
//
//  1. agent cost: exec → READY=1 with 5/100/255 credentials; idle RSS and RSS after 1,000
//     scrapes; /metrics latency p50/p99 at a fixed rate — beside Debian's
//     prometheus-node-exporter under the same load;
//  2. ack path: host-side time from the guest's first byte to READY=1 on NOTIFY_SOCKET, credlink's
//     authenticated exchange vs. the socat relay microvm.nix uses;
//  3. launch overhead: QEMU (TCG) boot to READY=1 through host-launcher vs. the same guest booted
//     by plain QEMU printing its own marker (needs the e2e assets);
//  4. scale: N concurrent local-mode launches: wall time until all are READY, launcher memory per
//     VM, failures;
//  5. codec and table benchmarks are `go test -bench` (make bench runs them), plus binary sizes.
//
// Results are printed as a Markdown table and written to OUT/results.md.
package main
