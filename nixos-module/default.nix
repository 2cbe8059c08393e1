# credlink NixOS module: services.credlink.guest (inside a VM) and services.credlink.host (on the
# host, standalone or integrated with microvm.nix). Import this file, or guest.nix / host.nix
# alone. microvm-guest.nix belongs in a microvm.nix guest built from a flake (README, NixOS).
{
  imports = [ ./guest.nix ./host.nix ];
}
