# STAND-IN for clan-core, written from its public sources (commit d7c35d9, 2026-08-22:
# lib/inventory/distributed-service/service-module.nix, modules/clan/export-modules/
# generic-generator.nix, nixosModules/clanCore/vars/interface.nix): just enough to evaluate a
# `clan.service` module the way clan does and to give its NixOS modules the vars options.
#  - evalService: evaluates the service module against the roles/interface/perInstance options,
#    then, for one instance, evaluates each role's settings through its interface and calls
#    perInstance with { instanceName, roles, machine, settings } like clan's `apply`;
#  - varsModule: clan.core.vars.generators.<gen>.{files.<f>.{secret,owner,group,mode,
#    restartUnits,deploy,path}, prompts, script, runtimeInputs, share}; `path` defaults to where
#    clan's on-machine secret backends put a file (/run/secrets/vars/GEN/FILE).
{ lib }:
let
  inherit (lib) mkOption types;
  serviceOptions = {
    options = {
      manifest = mkOption {
        type = types.submodule {
          options.name = mkOption { type = types.str; };
          options.description = mkOption { type = types.str; default = "No description"; };
          options.readme = mkOption { type = types.str; default = ""; };
          options.categories = mkOption {
            type = types.listOf (types.enum [ "Audio" "AudioVideo" "Desktop" "Development" "Education" "Game" "Graphics"
              "Network" "Office" "Science" "Settings" "Social" "System" "Uncategorized" "Utility" "Video" ]);
            default = [ "Uncategorized" ];
          };
        };
      };
      roles = mkOption {
        type = types.attrsOf (types.submodule {
          options.description = mkOption { type = types.nullOr types.str; default = null; };
          options.interface = mkOption { type = types.deferredModule; default = { }; };
          options.perInstance = mkOption { type = types.deferredModule; default = { }; };
        });
      };
    };
  };
in
rec {
  evalService = module: (lib.evalModules { class = "clan.service"; modules = [ serviceOptions module ]; }).config;

  # instance = { name; roles.<role> = { settings; machines.<m> = { settings }; }; }
  nixosModulesFor = module: instance: machineName:
    let
      svc = evalService module;
      evalSettings = role: extra: (lib.evalModules { modules = [ svc.roles.${role}.interface (instance.roles.${role}.settings or { }) extra ]; }).config;
      roles = lib.mapAttrs (role: r: {
        settings = evalSettings role { };
        machines = lib.mapAttrs (m: mv: { settings = evalSettings role (mv.settings or { }); }) (r.machines or { });
      }) instance.roles;
      machineRoles = builtins.attrNames (lib.filterAttrs (_: r: r.machines ? ${machineName}) roles);
    in
    map (role: (lib.evalModules {
      specialArgs = {
        instanceName = instance.name;
        inherit roles;
        machine = { name = machineName; roles = machineRoles; };
        settings = roles.${role}.machines.${machineName}.settings;
      };
      modules = [ { options.nixosModule = mkOption { type = types.deferredModule; default = { }; }; } svc.roles.${role}.perInstance ];
    }).config.nixosModule) machineRoles;

  varsModule = { lib, ... }: {
    options.clan.core.vars.generators = mkOption {
      default = { };
      type = types.attrsOf (types.submodule ({ name, ... }: let gen = name; in {
        options = {
          files = mkOption {
            default = { };
            type = types.attrsOf (types.submodule ({ name, ... }: {
              options = {
                secret = mkOption { type = types.bool; default = true; };
                deploy = mkOption { type = types.bool; default = true; };
                owner = mkOption { type = types.str; default = "root"; };
                group = mkOption { type = types.str; default = "root"; };
                mode = mkOption { type = types.strMatching "[0-7]{4}"; default = "0400"; };
                restartUnits = mkOption { type = types.listOf types.str; default = [ ]; };
                path = mkOption { type = types.str; default = "/run/secrets/vars/${gen}/${name}"; };
              };
            }));
          };
          prompts = mkOption {
            default = { };
            type = types.attrsOf (types.submodule {
              options.description = mkOption { type = types.str; default = ""; };
              options.type = mkOption { type = types.enum [ "hidden" "line" "multiline" ]; default = "line"; };
              options.persist = mkOption { type = types.bool; default = false; };
            });
          };
          script = mkOption { type = types.either types.str types.path; default = ""; };
          runtimeInputs = mkOption { type = types.listOf types.package; default = [ ]; };
          share = mkOption { type = types.bool; default = false; };
        };
      }));
    };
  };
}
