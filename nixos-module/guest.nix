# services.credlink.guest: run guest-agent inside a VM.
{ config, lib, pkgs, ... }:

let
  cfg = config.services.credlink.guest;
  helpers = import ./lib.nix;
  file = (import ./units.nix).guestAgent;
  jsonType = lib.types.json or (pkgs.formats.json { }).type;
  manifestFile = pkgs.writeText "credlink-manifest.json" (builtins.toJSON cfg.manifest);
  args = helpers.guestArgs {
    agent = "${cfg.package}/bin/guest-agent";
    inherit manifestFile;
    inherit (cfg) source;
    metricsAddress = cfg.metrics.address;
    metricsPort = if cfg.metrics.enable then cfg.metrics.port else null;
    systemdVersion = lib.versions.major config.systemd.package.version;
    inherit (cfg) extraArgs;
  };
in
{
  options.services.credlink.guest = {
    enable = lib.mkEnableOption "the credlink guest-agent, which verifies delivered credentials and acknowledges them to the host";

    package = lib.mkOption {
      type = lib.types.package;
      default = pkgs.callPackage ./package.nix { };
      defaultText = lib.literalExpression "pkgs.callPackage ./package.nix { }";
      description = "Package providing guest-agent.";
    };

    manifest = lib.mkOption {
      type = jsonType;
      example = lib.literalExpression ''
        {
          credentials = {
            API_KEY = { bytes = 44; };
            JWT_SECRET = { min_bytes = 64; max_bytes = 128; };
            ENVIRONMENT = { secret = false; sha256 = "…"; };
          };
          unexpected = "warn";
        }'';
      description = "The manifest, rendered to JSON (format in README.md); definitions from several modules merge. guest-agent rejects unknown fields at start.";
    };

    source = lib.mkOption {
      type = lib.types.enum [ "auto" "smbios" "credentials" "fwcfg" ];
      default = "credentials";
      description = ''
        Where guest-agent reads credentials. "credentials" uses the unit's $CREDENTIALS_DIRECTORY,
        filled by ImportCredential=* (systemd >= 254, which NixOS ships).
      '';
    };

    metrics = {
      enable = lib.mkOption { type = lib.types.bool; default = true; description = "Serve Prometheus metrics."; };
      address = lib.mkOption { type = lib.types.str; default = ""; example = "10.0.0.5"; description = "Metrics listen address (empty: all)."; };
      port = lib.mkOption { type = lib.types.port; default = 9863; description = "Metrics port."; };
    };

    openFirewall = lib.mkOption {
      type = lib.types.bool;
      default = false;
      description = "Open the metrics port in the firewall.";
    };

    extraArgs = lib.mkOption {
      type = lib.types.listOf lib.types.str;
      default = [ ];
      example = [ "--on-failure" "exit" ];
      description = "Extra arguments for `guest-agent run`.";
    };
  };

  config = lib.mkIf cfg.enable {
    networking.firewall.allowedTCPPorts = lib.mkIf (cfg.openFirewall && cfg.metrics.enable) [ cfg.metrics.port ];

    # systemd/guest-agent.service is the unit; only ExecStart (the store paths and options
    # above), ExecStartPre (the serial port wait, from the store) and ExecReload (kill from the
    # store) are the module's own.
    systemd.services.guest-agent = {
      description = file.Unit.Description;
      documentation = lib.toList file.Unit.Documentation;
      after = lib.toList file.Unit.After;
      before = lib.toList file.Unit.Before;
      wantedBy = lib.toList file.Install.WantedBy;
      serviceConfig = removeAttrs file.Service [ "ExecStart" "ExecStartPre" "ExecReload" ] // {
        ExecStart = helpers.execLine args;
        ExecStartPre = builtins.replaceStrings [ "/usr/bin/guest-agent" ] [ "${cfg.package}/bin/guest-agent" ] file.Service.ExecStartPre;
        ExecReload = builtins.replaceStrings [ "/bin/kill" ] [ "${pkgs.coreutils}/bin/kill" ] file.Service.ExecReload;
      };
    };
  };
}
