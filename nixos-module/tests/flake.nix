# Evaluates flake.nix's outputs function and the clan service without nixpkgs or clan-core:
#   nix-instantiate --store dummy:// --eval --strict --json tests/flake.nix --arg tp DIR --arg root REPO
# Inputs are stand-ins: `nixpkgs` = the real lib + the stand-in package set (no nixosSystem, so
# checks.*.nixos-real is NOT evaluated here); `microvm` = the real microvm.nix snapshot. The clan
# service goes through stand-in/clan.nix (clan-core's evaluation order, not clan-core itself).
{ tp, root, libDir ? tp + "/lib/lib", microvmDir ? tp + "/microvm" }:
let
  h = import ./harness.nix { inherit libDir microvmDir; };
  inherit (h) lib pkgs;
  clan = import ./stand-in/clan.nix { inherit lib; };

  flake = import (root + "/flake.nix");
  inputs = {
    # outPath as plain strings: interpolating a path would copy it into the (dummy) store.
    nixpkgs = { inherit lib; outPath = toString (libDir + "/.."); legacyPackages = { x86_64-linux = pkgs; aarch64-linux = pkgs; }; };
    microvm = { outPath = toString microvmDir; nixosModules.host = microvmDir + "/nixos-modules/host"; };
  };
  outputs = flake.outputs (inputs // { self = outputs // { outPath = root; }; });

  hostWith = modules: h.evalWith [ ] ([ outputs.nixosModules.default ] ++ modules);

  # --- clan: one instance, host machine "hv" running microvm.nix VM "web", guest machine "web"
  instance = {
    name = "credlink-web";
    roles.host = {
      settings.vms.web = {
        credentials = { API_KEY.bytes = 44; DB_PASSWORD.bytes = 64; JWT_SECRET = { minBytes = 64; maxBytes = 128; generate = "prompt"; }; };
        settings = { ENVIRONMENT = "production"; CLUSTER = "eu-west"; };
      };
      machines.hv = { };
    };
    roles.guest.machines.web = { };
  };
  svc = import (root + "/nixos-module/clan/default.nix");
  hv = h.evalWith [ clan.varsModule h.microvmHost ] (clan.nixosModulesFor svc instance "hv" ++ [ {
    microvm.vms.web.config.microvm = { hypervisor = "cloud-hypervisor"; vsock.cid = 5;
      shares = [ { proto = "virtiofs"; tag = "ro-store"; source = "/nix/store"; mountPoint = "/nix/.ro-store"; } ]; };
  } ]);
  guest = h.evalGuest (clan.nixosModulesFor svc instance "web");
  gen = hv.clan.core.vars.generators.credlink-web;
  unit = hv.systemd.services."microvm@web".unitText;
  hostManifest = hv.services.credlink.host.vms.web.manifest;
  guestManifest = guest.services.credlink.guest.manifest;
  hasLine = l: t: builtins.elem l (lib.splitString "\n" t);

  cases = {
    flake-module-names = builtins.attrNames outputs.nixosModules == [ "default" "guest" "host" "microvm-guest" ];
    flake-modules-evaluate = let c = hostWith [ { services.credlink.host.vms.x = { credentials.K = "/run/k"; cloudHypervisorArgs = [ "--cpus" "boot=1" ]; }; } ]; in
      c.systemd.services ? "credlink-vm-x" && c.services.credlink.guest.enable == false;
    flake-modules-twice = (h.evalWith [ ] [ outputs.nixosModules.default outputs.nixosModules.host outputs.nixosModules.guest ]).services.credlink.host.package
      == outputs.packages.x86_64-linux.default;
    flake-package-default-from-self = (hostWith [ ]).services.credlink.host.package == outputs.packages.x86_64-linux.default;
    flake-package = outputs.packages.x86_64-linux.default.goModuleArgs.pname == "credlink";
    flake-check-eval-drv = lib.hasSuffix ".drv" outputs.checks.x86_64-linux.nixos-module-eval.drvPath;
    flake-clan-service = outputs.clanServices.credlink == root + "/nixos-module/clan/default.nix";

    clan-class = (clan.evalService svc).manifest.name == "credlink";
    clan-one-generator = builtins.attrNames hv.clan.core.vars.generators == [ "credlink-web" ];
    clan-files = builtins.attrNames gen.files == [ "API_KEY" "DB_PASSWORD" "JWT_SECRET" ]
      && builtins.all (f: f.secret && f.owner == "root" && f.group == "root" && f.mode == "0400"
        && f.restartUnits == [ "microvm@web.service" ]) (builtins.attrValues gen.files);
    clan-prompt-only-for-prompted = builtins.attrNames gen.prompts == [ "JWT_SECRET" ] && gen.prompts.JWT_SECRET.type == "hidden";
    clan-credentials-are-vars = hv.services.credlink.host.vms.web.credentials.API_KEY == "/run/secrets/vars/credlink-web/API_KEY";
    clan-unit-load-credential = hasLine "LoadCredential=API_KEY:/run/secrets/vars/credlink-web/API_KEY" unit && hasLine "Type=notify" unit;
    clan-no-assertion = builtins.filter (a: !a.assertion) hv.assertions == [ ];
    clan-same-manifest = hostManifest == guestManifest && guest.services.credlink.guest.enable;
    clan-manifest-shape = guestManifest.credentials.API_KEY == { bytes = 44; }
      && guestManifest.credentials.JWT_SECRET == { min_bytes = 64; max_bytes = 128; }
      && guestManifest.credentials.ENVIRONMENT == { secret = false; sha256 = builtins.hashString "sha256" "production"; };
    clan-guest-unit = guest.systemd.services ? guest-agent;
    clan-standalone-restart-unit = let
      solo = h.evalWith [ clan.varsModule ] (clan.nixosModulesFor svc instance "hv");
    in (builtins.head (builtins.attrValues solo.clan.core.vars.generators.credlink-web.files)).restartUnits == [ "credlink-vm-web.service" ];
  };
in
{
  failed = builtins.filter (n: !cases.${n}) (builtins.attrNames cases);
  passed = builtins.length (builtins.attrNames cases);
  # run.sh executes this generator script for real (bash), with a prompt file.
  script = gen.script;
}
