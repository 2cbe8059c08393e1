#!/usr/bin/env bash
# Prints the vendorHash package.nix needs: the NAR hash (SRI form) of `go mod vendor`'s output,
# which is what buildGoModule's vendor derivation produces. With --check, fails when package.nix
# holds a different value (CI runs this, so go.sum and vendorHash cannot drift apart).
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
go mod vendor -o "$tmp/vendor"
b32=$(nix-hash --type sha256 --base32 "$tmp/vendor")
sri=$(nix hash to-sri --extra-experimental-features nix-command --type sha256 "$b32")
if [ "${1:-}" = --check ]; then
  have=$(sed -n 's/.*vendorHash = "\(.*\)";/\1/p' nixos-module/package.nix)
  [ "$have" = "$sri" ] || { echo "package.nix vendorHash is $have, go.sum gives $sri: run nixos-module/vendor-hash.sh and update it" >&2; exit 1; }
  echo "vendorHash ok: $sri"
else
  echo "$sri"
fi
