# Checks host-launcher's translation of microvm.nix's real cloud-hypervisor command lines, field
# by field, against what the microvm.nix declaration means (eval.nix `shapes.*.expect`):
#   nix-instantiate --eval --strict --json tests/plan-check.nix --arg tp DIR --arg planDir DIR
# planDir holds NAME.json = `host-launcher plan --format json` (credlink-plan/1) for each shape:
# run.sh runs the guest package's wrapper script with microvm-run's arguments, the wrapper runs
# the host's $CREDLINK_LAUNCH script, which runs host-launcher (`run` turned into `plan`).
# Field names and units: cloud-hypervisor's VmConfig (vmm/src/vm_config.rs): sizes in bytes,
# num_queues counts queues (a queue pair is 2), serial/console modes as enum names.
{ tp, planDir, libDir ? tp + "/lib/lib", microvmDir ? tp + "/microvm" }:
let
  lib = import ./stand-in/lib28.nix libDir;
  r = import ./eval.nix { inherit libDir microvmDir; };
  MiB = 1048576;

  check = name: if r.shapes.${name}.expect.hypervisor == "qemu" then checkQemu name else checkCH name;

  # qemu: microvm.nix's argv is passed on unchanged, the OEM strings through inherited descriptors
  # (sealed memfds or pipes), never a value on the command line.
  checkQemu = name:
    let
      e = r.shapes.${name}.expect;
      p = builtins.fromJSON (builtins.readFile (planDir + "/${name}.json"));
      argv = builtins.filter (a: a != "") (lib.splitString "\n" (builtins.readFile (planDir + "/${name}.argv")));
      smbios = lib.concatLists (lib.imap0 (i: a: lib.optional (a == "-smbios" && i + 1 < builtins.length p.exec) (builtins.elemAt p.exec (i + 1))) p.exec);
      creds = lib.listToAttrs (map (c: lib.nameValuePair c.name c) p.credentials);
      cases = {
        format = p.format == "credlink-plan/1" && p.vm == name && p.hypervisor == "qemu" && !(p ? cloud_hypervisor && p.cloud_hypervisor != null);
        argv-unchanged = lib.take (1 + builtins.length argv) p.exec == [ e.realHypervisor ] ++ argv && builtins.length argv > 20;
        machine = builtins.elem "q35,accel=kvm:tcg,acpi=on,mem-merge=on" argv;
        # microvm.nix's vhost-vsock device (vsock.cid) carries the acknowledgement; no second one
        vsock = e.vsockCid == null || (p.ack.transport == "vsock"
          && builtins.length (builtins.filter (a: lib.hasPrefix "vhost-vsock-pci" a) p.exec) == 1
          && builtins.elem "vhost-vsock-pci,guest-cid=${toString e.vsockCid}" p.exec);
        # either whole Type 11 structures in sealed memfds (-smbios file=/dev/fd/N, the default)
        # or one pipe per string (-smbios type=11,path=/dev/fd/N, --smbios-delivery path)
        oem-descriptors = let
          files = builtins.filter (v: builtins.match "file=/dev/fd/[0-9]+" v != null) smbios;
          paths = builtins.filter (v: builtins.match "type=11,path=/dev/fd/[0-9]+" v != null) smbios;
        in (files != [ ] && paths == [ ]) || (files == [ ] && builtins.length paths == builtins.length p.credentials);
        no-oem-values = !(builtins.any (v: lib.hasPrefix "type=11" v && !(lib.hasPrefix "type=11,path=/dev/fd/" v)) smbios);
        credentials = builtins.all (n: creds ? ${n} && !creds.${n}.control) (e.credentials ++ builtins.attrNames e.settings);
      };
    in
    map (c: "${name}: ${c}") (builtins.filter (c: !cases.${c}) (builtins.attrNames cases));

  checkCH = name:
    let
      e = r.shapes.${name}.expect;
      p = builtins.fromJSON (builtins.readFile (planDir + "/${name}.json"));
      ch = p.cloud_hypervisor;
      v = ch.vm_config;
      realCH = e.realHypervisor;
      queues = if e.vcpu > 1 then e.vcpu else 1;
      oem = v.platform.oem_strings;
      creds = lib.listToAttrs (map (c: lib.nameValuePair c.name c) p.credentials);
      netOf = i: if i.type == "tap" then lib.findFirst (n: (n.tap or null) == i.id) null (v.net or [ ])
        else lib.findFirst (n: (n.mac or null) == i.mac) null (ch.add_net or [ ]);
      expectedDisks =
        lib.optional e.storeOnDisk { path = e.storeDisk; readonly = true; }
        ++ map (vol: { path = vol.image; readonly = vol.readOnly; direct = vol.direct; }
                      // lib.optionalAttrs (vol.serial != null) { inherit (vol) serial; }) e.volumes;
      cases = {
        format = p.format == "credlink-plan/1" && p.vm == name && p.hypervisor == "cloud-hypervisor";
        # VMM-level options stay on the process, the VM goes through the private API socket
        exec = builtins.head p.exec == realCH && lib.hasInfix "--seccomp true" (toString p.exec)
          && !(lib.hasInfix "--kernel" (toString p.exec)) && !(lib.hasInfix "oem_strings" (toString p.exec));
        # the caller's --api-socket becomes the filtered proxy for microvm-balloon/ch-remote
        api-proxy = ch.api_proxy == e.apiSocket && ch.api_socket != e.apiSocket;
        cpus = v.cpus.boot_vcpus == e.vcpu;
        memory = v.memory.size == e.mem * MiB && v.memory.shared == e.virtiofs && v.memory.mergeable == !e.virtiofs;
        kernel = v.payload.kernel == e.kernel && v.payload.initramfs == e.initramfs;
        cmdline = builtins.all (k: builtins.elem k (lib.splitString " " v.payload.cmdline)) (e.kernelParams ++ [ "console=ttyS0" "reboot=t" "panic=-1" ]);
        disks = builtins.length (v.disks or [ ]) == builtins.length expectedDisks
          && builtins.all (x: x) (lib.zipListsWith (want: got: builtins.all (k: got.${k} == want.${k}) (builtins.attrNames want)
              && got.num_queues == queues) expectedDisks (v.disks or [ ]));
        fs = map (f: { inherit (f) tag socket; }) (v.fs or [ ]) == e.shares;
        net = builtins.length (v.net or [ ]) + builtins.length (ch.add_net or [ ]) == builtins.length e.interfaces
          && builtins.all (i: let n = netOf i; in n != null && n.mac == i.mac
              && (if i.type == "tap" then n.num_queues == 2 * queues
                  else builtins.length n.fds == queues && n.num_queues == 2 * builtins.length n.fds)) e.interfaces;
        vsock = let cid = if e.vsockCid != null then e.vsockCid else e.guestCid; in
          v ? vsock && (cid == null || v.vsock.cid == cid);
        balloon = if e.balloon then v.balloon.size == e.initialBalloonMem * MiB && v.balloon.deflate_on_oom == e.deflateOnOOM && v.balloon.free_page_reporting
          else !(v ? balloon) || v.balloon == null;
        serial-console = v.serial.mode == "Tty" && v.console.mode == "Null" && v.watchdog == true;
        # microvm.nix's own vmm.notify_socket string is replaced by host-launcher's (never relayed)
        notify = if e.vsockCid != null
          then p.guest_notify != "" && p.guest_notify != "vsock-stream:2:8888" && creds ? "vmm.notify_socket"
          else !(p ? guest_notify) || p.guest_notify == "";
        # every credential and setting by name, redacted, with its size; nothing else unnamed
        credentials = builtins.all (n: creds ? ${n} && !creds.${n}.control) (e.credentials ++ builtins.attrNames e.settings)
          && builtins.all (n: creds.${n}.bytes == builtins.stringLength e.settings.${n}) (builtins.attrNames e.settings)
          && builtins.all (s: lib.hasInfix "=[redacted " s) oem
          && builtins.length oem == builtins.length p.credentials;
      };
    in
    map (c: "${name}: ${c}") (builtins.filter (c: !cases.${c}) (builtins.attrNames cases));
  names = builtins.attrNames r.shapes;
in
{
  checked = builtins.length names;
  failed = lib.concatMap check names;
}
