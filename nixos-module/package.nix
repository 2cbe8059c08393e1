# Builds guest-agent and host-launcher.
#
# vendorHash is the NAR hash of `go mod vendor`'s output. It must change whenever go.sum does.
# To refresh it: set `vendorHash = lib.fakeHash;`, run `nix-build -E 'with import <nixpkgs> {};
# callPackage ./nixos-module/package.nix {}'`, and copy the hash the failure reports; or, without
# a build, run nixos-module/vendor-hash.sh (NAR hash of `go mod vendor` output; that is how the
# value below was computed, and CI checks it against go.sum with --check).
{ lib, buildGoModule }:

buildGoModule {
  pname = "credlink";
  version = "0.1.0";
  src = lib.cleanSource ../.;
  vendorHash = "sha256-/HPn7DQogg6GX31z2kvIZSFW7vLkQwzUXFxsZ19juM8=";
  subPackages = [ "cmd/guest-agent" "cmd/host-launcher" ];
  env.CGO_ENABLED = 0;
  ldflags = [ "-s" "-w" "-X github.com/credlink/credlink/pkg/version.Version=0.1.0" ];
  # The unit tests need QEMU fixtures, promtool and dmidecode; CI runs them.
  doCheck = false;
  meta = {
    description = "Verifiable delivery of systemd credentials into virtual machines";
    license = lib.licenses.asl20;
    platforms = lib.platforms.linux;
    mainProgram = "host-launcher";
  };
}
