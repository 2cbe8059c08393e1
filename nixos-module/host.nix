# services.credlink.host: start VMs through host-launcher, standalone (credlink-vm-NAME.service)
# or, when microvm.nix is imported, as a drop-in for its microvm@NAME.service.
{ config, lib, pkgs, options, ... }:

let
  cfg = config.services.credlink.host;
  helpers = import ./lib.nix;
  # microvm.nix declares options.microvm.vms on the host.
  haveMicrovm = options ? microvm && options.microvm ? vms;

  vmModule = { name, ... }: {
    options = {
      hypervisor = lib.mkOption {
        type = lib.types.enum [ "qemu" "cloud-hypervisor" ];
        default = "cloud-hypervisor";
        description = "Hypervisor host-launcher starts.";
      };
      credentials = lib.mkOption {
        type = lib.types.attrsOf lib.types.path;
        default = { };
        example = { API_KEY = "/run/secrets/web/api-key"; };
        description = ''
          Credential name → host path of its secret (root-only file, e.g. from agenix/sops-nix).
          Each becomes a LoadCredential= line; host-launcher delivers it without it touching argv,
          the environment or the Nix store.
        '';
      };
      settings = lib.mkOption {
        type = lib.types.attrsOf lib.types.str;
        default = { };
        example = { ENVIRONMENT = "production"; };
        description = "Plain, NOT secret values (they are visible in the unit and in argv).";
      };
      vmConfig = lib.mkOption {
        type = lib.types.nullOr lib.types.attrs;
        default = null;
        description = "cloud-hypervisor VmConfig (without secrets), rendered to JSON for vm.create.";
      };
      qemuArgs = lib.mkOption {
        type = lib.types.listOf lib.types.str;
        default = [ ];
        example = [ "-machine" "q35,accel=kvm" "-m" "1024" "-kernel" "/var/lib/vms/web/bzImage" ];
        description = "QEMU argv (after --) for hypervisor = \"qemu\".";
      };
      guestCid = lib.mkOption {
        type = lib.types.nullOr lib.types.ints.unsigned;
        default = null;
        description = "vsock CID of the guest (default: derived from the name).";
      };
      ackTimeout = lib.mkOption { type = lib.types.str; default = "5m"; description = "How long to wait for the guest's acknowledgement."; };
      onFailure = lib.mkOption {
        type = lib.types.enum [ "stop" "ready-anyway" ];
        default = "stop";
        description = "What to do when delivery is not verified.";
      };
      manifest = lib.mkOption {
        type = lib.types.nullOr lib.types.attrs;
        default = null;
        description = "Manifest checked against the host-side files before launch (same format as the guest's).";
      };
      extraArgs = lib.mkOption { type = lib.types.listOf lib.types.str; default = [ ]; description = "Extra host-launcher arguments."; };
    };
  };

  execStart = name: vm: helpers.execLine (helpers.hostArgs {
    launcher = "${cfg.package}/bin/host-launcher";
    inherit name vm;
    vmConfigFile = if vm.vmConfig == null then null else pkgs.writeText "credlink-${name}-vm.json" (builtins.toJSON vm.vmConfig);
    manifestFile = if vm.manifest == null then null else pkgs.writeText "credlink-${name}-manifest.json" (builtins.toJSON vm.manifest);
  });

  serviceFor = name: vm: {
    serviceConfig = {
      Type = "notify";
      NotifyAccess = "main";
      ExecStart = [ "" (execStart name vm) ];
      LoadCredential = helpers.loadCredentials vm.credentials;
      RuntimeDirectory = "credlink/${name}";
      RuntimeDirectoryMode = "0700";
      UMask = "0077";
      LimitCORE = 0; # execve makes the hypervisor dumpable again; a core holds every credential
      TimeoutStartSec = "6min";
      NoNewPrivileges = true;
      ProtectHome = true;
      PrivateTmp = true;
      ProtectKernelTunables = true;
      ProtectKernelModules = true;
      ProtectControlGroups = true;
      RestrictSUIDSGID = true;
      LockPersonality = true;
    };
  };
in
{
  options.services.credlink.host = {
    package = lib.mkOption {
      type = lib.types.package;
      default = pkgs.callPackage ./package.nix { };
      defaultText = lib.literalExpression "pkgs.callPackage ./package.nix { }";
      description = "Package providing host-launcher.";
    };
    vms = lib.mkOption {
      type = lib.types.attrsOf (lib.types.submodule vmModule);
      default = { };
      description = "VMs started through host-launcher.";
    };
  };

  config = lib.mkIf (cfg.vms != { }) {
    assertions = lib.mapAttrsToList (name: vm: {
      assertion = vm.hypervisor != "cloud-hypervisor" || vm.vmConfig != null;
      message = "services.credlink.host.vms.${name}: cloud-hypervisor needs vmConfig";
    }) cfg.vms;

    systemd.services = lib.mapAttrs' (name: vm:
      if haveMicrovm then
        # microvm.nix owns microvm@NAME; override how it starts.
        lib.nameValuePair "microvm@${name}" (serviceFor name vm)
      else
        lib.nameValuePair "credlink-vm-${name}" (lib.recursiveUpdate (serviceFor name vm) {
          description = "credlink VM ${name}";
          after = [ "network-online.target" ];
          wants = [ "network-online.target" ];
          wantedBy = [ "multi-user.target" ];
          serviceConfig.ExecStart = execStart name vm;
          serviceConfig.Restart = "on-failure";
        })
    ) cfg.vms;
  };
}
