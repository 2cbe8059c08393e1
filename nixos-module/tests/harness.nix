# Shared by the evaluation tests: the REAL nixpkgs lib (on Nix 2.8, see stand-in/lib28.nix), the
# stand-in package set, and evaluators for a host built from the stand-in NixOS, credlink's
# modules and, where asked, microvm.nix's REAL host module.
{ libDir, microvmDir }:
rec {
  lib = import ./stand-in/lib28.nix libDir;
  mkPkgs = args: import ./stand-in/pkgs.nix ({ inherit lib; nixpkgsPath = ./stand-in/nixpkgs; } // args);
  pkgs = mkPkgs { };
  microvmHost = microvmDir + "/nixos-modules/host";
  microvmLib = import (microvmDir + "/lib") { inherit lib; };

  evalWith = base: modules: (lib.evalModules {
    modules = [ ./stand-in/nixos.nix { _module.args.pkgs = pkgs; } ] ++ base ++ modules;
  }).config;
  eval = evalWith [ ../host.nix ];
  evalGuest = evalWith [ ../guest.nix ];

  # For run.sh's expected-error checks: a standalone VM with one override / two definitions.
  decl = { credentials.API_KEY = "/run/secrets/api-key"; cloudHypervisorArgs = [ "--cpus" "boot=1" ]; };
  hostVm = extra: builtins.deepSeq (eval [ { services.credlink.host.vms.x = decl // extra; } ]).services.credlink.host.vms.x null;
  hostVm2 = a: b: builtins.deepSeq (eval [ { services.credlink.host.vms.x = decl // a; } { services.credlink.host.vms.x = b; } ]).services.credlink.host.vms.x null;
  # microvm.nix says Type=simple for a VM without vsock.cid; a plain Type=notify next to it is a
  # conflict under nixpkgs' unitOption merge (why host.nix uses mkForce).
  unitConflict = (eval [ microvmHost {
    microvm.vms.x.config.microvm = { hypervisor = "cloud-hypervisor"; shares = [ { proto = "virtiofs"; tag = "ro-store"; source = "/nix/store"; mountPoint = "/nix/.ro-store"; } ]; };
    systemd.services."microvm@x".serviceConfig.Type = "notify";
  } ]).systemd.services."microvm@x".unitText;
}
