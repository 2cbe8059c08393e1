# STAND-IN for nixpkgs' nixos/lib/eval-config.nix, which microvm.nix's host module imports from
# `microvm.vms.<name>.nixpkgs` to evaluate a declarative guest. Same arguments; evaluates the
# guest's modules (microvm.nix's real guest modules among them) with the real lib.evalModules on
# top of the NixOS stand-in (../../../nixos.nix, ../../../guest-base.nix).
{ modules, prefix ? [ ], extraModules ? [ ], specialArgs ? { }, pkgs, system ? null, ... }:
pkgs.lib.evalModules {
  inherit prefix;
  specialArgs = { modulesPath = toString ../../../.; } // specialArgs;
  modules = [ ../../../nixos.nix ../../../guest-base.nix { _module.args.pkgs = pkgs; } ] ++ modules ++ extraModules;
}
