# STAND-IN for the part of NixOS the credlink and microvm.nix modules touch (full nixpkgs is not
# available to these tests). Written from nixpkgs' nixos/lib/systemd-unit-options.nix,
# systemd-lib.nix and modules/system/boot/systemd.nix, reproducing what matters here:
#   - systemd.services.<name> with the real option names and types (listOf str for the
#     dependency lists, attrsOf unitOption for serviceConfig/unitConfig, overrideStrategy, path,
#     restartTriggers, restartIfChanged, script, preStart);
#   - unitOption's merge rule: if any definition is a list, all are concatenated; otherwise all
#     definitions must be equal ("conflicting definition values"), after mkForce/mkOverride;
#   - unit text rendering (attrsToSection/toOption: true/false, lists as repeated lines),
#     Requires/After/… from the lists, PATH from `path`, X-RestartIfChanged=false;
#   - assertions/warnings as options (tests compute the failed ones like NixOS' toplevel does).
# Everything else NixOS would declare under boot, users, security, hardware, environment, systemd…
# is accepted untyped (a freeform attribute set per namespace). Not real: activation, switching,
# building anything.
{ lib, config, pkgs, ... }:
let
  inherit (lib) mkOption types;

  # nixpkgs nixos/lib/systemd-lib.nix: unitOption.
  unitOption = lib.mkOptionType {
    name = "systemd option";
    merge = loc: defs:
      let defs' = lib.filterOverrides defs;
      in if lib.any (def: lib.isList def.value) defs'
      then lib.concatMap (def: lib.toList def.value) defs'
      else lib.mergeEqualOption loc defs';
  };

  toOption = x: if x == true then "true" else if x == false then "false" else toString x;
  attrsToSection = as: lib.concatStrings (lib.concatLists (lib.mapAttrsToList (name: value:
    map (x: "${name}=${toOption x}\n") (if lib.isList value then value else [ value ])) as));

  # systemd-lib.nix mkScriptName: store names cannot hold @ or \.
  scriptName = n: builtins.replaceStrings [ "\\" "@" ] [ "-" "_" ] n;
  serviceModule = { name, config, ... }: {
    options = {
      enable = mkOption { type = types.bool; default = true; };
      description = mkOption { type = types.singleLineStr; default = ""; };
      documentation = mkOption { type = types.listOf types.str; default = [ ]; };
      requires = mkOption { type = types.listOf types.str; default = [ ]; };
      wants = mkOption { type = types.listOf types.str; default = [ ]; };
      after = mkOption { type = types.listOf types.str; default = [ ]; };
      before = mkOption { type = types.listOf types.str; default = [ ]; };
      bindsTo = mkOption { type = types.listOf types.str; default = [ ]; };
      partOf = mkOption { type = types.listOf types.str; default = [ ]; };
      conflicts = mkOption { type = types.listOf types.str; default = [ ]; };
      wantedBy = mkOption { type = types.listOf types.str; default = [ ]; };
      requiredBy = mkOption { type = types.listOf types.str; default = [ ]; };
      unitConfig = mkOption { type = types.attrsOf unitOption; default = { }; };
      serviceConfig = mkOption { type = types.attrsOf unitOption; default = { }; };
      environment = mkOption { type = types.attrsOf (types.nullOr (types.oneOf [ types.str types.path types.package ])); default = { }; };
      path = mkOption { type = types.listOf (types.oneOf [ types.package types.str ]); default = [ ]; };
      script = mkOption { type = types.lines; default = ""; };
      preStart = mkOption { type = types.lines; default = ""; };
      restartTriggers = mkOption { type = types.listOf types.unspecified; default = [ ]; };
      restartIfChanged = mkOption { type = types.bool; default = true; };
      overrideStrategy = mkOption { type = types.enum [ "asDropinIfExists" "asDropin" ]; default = "asDropinIfExists"; };
      # Rendered like nixpkgs' serviceToUnit; read-only in spirit.
      unitText = mkOption { type = types.str; internal = true; };
    };
    config = {
      # nixpkgs adds these after the user's path (systemd.nix: serviceConfig path default).
      path = lib.mkAfter [ pkgs.coreutils pkgs.findutils pkgs.gnugrep pkgs.gnused pkgs.systemd ];
      environment.PATH = "${lib.makeBinPath config.path}:${lib.makeSearchPathOutput "bin" "sbin" config.path}";
      serviceConfig = lib.mkMerge [
        (lib.mkIf (config.script != "") { ExecStart = "${pkgs.writeShellScript "unit-script-${scriptName name}-start" config.script}"; })
        (lib.mkIf (config.preStart != "") { ExecStartPre = [ "${pkgs.writeShellScript "unit-script-${scriptName name}-pre-start" config.preStart}" ]; })
      ];
      unitConfig = lib.mkMerge [
        (lib.mkIf (!config.restartIfChanged) { X-RestartIfChanged = false; })
        (lib.mkIf (config.documentation != [ ]) { Documentation = lib.concatStringsSep " " config.documentation; })
      ];
      unitText =
        let
          deps = lib.filterAttrs (_: v: v != [ ]) {
            Requires = config.requires; Wants = config.wants; After = config.after; Before = config.before;
            BindsTo = config.bindsTo; PartOf = config.partOf; Conflicts = config.conflicts;
          };
          unit = lib.optionalAttrs (config.description != "") { Description = config.description; }
            // lib.mapAttrs (_: lib.concatStringsSep " ") deps // config.unitConfig;
          env = lib.mapAttrsToList (n: v: "\"${n}=${toString v}\"") (lib.filterAttrs (_: v: v != null) config.environment);
        in
        "[Unit]\n" + attrsToSection unit + "\n[Service]\n"
        + lib.concatMapStrings (e: "Environment=${e}\n") env
        + attrsToSection config.serviceConfig
        + lib.optionalString (config.wantedBy != [ ]) "\n[Install]\nWantedBy=${lib.concatStringsSep " " config.wantedBy}\n";
    };
  };
  # Untyped namespaces: NixOS declares thousands of options under these; microvm.nix's modules
  # set a few. Each is an attribute set that accepts anything (freeform) next to the typed
  # options below.
  loose = extra: mkOption {
    type = types.submodule { freeformType = types.lazyAttrsOf types.anything; options = extra; };
    default = { };
  };
in
{
  options = {
    assertions = mkOption { type = types.listOf types.unspecified; default = [ ]; };
    warnings = mkOption { type = types.listOf types.str; default = [ ]; };
    systemd = loose {
      services = mkOption { type = types.attrsOf (types.submodule serviceModule); default = { }; };
      # modules/system/boot/systemd.nix: the systemd the system runs (its version reaches
      # guest-agent's --systemd-version).
      package = mkOption { type = types.package; default = pkgs.systemd; };
    };
    networking = loose {
      hostName = mkOption { type = types.str; default = "nixos"; };
      firewall = loose {
        allowedTCPPorts = mkOption { type = types.listOf types.port; default = [ ]; };
      };
    };
    environment = loose {
      etc = mkOption {
        type = types.attrsOf (types.submodule {
          options.text = mkOption { type = types.nullOr types.lines; default = null; };
          options.source = mkOption { type = types.nullOr types.path; default = null; };
          options.mode = mkOption { type = types.str; default = "symlink"; };
        });
        default = { };
      };
    };
    system = loose {
      build = mkOption { type = types.lazyAttrsOf types.unspecified; default = { }; };
    };
    boot = loose { };
    fileSystems = loose { };
    services = loose { };
    nix = loose { };
    nixpkgs = loose { };
    documentation = loose { };
    hardware = loose { };
    security = loose { };
    users = loose { };
    virtualisation = loose { };
    programs = loose { };
  };
  config = {
    system.build.toplevel = pkgs.runCommand "nixos-system-${config.networking.hostName}" { } "";
  };
}
