# Evaluates the module's pure helpers, and the modules' config functions against a minimal
# stand-in for nixpkgs' lib (builtins only), without nixpkgs or the NixOS module system:
#   nix-instantiate --store dummy:// --eval --strict --json nixos-module/tests/eval.nix
# Result: { passed = N; failed = [ names ]; }. What this does not cover: option type checking,
# defaults and merging, which need nixpkgs (see README "NixOS").
let
  helpers = import ../lib.nix;

  # The few lib functions the modules call, with nixpkgs' semantics for the cases used.
  lib = rec {
    mkOption = x: x;
    mkEnableOption = d: { description = d; };
    literalExpression = x: x;
    mkIf = cond: content: if cond then content else { };
    nameValuePair = name: value: { inherit name value; };
    mapAttrs' = f: set: builtins.listToAttrs (map (n: f n set.${n}) (builtins.attrNames set));
    mapAttrsToList = f: set: map (n: f n set.${n}) (builtins.attrNames set);
    recursiveUpdate = a: b: a // builtins.mapAttrs (n: v:
      if builtins.isAttrs v && a ? ${n} && builtins.isAttrs a.${n} then recursiveUpdate a.${n} v else v) b;
    cleanSource = p: p;
    licenses.asl20 = "asl20";
    platforms.linux = [ "x86_64-linux" ];
    types = {
      package = "package"; attrs = "attrs"; bool = "bool"; str = "str"; port = "port"; path = "path";
      enum = l: "enum"; listOf = t: "listOf"; attrsOf = t: "attrsOf"; nullOr = t: "nullOr";
      submodule = m: "submodule"; ints.unsigned = "uint";
    };
  };
  pkg = { outPath = "/nix/store/00000000000000000000000000000000-credlink-0.1.0"; };
  pkgs = {
    writeText = name: text: "/nix/store/11111111111111111111111111111111-${name}";
    callPackage = f: args: pkg;
    coreutils = { outPath = "/nix/store/22222222222222222222222222222222-coreutils"; };
  };

  guestConfig = extra: {
    services.credlink.guest = {
      enable = true; package = pkg; source = "credentials"; openFirewall = true; extraArgs = [ ];
      metrics = { enable = true; address = ""; port = 9863; };
      manifest = { credentials.API_KEY.bytes = 44; unexpected = "warn"; };
    } // extra;
  };
  guest = extra: (import ../guest.nix { config = guestConfig extra; inherit lib pkgs; }).config;

  vm = {
    hypervisor = "cloud-hypervisor"; credentials = { API_KEY = "/run/secrets/web/api-key"; DB_PASSWORD = "/run/secrets/web/db"; };
    settings = { ENVIRONMENT = "prod uction"; }; vmConfig = { payload.kernel = "/k"; }; qemuArgs = [ ];
    guestCid = 42; ackTimeout = "5m"; onFailure = "stop"; manifest = null; extraArgs = [ ];
  };
  host = options: (import ../host.nix {
    config.services.credlink.host = { package = pkg; vms.web = vm; };
    inherit lib pkgs options;
  }).config;

  package = import ../package.nix { inherit lib; buildGoModule = args: args; };

  launcherLine = "/nix/store/00000000000000000000000000000000-credlink-0.1.0/bin/host-launcher run --vm web --hypervisor cloud-hypervisor --all-credentials --ack-timeout 5m --on-failure stop --runtime-dir /run/credlink/web --set \"ENVIRONMENT=prod uction\" --guest-cid 42 --vm-config /nix/store/11111111111111111111111111111111-credlink-web-vm.json";

  cases = {
    escape-plain = helpers.escapeArg "--vm" == "--vm";
    escape-space-quote = helpers.escapeArg "a \"b\"" == "\"a \\\"b\\\"\"";
    escape-percent-dollar = helpers.escapeArg "50% $HOME" == "\"50%% $$HOME\"";
    escape-percent-quoted = helpers.escapeArg "a%b" == "\"a%%b\"";
    guest-exec = (guest { }).systemd.services.guest-agent.serviceConfig.ExecStart
      == "/nix/store/00000000000000000000000000000000-credlink-0.1.0/bin/guest-agent run --source credentials --manifest /nix/store/11111111111111111111111111111111-credlink-manifest.json --metrics-listen :9863";
    guest-import-credential = (guest { }).systemd.services.guest-agent.serviceConfig.ImportCredential == "*";
    guest-type-notify = (guest { }).systemd.services.guest-agent.serviceConfig.Type == "notify";
    guest-firewall = (guest { }).networking.firewall.allowedTCPPorts == [ 9863 ];
    guest-no-metrics = (guest { metrics = { enable = false; address = ""; port = 9863; }; }).systemd.services.guest-agent.serviceConfig.ExecStart
      == "/nix/store/00000000000000000000000000000000-credlink-0.1.0/bin/guest-agent run --source credentials --manifest /nix/store/11111111111111111111111111111111-credlink-manifest.json --metrics-listen \"\"";
    guest-disabled = (import ../guest.nix { config = guestConfig { enable = false; }; inherit lib pkgs; }).config == { };
    manifest-json = builtins.toJSON (guestConfig { }).services.credlink.guest.manifest == "{\"credentials\":{\"API_KEY\":{\"bytes\":44}},\"unexpected\":\"warn\"}";
    host-standalone-unit = (host { }).systemd.services ? "credlink-vm-web";
    host-standalone-exec = (host { }).systemd.services.credlink-vm-web.serviceConfig.ExecStart == launcherLine;
    host-load-credential = (host { }).systemd.services.credlink-vm-web.serviceConfig.LoadCredential
      == [ "API_KEY:/run/secrets/web/api-key" "DB_PASSWORD:/run/secrets/web/db" ];
    host-no-secret-in-exec = builtins.match ".*/run/secrets.*" (host { }).systemd.services.credlink-vm-web.serviceConfig.ExecStart == null;
    host-microvm-dropin = (host { microvm.vms = { }; }).systemd.services ? "microvm@web";
    host-microvm-exec = (host { microvm.vms = { }; }).systemd.services."microvm@web".serviceConfig.ExecStart == [ "" launcherLine ];
    host-assertion = builtins.all (a: a.assertion) (host { }).assertions;
    host-qemu-args = helpers.execLine (helpers.hostArgs { launcher = "hl"; name = "q"; vm = vm // { hypervisor = "qemu"; settings = { }; guestCid = null; qemuArgs = [ "-machine" "q35" "-append" "console=ttyS0 quiet" ]; }; })
      == "hl run --vm q --hypervisor qemu --all-credentials --ack-timeout 5m --on-failure stop --runtime-dir /run/credlink/q -- -machine q35 -append \"console=ttyS0 quiet\"";
    package-subpackages = package.subPackages == [ "cmd/guest-agent" "cmd/host-launcher" ];
    package-vendorhash = builtins.match "sha256-[A-Za-z0-9+/]{43}=" package.vendorHash != null;
  };
  failed = builtins.filter (n: !cases.${n}) (builtins.attrNames cases);
in
{
  passed = builtins.length (builtins.attrNames cases) - builtins.length failed;
  inherit failed;
}
