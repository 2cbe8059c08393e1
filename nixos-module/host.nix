# services.credlink.host: VMs whose credentials host-launcher delivers. Decided per VM:
#
#  - a VM declared in microvm.nix's `microvm.vms.NAME` (cloud-hypervisor or qemu): microvm.nix
#    stays in charge of the VM (its runner's microvm-run does preStart, volumes, taps, macvtap
#    fds, shares, machined registration). credlink puts a wrapper in the guest's hypervisor
#    package, so microvm-run execs host-launcher where it exec'd the hypervisor, and adds a
#    drop-in to microvm@NAME (Type=notify, credentials, restart and stop rules, hardening);
#  - any other VM: a unit of its own, credlink-vm-NAME.service.
#
# Unit contents come from ../systemd (units.nix): the files there are the source of truth.
{ config, lib, pkgs, options, ... }:

let
  inherit (lib) mkOption types;
  cfg = config.services.credlink.host;
  helpers = import ./lib.nix;
  units = import ./units.nix;

  # microvm.nix's host module declares microvm.host.*; credlink's own extension of microvm.vms
  # (below) declares nothing else, so this tells whether microvm.nix is imported.
  haveMicrovm = options ? microvm && options.microvm ? host && options.microvm.host ? enable;
  isMicrovm = name: haveMicrovm && config.microvm.vms ? ${name};
  stateDir = if haveMicrovm then config.microvm.stateDir else "/var/lib/microvms";

  # The guest system microvm.nix builds for a VM (same choice as microvm.nix's host module).
  microvmGuest = name:
    let m = config.microvm.vms.${name};
    in if m.flake != null then m.flake.nixosConfigurations.${name}
    else if m.evaluatedConfig != null then m.evaluatedConfig
    else m.config;

  jsonType = types.json or (pkgs.formats.json { }).type;

  secretPath = lib.mkOptionType {
    name = "credlinkSecretPath";
    description = "absolute path (a string, not a Nix path literal) of a root-only secret file outside the Nix store";
    descriptionClass = "noun";
    check = x: builtins.isString x && !builtins.hasContext x && lib.hasPrefix "/" x
      && !lib.hasPrefix "${builtins.storeDir}/" x;
    merge = lib.mergeEqualOption;
  };

  vmModule = { name, config, ... }: {
    options = {
      hypervisor = mkOption {
        type = types.nullOr (types.enum [ "qemu" "cloud-hypervisor" ]);
        default = null;
        description = ''
          Hypervisor host-launcher starts. For a microvm.nix VM it is the guest's
          `microvm.hypervisor` (leave null); otherwise null means "cloud-hypervisor".
        '';
      };
      credentials = mkOption {
        type = types.attrsOf secretPath;
        default = { };
        example = { API_KEY = "/run/secrets/web/api-key"; };
        description = ''
          Credential name → absolute host path of its secret (a root-only file from agenix,
          sops-nix, clan vars…). Each becomes a LoadCredential= line; host-launcher delivers it
          as an SMBIOS OEM string without it touching argv, the environment or the Nix store.
          Nix path literals and store paths are refused: they would copy the secret into the
          world-readable store.
        '';
      };
      settings = mkOption {
        type = types.attrsOf types.str;
        default = { };
        example = { ENVIRONMENT = "production"; };
        description = "Plain, NOT secret values (visible in the unit, in argv and in the store).";
      };
      manifest = mkOption {
        type = types.nullOr jsonType;
        default = null;
        description = ''
          Manifest (the guest's format, see README) checked against the host-side files before
          launch, so an empty or truncated secret fails on the host. Definitions from several
          modules merge. For a declarative microvm.nix VM whose guest enables
          services.credlink.guest, null means "the guest's own manifest".
        '';
      };
      vmConfig = mkOption {
        type = types.nullOr jsonType;
        default = null;
        description = "cloud-hypervisor VmConfig JSON (no secrets), for a VM outside microvm.nix; merges across modules.";
      };
      cloudHypervisorArgs = mkOption {
        type = types.listOf types.str;
        default = [ ];
        example = [ "--cpus" "boot=2" "--memory" "size=1024M" "--kernel" "/var/lib/vms/web/vmlinux" ];
        description = "cloud-hypervisor's own command line, for a VM outside microvm.nix (instead of vmConfig).";
      };
      qemuArgs = mkOption {
        type = types.listOf types.str;
        default = [ ];
        example = [ "-machine" "q35,accel=kvm" "-m" "1024" "-kernel" "/var/lib/vms/web/bzImage" ];
        description = "QEMU's command line, for a qemu VM outside microvm.nix.";
      };
      guestCid = mkOption {
        type = types.nullOr (types.ints.between 3 4294967294);
        default = null;
        description = "vsock CID of the guest (0–2 are reserved: hypervisor, local, host). microvm.nix VMs: microvm.vsock.cid wins.";
      };
      ackTimeout = mkOption {
        type = types.strMatching helpers.durationPattern;
        default = "5m";
        description = "How long host-launcher waits for the guest's acknowledgement (Go duration: 90s, 5m, 1m30s). TimeoutStartSec= is derived from it.";
      };
      shutdownTimeout = mkOption {
        type = types.strMatching helpers.durationPattern;
        default = "30s";
        description = "Grace period after the guest's power button before the VMM is stopped. TimeoutStopSec= is derived from it.";
      };
      onFailure = mkOption {
        type = types.enum [ "stop" "ready-anyway" ];
        default = "stop";
        description = "stop: a failed delivery stops the VM, exit 1 (not restarted). ready-anyway: report READY=1 regardless (the failure stays in STATUS= and the log).";
      };
      extraArgs = mkOption { type = types.listOf types.str; default = [ ]; description = "Extra host-launcher options."; };
      launchScript = mkOption {
        type = types.package;
        readOnly = true;
        internal = true;
        description = "microvm.nix VMs: the script microvm@NAME's CREDLINK_LAUNCH names (host-launcher with this VM's options; no secrets).";
      };
    };
    config.launchScript = launchScript name config;
  };

  manifestOf = name: vm:
    if vm.manifest != null then vm.manifest
    else if isMicrovm name then
      let g = (microvmGuest name).config.services.credlink.guest or { };
      in if g.enable or false then g.manifest else null
    else null;
  manifestFile = name: vm:
    let m = manifestOf name vm;
    in if m == null then null else pkgs.writeText "credlink-${name}-manifest.json" (builtins.toJSON m);

  launcher = "${cfg.package}/bin/host-launcher";
  options' = name: vm: helpers.launcherOptions { inherit name vm; manifestFile = manifestFile name vm; };

  startSec = vm: helpers.durationSeconds vm.ackTimeout + helpers.durationSeconds vm.shutdownTimeout + 30;
  stopSec = vm: helpers.durationSeconds vm.shutdownTimeout + 15;

  # --- microvm.nix VMs -------------------------------------------------------------------------

  qemuArch = { x86_64-linux = "x86_64"; aarch64-linux = "aarch64"; }.${pkgs.stdenv.hostPlatform.system} or "x86_64";

  # $CREDLINK_LAUNCH of microvm@NAME: called by the guest package's wrapper (microvm-guest.nix)
  # as `KIND REAL-BINARY HYPERVISOR-ARGV…`, it execs host-launcher with this VM's options, so
  # host-launcher becomes the unit's main process with microvm.nix's own command line after `--`.
  launchScript = name: vm: pkgs.writeShellScript "credlink-launch-${name}" ''
    hv=$1 bin=$2
    shift 2
    case $hv in
      cloud-hypervisor) exec ${launcher} run --hypervisor cloud-hypervisor --cloud-hypervisor "$bin" ${lib.escapeShellArgs (options' name vm)} -- "$@" ;;
      qemu) exec ${launcher} run --hypervisor qemu --qemu "$bin" ${lib.escapeShellArgs (options' name vm)} -- "$@" ;;
      *) echo "credlink: VM ${name}: unknown hypervisor '$hv'" >&2; exit 2 ;;
    esac
  '';

  microvmDropin = name: vm:
    let
      file = units.microvmDropin.Service;
      fromFile = units.substitute [ "%i" "/var/lib/microvms/" ] [ name "${stateDir}/" ]
        (removeAttrs file [ "ExecStart" "Type" "TimeoutStartSec" "TimeoutStopSec" ]);
    in
    {
      # microvm.nix sets Type=simple unless its runner relays a notify socket; host-launcher is
      # the main process (microvm-run and the wrapper exec it) and sends READY=1 itself.
      environment.CREDLINK_LAUNCH = "${vm.launchScript}";
      serviceConfig = fromFile // {
        Type = lib.mkForce file.Type;
        LoadCredential = helpers.loadCredentials vm.credentials;
        TimeoutStartSec = "${toString (startSec vm)}s";
        TimeoutStopSec = "${toString (stopSec vm)}s";
      };
    };

  # --- VMs outside microvm.nix -----------------------------------------------------------------

  standaloneArgs = name: vm:
    let hv = if vm.hypervisor == null then "cloud-hypervisor" else vm.hypervisor;
    in [ launcher "run" "--hypervisor" hv ]
      ++ (if hv == "qemu" then [ "--qemu" "${cfg.qemuPackage}/bin/qemu-system-${qemuArch}" ]
          else [ "--cloud-hypervisor" "${cfg.cloudHypervisorPackage}/bin/cloud-hypervisor" ])
      ++ options' name vm
      ++ lib.optionals (hv == "cloud-hypervisor" && vm.vmConfig != null)
        [ "--vm-config" (pkgs.writeText "credlink-${name}-vm.json" (builtins.toJSON vm.vmConfig)) ]
      ++ lib.optionals (hv == "qemu") ([ "--" ] ++ vm.qemuArgs)
      ++ lib.optionals (hv == "cloud-hypervisor" && vm.cloudHypervisorArgs != [ ]) ([ "--" ] ++ vm.cloudHypervisorArgs);

  standaloneUnit = name: vm:
    let
      f = units.vmStandalone;
      sub = units.substitute [ "%i" ] [ name ];
      unit = sub f.Unit;
    in
    {
      description = unit.Description;
      documentation = lib.toList unit.Documentation;
      after = lib.toList unit.After;
      wants = lib.toList unit.Wants;
      wantedBy = lib.toList f.Install.WantedBy;
      serviceConfig = sub (removeAttrs f.Service [ "ExecStart" "EnvironmentFile" "TimeoutStartSec" "TimeoutStopSec" ]) // {
        ExecStart = helpers.execLine (standaloneArgs name vm);
        LoadCredential = helpers.loadCredentials vm.credentials;
        TimeoutStartSec = "${toString (startSec vm)}s";
        TimeoutStopSec = "${toString (stopSec vm)}s";
      };
    };

  # --- refusals --------------------------------------------------------------------------------

  vmAssertions = name: vm:
    let
      p = "services.credlink.host.vms.${name}";
      names = builtins.attrNames vm.credentials ++ builtins.attrNames vm.settings;
      common = [
        { assertion = vm.credentials != { } || vm.settings != { };
          message = "${p}: declares neither credentials nor settings; remove it or add what the guest needs."; }
        { assertion = builtins.all helpers.validCredentialName names;
          message = "${p}: invalid credential name(s) ${toString (builtins.filter (n: !helpers.validCredentialName n) names)}: use printable ASCII without / : = or spaces, not . or .., at most 255 bytes."; }
        { assertion = builtins.intersectAttrs vm.credentials vm.settings == { };
          message = "${p}: ${toString (builtins.attrNames (builtins.intersectAttrs vm.credentials vm.settings))} is both a credential and a setting."; }
      ];
      g = (microvmGuest name).config;
      mv = g.microvm;

      hasWrapper = (mv.${mv.hypervisor}.package.credlink or null) != null;
      microvmChecks = [
        { assertion = builtins.elem mv.hypervisor [ "cloud-hypervisor" "qemu" ];
          message = "${p}: microvm.vms.${name} uses ${mv.hypervisor}, which has no SMBIOS (or no credlink support): use cloud-hypervisor or qemu."; }
      ] ++ lib.optionals (builtins.elem mv.hypervisor [ "cloud-hypervisor" "qemu" ]) [
        { assertion = hasWrapper;
          message = "${p}: the guest of microvm.vms.${name} (a flake or evaluatedConfig VM) does not import credlink's microvm-guest module, so microvm.nix would start ${mv.hypervisor} without host-launcher: add credlink.nixosModules.microvm-guest (nixos-module/microvm-guest.nix) to the modules of nixosConfigurations.${name}."; }
        { assertion = vm.hypervisor == null || vm.hypervisor == mv.hypervisor;
          message = "${p}: hypervisor = \"${toString vm.hypervisor}\" but the microvm.nix guest uses ${mv.hypervisor}; leave hypervisor unset for microvm.nix VMs."; }
        { assertion = mv.hypervisor != "qemu" || !(lib.hasPrefix "microvm" mv.qemu.machine);
          message = "${p}: microvm.nix's qemu runner uses -M ${mv.qemu.machine}, which builds no SMBIOS tables, so credentials cannot be delivered. Set microvm.vms.${name}.config.microvm.qemu.machine = \"q35\" (x86_64), or use cloud-hypervisor."; }
        { assertion = mv.hypervisor != "qemu" || !(builtins.any (i: i.type == "macvtap") mv.interfaces);
          message = "${p}: microvm.nix passes macvtap interfaces to qemu as inherited descriptors 3, 4, …, which host-launcher's qemu mode uses for its SMBIOS descriptors (memfds or pipes): use tap interfaces with qemu, or cloud-hypervisor (whose macvtap descriptors host-launcher hands over with vm.add-net)."; }
        { assertion = mv.credentialFiles == { };
          message = "${p}: microvm.vms.${name}.config.microvm.credentialFiles is set as well: move those credentials into ${p}.credentials (credlink delivers and verifies them; two mechanisms would disagree)."; }
        { assertion = !(builtins.any (s: lib.hasPrefix "io.systemd.credential" s && !(lib.hasPrefix "io.systemd.credential:vmm.notify_socket=" s)) mv.cloud-hypervisor.platformOEMStrings);
          message = "${p}: microvm.vms.${name}.config.microvm.cloud-hypervisor.platformOEMStrings carries systemd credentials on cloud-hypervisor's command line (readable in /proc/PID/cmdline): move them into ${p}.credentials or .settings."; }
        { assertion = vm.guestCid == null || mv.vsock.cid == null || vm.guestCid == mv.vsock.cid;
          message = "${p}: guestCid = ${toString vm.guestCid} but microvm.vms.${name}.config.microvm.vsock.cid = ${toString mv.vsock.cid}; set one of them."; }
        { assertion = mv.vsock.cid == null || mv.vsock.cid >= 3;
          message = "${p}: microvm.vsock.cid = ${toString mv.vsock.cid} is reserved (0 hypervisor, 1 local, 2 host); use 3 or more."; }
        { assertion = vm.vmConfig == null && vm.qemuArgs == [ ] && vm.cloudHypervisorArgs == [ ];
          message = "${p}: vmConfig/qemuArgs/cloudHypervisorArgs are for VMs outside microvm.nix; microvm.nix's runner already builds the command line for ${name}."; }
      ];
      standaloneChecks =
        let hv = if vm.hypervisor == null then "cloud-hypervisor" else vm.hypervisor;
        in [
          { assertion = hv != "cloud-hypervisor" || ((vm.vmConfig != null) != (vm.cloudHypervisorArgs != [ ]));
            message = "${p}: cloud-hypervisor outside microvm.nix needs exactly one of vmConfig (VmConfig JSON) or cloudHypervisorArgs (its command line)."; }
          { assertion = hv != "qemu" || (vm.qemuArgs != [ ] && vm.vmConfig == null && vm.cloudHypervisorArgs == [ ]);
            message = "${p}: qemu outside microvm.nix needs qemuArgs (and no vmConfig/cloudHypervisorArgs)."; }
          { assertion = hv != "qemu" || !(builtins.any (a: builtins.match "(type=)?microvm(,.*)?" a != null) vm.qemuArgs);
            message = "${p}: qemuArgs select the microvm machine, which has no SMBIOS: use -machine q35 (or pc)."; }
        ];
    in
    common ++ (if isMicrovm name then microvmChecks else standaloneChecks);
in
{
  options.services.credlink.host = {
    package = mkOption {
      type = types.package;
      default = pkgs.callPackage ./package.nix { };
      defaultText = lib.literalExpression "pkgs.callPackage ./package.nix { }";
      description = "Package providing host-launcher.";
    };
    cloudHypervisorPackage = mkOption {
      type = types.package;
      default = pkgs.cloud-hypervisor;
      defaultText = lib.literalExpression "pkgs.cloud-hypervisor";
      description = "cloud-hypervisor for VMs outside microvm.nix (microvm.nix VMs use their guest's).";
    };
    qemuPackage = mkOption {
      type = types.package;
      default = pkgs.qemu_kvm;
      defaultText = lib.literalExpression "pkgs.qemu_kvm";
      description = "QEMU for VMs outside microvm.nix.";
    };
    vms = mkOption {
      type = types.attrsOf (types.submodule vmModule);
      default = { };
      description = "VMs whose credentials host-launcher delivers: microvm.nix VMs by name, or VMs of their own.";
    };
  };

  # Extends microvm.nix's `microvm.vms.<name>` submodule (a second declaration of the same option
  # merges its submodule modules): for the VMs credlink knows, add the guest-side wrapper module
  # (microvm.vms.NAME.extraModules reaches declarative VMs; flake VMs import it themselves).
  # The condition reads only services.credlink.host.vms' names, never microvm.vms itself, so it
  # cannot create or depend on microvm.vms entries. Without microvm.nix nothing defines it.
  options.microvm.vms = mkOption {
    type = types.attrsOf (types.submodule ({ name, ... }: {
      config = lib.mkIf (cfg.vms ? ${name}) {
        extraModules = [ ./microvm-guest.nix ];
      };
    }));
  };

  config = lib.mkIf (cfg.vms != { }) {
    assertions = lib.concatLists (lib.mapAttrsToList vmAssertions cfg.vms);
    systemd.services = lib.mapAttrs' (name: vm:
      if isMicrovm name then lib.nameValuePair "microvm@${name}" (microvmDropin name vm)
      else lib.nameValuePair "credlink-vm-${name}" (standaloneUnit name vm)
    ) cfg.vms;
  };
}
