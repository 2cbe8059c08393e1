# Builds guest-agent and host-launcher.
#
# Go: go.mod says 1.26, and so do the dependencies (golang.org/x/sys v0.50, x/net, x/sync,
# prometheus/client_golang v1.25, mdlayher/vsock v1.4 all declare `go 1.26.0`), so the `go`
# directive cannot be lowered. NixOS 25.11's default Go is 1.25 and it has no go_1_26; go_1_26
# and buildGo126Module entered nixpkgs in February 2026 (NixOS 26.05). We take buildGoModule when
# its Go is new enough, else buildGo126Module, else stop with a message instead of a compiler error.
#
# vendorHash is the NAR hash of `go mod vendor`'s output. It must change whenever go.sum does.
# Refresh: nixos-module/vendor-hash.sh (CI checks it against go.sum with --check), or set
# `vendorHash = lib.fakeHash;` and copy the hash a `nix-build` reports.
{ lib, buildGoModule, go, buildGo126Module ? null }:

let
  builder =
    if lib.versionAtLeast go.version "1.26" then buildGoModule
    else if buildGo126Module != null then buildGo126Module
    else throw "credlink needs Go >= 1.26 (go.mod and its dependencies); this nixpkgs has go ${go.version} and no buildGo126Module: use NixOS 26.05 / nixpkgs-unstable, or pass buildGoModule from such a nixpkgs.";
  version = "0.1.0";
  # Only what the build reads: no bin/, .cache/, test fixtures, Nix files or docs, so building or
  # testing in the tree does not change the source hash.
  sources = lib.fileset.unions [ ../go.mod ../go.sum ../cmd ../pkg ];
in
builder {
  pname = "credlink";
  inherit version;
  src = lib.fileset.toSource { root = ../.; fileset = sources; };
  passthru = { inherit sources; };
  vendorHash = "sha256-8TUQ3ZcdKT3EJG46cpY7OVw7DVvQOEMfvkwV7QOrpYI=";
  subPackages = [ "cmd/guest-agent" "cmd/host-launcher" ];
  env.CGO_ENABLED = 0;
  ldflags = [ "-s" "-w" "-X github.com/credlink/credlink/pkg/version.Version=${version}" ];
  # The unit tests need QEMU fixtures, promtool and dmidecode; CI runs them.
  doCheck = false;
  meta = {
    description = "Verifiable delivery of systemd credentials into virtual machines";
    license = lib.licenses.asl20;
    platforms = lib.platforms.linux;
    mainProgram = "host-launcher";
  };
}
