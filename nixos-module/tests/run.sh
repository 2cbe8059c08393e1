#!/usr/bin/env bash
# Parses every .nix file and runs tests/eval.nix; prints "N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/.."
for f in *.nix tests/*.nix; do
  nix-instantiate --store dummy:// --parse "$f" >/dev/null || { echo "parse $f: FAIL"; exit 1; }
  echo "parse $f: ok"
done
out=$(nix-instantiate --store dummy:// --eval --strict --json tests/eval.nix)
echo "eval: $out"
passed=$(echo "$out" | sed -n 's/.*"passed":\([0-9]*\).*/\1/p')
failed=$(echo "$out" | sed -n 's/.*"failed":\[\(.*\)\].*/\1/p' | tr ',' '\n' | grep -c . || true)
echo "nix: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
