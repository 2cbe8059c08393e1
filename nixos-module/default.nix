# credlink NixOS module: services.credlink.guest (inside a VM) and services.credlink.host (on the
# host, standalone or integrated with microvm.nix). Import this file, or guest.nix / host.nix alone.
{
  imports = [ ./guest.nix ./host.nix ];
}
