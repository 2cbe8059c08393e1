# credlink as a clan service (clan-core's `clan.service` module class, inventory.instances).
#
#   inventory.instances.credlink-web = {
#     module = { name = "credlink"; input = "credlink"; };
#     roles.host.machines.hypervisor01 = { };
#     roles.host.settings.vms.web = {
#       credentials = { API_KEY.bytes = 44; DB_PASSWORD.bytes = 64; JWT_SECRET = { minBytes = 64; maxBytes = 128; generate = "prompt"; }; };
#       settings = { ENVIRONMENT = "production"; CLUSTER = "eu-west"; };
#     };
#     roles.guest.machines.web = { };
#   };
#
# host role: one vars generator per VM (credlink-VM: a root-only 0400 secret file per credential,
#   restarting the VM's unit when it changes) and services.credlink.host.vms.VM pointing at them;
#   the VM itself stays declared where it is (microvm.vms.VM, or vmConfig for a standalone VM).
# guest role: the guest-agent with the manifest derived from the same roles.host.settings, so
#   names, lengths and the settings' SHA-256 cannot disagree with what the host sends.
{ lib, ... }:
let
  clanLib = import ./lib.nix;
  # perInstance gets the instance's role settings; evaluate them through the declaration (again:
  # idempotent if clan already did) so defaults are filled in either way.
  declOf = settings: (lib.evalModules {
    modules = [ ./declaration.nix (removeAttrs settings [ "_module" ]) ];
  }).config;
in
{
  _class = "clan.service";
  manifest.name = "credlink";
  manifest.description = "Verifiable delivery of systemd credentials into VMs (SMBIOS OEM strings, checked by the guest)";
  manifest.categories = [ "System" ];

  roles.host = {
    description = "The machine that runs the VMs: one vars generator per VM, VMs started through host-launcher.";
    interface = ./declaration.nix;
    perInstance = { settings, ... }: {
      nixosModule = { config, options, ... }:
        let
          decl = declOf settings;
          microvmVm = vm: options ? microvm && options.microvm ? host && config.microvm.vms ? ${vm};
          unit = vm: if microvmVm vm then "microvm@${vm}.service" else "credlink-vm-${vm}.service";
          gen = vm: "credlink-${vm}";
        in
        {
          imports = [ ../host.nix ];
          clan.core.vars.generators = lib.mapAttrs' (vm: v: lib.nameValuePair (gen vm) {
            files = lib.mapAttrs (_: _: {
              secret = true;
              owner = "root";
              group = "root";
              mode = "0400";
              restartUnits = [ (unit vm) ];
            }) v.credentials;
            prompts = lib.mapAttrs (name: _: {
              description = "credlink: ${name} for VM ${vm}";
              type = "hidden";
              persist = false;
            }) (lib.filterAttrs (_: c: c.generate == "prompt") v.credentials);
            script = clanLib.script v;
          }) decl.vms;
          services.credlink.host.vms = lib.mapAttrs (vm: v: {
            credentials = lib.mapAttrs (name: _: config.clan.core.vars.generators.${gen vm}.files.${name}.path) v.credentials;
            inherit (v) settings ackTimeout onFailure;
            manifest = clanLib.manifest v;
          }) decl.vms;
        };
    };
  };

  roles.guest = {
    description = "A VM: guest-agent with the manifest derived from the host role's declaration.";
    interface = { lib, ... }: {
      options.vm = lib.mkOption { type = lib.types.nullOr lib.types.str; default = null; description = "Name of this VM in roles.host.settings.vms (default: the machine's name)."; };
      options.openFirewall = lib.mkOption { type = lib.types.bool; default = false; description = "Open the metrics port."; };
    };
    perInstance = { settings, roles, machine, instanceName, ... }: {
      nixosModule =
        let
          decl = declOf (roles.host.settings or { });
          vm = if settings.vm != null then settings.vm else machine.name;
        in
        {
          imports = [ ../guest.nix ];
          services.credlink.guest = {
            enable = true;
            manifest =
              if decl.vms ? ${vm} then clanLib.manifest decl.vms.${vm}
              else throw "credlink clan instance ${instanceName}: machine ${machine.name} has the guest role but roles.host.settings.vms has no VM \"${vm}\" (set roles.guest.machines.${machine.name}.settings.vm)";
            inherit (settings) openFirewall;
          };
        };
    };
  };
}
