# The one declaration both roles of the clan service read: which VMs get which credentials, with
# their lengths, and which plain settings. The host role turns it into vars generators and
# services.credlink.host.vms; the guest role into the guest-agent's manifest. Same source, so
# host and guest cannot disagree on names or lengths.
{ lib, ... }:
let
  inherit (lib) mkOption types;
  credential = { name, config, ... }: {
    options = {
      bytes = mkOption { type = types.nullOr types.ints.positive; default = null; description = "Exact length in bytes."; };
      minBytes = mkOption { type = types.nullOr types.ints.positive; default = null; description = "Minimum length (with maxBytes instead of bytes)."; };
      maxBytes = mkOption { type = types.nullOr types.ints.positive; default = null; description = "Maximum length."; };
      generate = mkOption {
        type = types.enum [ "random" "prompt" ];
        default = "random";
        description = ''
          random: `clan vars generate` writes `bytes` random alphanumeric characters (needs bytes).
          prompt: it asks for the value (hidden) and refuses one of the wrong length.
        '';
      };
    };
  };
  vm = { name, ... }: {
    options = {
      credentials = mkOption { type = types.attrsOf (types.submodule credential); default = { }; description = "Secret credentials by name."; };
      settings = mkOption { type = types.attrsOf types.str; default = { }; description = "Plain, NOT secret values; the guest checks them by SHA-256."; };
      ackTimeout = mkOption { type = types.str; default = "5m"; };
      onFailure = mkOption { type = types.enum [ "stop" "ready-anyway" ]; default = "stop"; };
      unexpected = mkOption { type = types.enum [ "ignore" "warn" "fail" ]; default = "warn"; description = "The guest's rule for credentials not declared here."; };
    };
  };
in
{
  options.vms = mkOption {
    type = types.attrsOf (types.submodule vm);
    default = { };
    description = "VMs by name (the microvm.nix VM name, or credlink-vm-NAME on hosts without microvm.nix); a guest machine is the VM of its own name unless its role sets `vm`.";
  };
}
