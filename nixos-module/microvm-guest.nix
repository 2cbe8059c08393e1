# Guest side of credlink's microvm.nix integration (a module of the microvm.nix GUEST config):
# microvm.nix's runner execs the guest's hypervisor package; this makes that package a wrapper
# whose cloud-hypervisor / qemu-system-* runs `$CREDLINK_LAUNCH KIND REAL-BINARY ARGV…` when the
# host's microvm@NAME unit sets CREDLINK_LAUNCH (credlink's drop-in does, for VMs with
# services.credlink.host.vms.NAME), and the real binary otherwise (e.g. `microvm -r NAME` by
# hand). The wrapper holds no VM-specific data, so the guest closure does not change when the
# host's credentials do. Every other program of the package (ch-remote, qemu-img…) is the real one.
#
# host.nix adds this module to declarative VMs (microvm.vms.NAME.config) by itself; a VM built
# from a flake (microvm.vms.NAME.flake) imports it in nixosConfigurations.NAME
# (credlink.nixosModules.microvm-guest).
{ config, lib, ... }:
let
  inherit (lib) mkOption types;
  m = config.microvm;
  hp = m.vmHostPackages;
  real = config.services.credlink.microvm;
  qemuArch = { x86_64-linux = "x86_64"; aarch64-linux = "aarch64"; }.${hp.stdenv.hostPlatform.system} or "x86_64";

  script = hypervisor: realBin: hp.writeShellScript "credlink-${hypervisor}" ''
    if [ -n "''${CREDLINK_LAUNCH:-}" ]; then exec "$CREDLINK_LAUNCH" ${hypervisor} ${realBin} "$@"; fi
    exec ${realBin} "$@"
  '';
  wrap = hypervisor: bin: pkg:
    let s = script hypervisor "${pkg}/bin/${bin}";
    in hp.runCommand "${pkg.pname or hypervisor}-credlink-${pkg.version}" {
      passthru = {
        inherit (pkg) version;
        credlink = { inherit hypervisor; real = pkg; script = s; };
        # microvm.nix's qemu runner overrides the package (closure size, USB): keep wrapping.
        override = f: wrap hypervisor bin (pkg.override f);
        overrideAttrs = f: wrap hypervisor bin (pkg.overrideAttrs f);
      };
      meta = (pkg.meta or { }) // { mainProgram = bin; };
    } ''
      mkdir -p $out/bin
      for f in ${pkg}/bin/*; do ln -s "$f" $out/bin/; done
      rm -f $out/bin/${bin}
      ln -s ${s} $out/bin/${bin}
    '';
in
{
  options.services.credlink.microvm = {
    cloud-hypervisor = mkOption {
      type = types.package;
      default = if m.graphics.enable then hp.cloud-hypervisor-graphics else hp.cloud-hypervisor;
      defaultText = lib.literalExpression "microvm.nix's default cloud-hypervisor package";
      description = "The real cloud-hypervisor (set this instead of microvm.cloud-hypervisor.package, which becomes credlink's wrapper).";
    };
    qemu = mkOption {
      type = types.package;
      default = if m.cpu == null && hp.stdenv.hostPlatform.isLinux then hp.qemu_kvm else hp.qemu;
      defaultText = lib.literalExpression "microvm.nix's default qemu package";
      description = "The real QEMU (set this instead of microvm.qemu.package, which becomes credlink's wrapper).";
    };
  };
  # Plain definitions: they win over microvm.nix's defaults, and a guest that also defines
  # microvm.*.package gets the module system's "defined multiple times" error naming this file,
  # instead of losing its package silently. Such a guest sets services.credlink.microvm.* instead.
  config.microvm = {
    cloud-hypervisor.package = wrap "cloud-hypervisor" "cloud-hypervisor" real.cloud-hypervisor;
    qemu.package = wrap "qemu" "qemu-system-${qemuArch}" real.qemu;
  };
}
