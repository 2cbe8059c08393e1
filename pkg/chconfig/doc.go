// Package chconfig translates a cloud-hypervisor command line into the VmConfig that
// cloud-hypervisor's REST API takes (PUT /api/v1/vm.create), so that host-launcher can be
// dropped in where a unit (or microvm.nix's microvm-run) would exec cloud-hypervisor.
//
// The translation mirrors cloud-hypervisor's own CLI parser (cloud-hypervisor/src/main.rs,
// option_parser/src/lib.rs, vmm/src/config.rs VmConfig::parse and the *Config::parse functions,
// JSON field names from vmm/src/vm_config.rs), read at commit ae44c297 (2026-08-22):
//
//   - argv: clap's grammar as cloud-hypervisor declares it — "--opt value" and "--opt=value",
//     multi-value options (--disk, --net, --fs, --device, …) take every following token up to
//     the next one starting with "-", single-value options may be given once, -v counts.
//   - option strings: "key=value,key=[a,b],key=\"quoted,text\"" split by split_commas (brackets
//     and double quotes protect commas), values trimmed, unknown keys refused, the last of a
//     repeated key wins, double quotes removed by dequote (a doubled quote outside quotes is a
//     literal quote), lists (IntegerList, StringList) parsed from the raw value as
//     cloud-hypervisor does — StringList elements keep their quotes.
//   - defaults: the CLI's own (--cpus boot=1,max_phys_bits=46, --memory size=512M,
//     --rng src=/dev/urandom, --console tty, --serial null), so the VmConfig equals what
//     cloud-hypervisor would have built from the same argv.
//
// What it cannot reproduce faithfully it refuses with an error naming the option (and key):
// options whose effect lives outside a VmConfig (--restore, --api-socket fd=, --event-monitor
// fd=), file descriptors that vm.create cannot carry except --net fd= (returned separately so
// the caller sends them with vm.add-net over SCM_RIGHTS), and options or keys this package
// does not model (rate limiters, memory zones, NUMA, pmem, vDPA, TPM, …; use host-launcher
// --vm-config for those). Options that configure the VMM process rather than the VM (-v,
// --log-file, --log-format, --seccomp, --event-monitor path=, --no-shutdown, --dbus-*) are
// returned in Translation.VMMArgs to be passed on to the process unchanged.
//
// Systemd credentials in --platform oem_strings are refused (they would be on a command line),
// and so are empty strings (an empty SMBIOS string ends the set: what follows would be lost);
// the one exception is vmm.notify_socket, which is returned in Translation.NotifySocket for the
// caller to take over rather than forwarded.
package chconfig
