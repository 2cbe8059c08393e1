{
  description = "credlink: verifiable delivery of systemd credentials into VMs";

  inputs = {
    # Go >= 1.26 (see nixos-module/package.nix): NixOS 26.05 or unstable.
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";
    # Only for `checks` (the evaluation tests run against microvm.nix's real modules).
    microvm.url = "github:microvm-nix/microvm.nix";
    microvm.inputs.nixpkgs.follows = "nixpkgs";
  };

  outputs = { self, nixpkgs, microvm, ... }:
    let
      inherit (nixpkgs) lib;
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forAll = f: lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
      # The modules build the package from this flake's source unless told otherwise.
      # A key, so that importing e.g. both `default` and `host` loads each module once.
      withPackage = module: opt: { pkgs, lib, ... }: {
        key = "credlink-flake:${toString module}";
        imports = [ module ];
        config = lib.setAttrByPath opt (lib.mkDefault self.packages.${pkgs.stdenv.hostPlatform.system}.default);
      };
    in
    {
      nixosModules = {
        host = withPackage ./nixos-module/host.nix [ "services" "credlink" "host" "package" ];
        guest = withPackage ./nixos-module/guest.nix [ "services" "credlink" "guest" "package" ];
        # In a microvm.nix guest built from a flake (declarative VMs get it from the host module).
        microvm-guest = ./nixos-module/microvm-guest.nix;
        default = { imports = [ self.nixosModules.host self.nixosModules.guest ]; };
      };

      # clan-core: clan.modules.credlink = credlink.clanServices.credlink (clan.service module).
      clanServices.credlink = ./nixos-module/clan/default.nix;

      packages = forAll (pkgs: {
        default = pkgs.callPackage ./nixos-module/package.nix { };
      });

      checks = forAll (pkgs: {
        # The repository's evaluation tests (stand-in NixOS, real lib and microvm.nix), as a
        # derivation that only builds when every case passed.
        nixos-module-eval =
          let
            r = import ./nixos-module/tests/eval.nix { libDir = "${nixpkgs}/lib"; microvmDir = "${microvm}"; };
          in
          pkgs.runCommand "credlink-nixos-module-eval" { } (
            if r.failed == [ ] then "echo ${toString r.passed} cases passed > $out"
            else throw "credlink nixos-module eval failed: ${toString r.failed}");
        # The same microvm.nix host on the real NixOS module system (not evaluable without nixpkgs).
        nixos-real = (lib.nixosSystem {
          system = pkgs.stdenv.hostPlatform.system;
          modules = [
            microvm.nixosModules.host
            self.nixosModules.host
            {
              boot.loader.grub.enable = false;
              fileSystems."/".device = "/dev/null";
              system.stateVersion = "26.05";
              microvm.vms.web.config = {
                microvm.hypervisor = "cloud-hypervisor";
                microvm.shares = [ { proto = "virtiofs"; tag = "ro-store"; source = "/nix/store"; mountPoint = "/nix/.ro-store"; } ];
              };
              services.credlink.host.vms.web.credentials.API_KEY = "/run/secrets/web/api-key";
            }
          ];
        }).config.system.build.toplevel;
        package = self.packages.${pkgs.stdenv.hostPlatform.system}.default;
      });
    };
}
