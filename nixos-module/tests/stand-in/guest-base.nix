# STAND-IN for what a NixOS guest system provides to microvm.nix's guest modules: a kernel
# package, an initrd, the toplevel and the few boot options they read. Values are derivations
# that are never built.
{ lib, pkgs, config, ... }:
{
  options.boot.kernelParams = lib.mkOption { type = lib.types.listOf lib.types.str; default = [ ]; };
  config = {
    boot.kernelPackages = { kernel = pkgs.linux; };
    system.build.initialRamdisk = pkgs.runCommand "initrd" { } "";
    system.boot.loader.initrdFile = "initrd";
    system.stateVersion = "26.05";
    nix.enable = lib.mkDefault true;
    security.virtualisation.flushL1DataCache = lib.mkDefault null;
  };
}
