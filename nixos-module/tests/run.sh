#!/usr/bin/env bash
# make nix: evaluates credlink's Nix code for real, as far as this machine allows.
#  1. every .nix file parses;
#  2. tests/eval.nix: the modules under the REAL nixpkgs lib.evalModules with microvm.nix's REAL
#     host module, guest modules and runners (shared/third-party snapshots), NixOS stand-in;
#  3. the translation check: microvm.nix's own microvm-run for three cloud-hypervisor VM shapes
#     (and a qemu q35 VM), run by bash, exec'ing the module's wrapper and launch scripts into the
#     real `host-launcher plan --format json` (built here), compared field by field
#     (tests/plan-check.nix); no secret byte in any output; the rendered units under the real
#     systemd-analyze verify/security;
#  4. option type errors carry their message; flake.nix and the clan service evaluate, and the
#     clan vars generator script runs.
# Needs: nix-instantiate (Debian's nix-bin 2.8 is enough), go, tar, bash, systemd-analyze, mkfs.ext4
# (microvm-run creates a volume; .ci/run installs all of them); shared/third-party beside
# the repository (CI: ../shared), or CREDLINK_SHARED=DIR.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD

shared=""
for c in "${CREDLINK_SHARED:-}" "$root/../shared" "$(git rev-parse --path-format=absolute --git-common-dir 2>/dev/null)/../../shared"; do
  if [ -n "$c" ] && [ -f "$c/third-party/nixpkgs-lib.tar.gz" ] && [ -f "$c/third-party/microvm.nix.tar.gz" ]; then shared=$(cd "$c" && pwd); break; fi
done
if [ -z "$shared" ]; then
  echo "nix: FAIL: shared/third-party (nixpkgs-lib.tar.gz, microvm.nix.tar.gz) not found beside the repository ($root/../shared); set CREDLINK_SHARED=DIR" >&2
  exit 1
fi

tmp=$(mktemp -d); [ -n "${KEEP:-}" ] && echo "keeping $tmp" || trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/tp/lib" "$tmp/tp/microvm"
tar -xzf "$shared/third-party/nixpkgs-lib.tar.gz" -C "$tmp/tp/lib"
tar -xzf "$shared/third-party/microvm.nix.tar.gz" -C "$tmp/tp/microvm"
echo "third-party: $shared/third-party (nixpkgs lib, microvm.nix; see its README for commits)"

nixeval() { nix-instantiate --store dummy:// --eval --strict "$@" 2> >(grep -v '^trace: evaluation warning' >&2); }
fail=0

# 1. parse
nixfiles=(flake.nix $(find nixos-module -name '*.nix' | sort))
for f in "${nixfiles[@]}"; do
  nix-instantiate --store dummy:// --parse "$f" >/dev/null || { echo "parse $f: FAIL"; fail=1; }
done
echo "parse: ${#nixfiles[@]} files"

# 2. module evaluation
out=$(nixeval --json nixos-module/tests/eval.nix --arg tp "$tmp/tp" -A passed)
bad=$(nixeval --json nixos-module/tests/eval.nix --arg tp "$tmp/tp" -A failed)
echo "eval (real lib.evalModules + microvm.nix): $out passed, failed: $bad"
[ "$bad" = "[]" ] || fail=1

# 3. translation of microvm.nix's command lines by the real host-launcher
# (HOST_LAUNCHER=PATH checks another build, e.g. a branch's.)
if [ -n "${HOST_LAUNCHER:-}" ]; then cp "$HOST_LAUNCHER" "$tmp/host-launcher"; else CGO_ENABLED=0 go build -o "$tmp/host-launcher" ./cmd/host-launcher; fi
# traced() FILE.nix MARKER: the bash fragment FILE.nix prints between MARKER-BEGIN/-END lines.
traced() {
  nix-instantiate --store dummy:// --eval --strict "$1" --arg tp "$tmp/tp" > /dev/null 2> "$tmp/trace.log" || true
  sed -n "/#$2-BEGIN/,/#$2-END/p" "$tmp/trace.log" | sed 's/^trace: //'
}
shapes=()
traced nixos-module/tests/shapes.nix CREDLINK-SHAPES > "$tmp/shapes.sh"
# shellcheck disable=SC1091
source "$tmp/shapes.sh"
if [ "${#shapes[@]}" -ne 4 ]; then
  echo "nix: FAIL: expected 4 VM shapes from shapes.nix, got ${#shapes[@]}"; grep -v '^trace: evaluation warning' "$tmp/trace.log" | tail -5; exit 1
fi
mkdir -p "$tmp/plans" "$tmp/creds" "$tmp/run"
# Secrets of the manifest's lengths (44, 64, 96 bytes), random, searched for in every output.
head -c 33 /dev/urandom | base64 -w0 > "$tmp/creds/API_KEY"
head -c 48 /dev/urandom | base64 -w0 > "$tmp/creds/DB_PASSWORD"
head -c 72 /dev/urandom | base64 -w0 > "$tmp/creds/JWT_SECRET"
chmod 0400 "$tmp/creds"/*
for s in "${shapes[@]}"; do
  declare -n L="shape_${s}_launch" W="shape_${s}_wrapper" WP="shape_${s}_wrapper_path" R="shape_${s}_run" \
    C="shape_${s}_cmd" M="shape_${s}_manifest"
  printf '%s' "$M" > "$tmp/manifest-$s.json"
  printf '%s\n' "${C[@]}" > "$tmp/plans/$s.argv"   # microvm.nix's argv as bash parses it, for plan-check
  # The three scripts as the modules and microvm.nix write them, run in a chain by bash, with this
  # machine's paths for what exists only in a deployment: the wrapper's store path (microvm-run
  # execs it), host-launcher (and `run` → `plan --format json`), the manifest, the runtime
  # directory, bash; and /dev/null for the macvtap tap devices microvm-run opens (exec 3<>/dev/tapN).
  fixsh='1s|^#!/nix/store/.*/bin/bash$|#!/usr/bin/env bash|'
  printf '%s\n' "$W" | sed -E "$fixsh" > "$tmp/wrapper-$s.sh"
  printf '%s\n' "$L" | sed -E -e "$fixsh" \
    -e "s#exec /nix/store/[^ ]+/bin/host-launcher run #exec $tmp/host-launcher plan --format json #" \
    -e "s#--manifest /nix/store/[^ ]+#--manifest $tmp/manifest-$s.json#" \
    -e "s#--runtime-dir /run/credlink/[^ ]+#--runtime-dir $tmp/run#" \
    -e "s#-- \"[$]@\" ;;#-- \"\$@\" > $tmp/plans/$s.json ;;#" > "$tmp/launch-$s.sh"
  printf '%s\n' "$R" | sed -E -e "s#$WP#$tmp/wrapper-$s.sh#" \
    -e 's#^exec ([0-9]+)<>/dev/tap\$\(< /sys/class/net/[^)]+\)$#exec \1<>/dev/null#' > "$tmp/microvm-run-$s.sh"
  chmod +x "$tmp/wrapper-$s.sh" "$tmp/launch-$s.sh"
  grep -q "$tmp/host-launcher plan --format json" "$tmp/launch-$s.sh" && grep -q "$tmp/wrapper-$s.sh" "$tmp/microvm-run-$s.sh" \
    || { echo "scripts of $s: unexpected shape"; fail=1; }
  mkdir -p "$tmp/state-$s"   # microvm@NAME's WorkingDirectory (volumes are created here)
  # (the plan goes to plans/NAME.json: microvm-run's own output, e.g. mkfs's, stays out of it)
  if ! (cd "$tmp/state-$s" && CREDENTIALS_DIRECTORY=$tmp/creds CREDLINK_LAUNCH=$tmp/launch-$s.sh bash "$tmp/microvm-run-$s.sh") \
       > "$tmp/plans/$s.log" 2>&1; then
    echo "microvm-run → wrapper → launch → host-launcher plan, $s: FAIL"; sed 's/^/    /' "$tmp/plans/$s.log"; fail=1
  fi
  rm -rf "$tmp/state-$s"
  unset -n L W WP R C M
done
if [ $fail -eq 0 ]; then
  res=$(nixeval --json nixos-module/tests/plan-check.nix --arg tp "$tmp/tp" --arg planDir "$tmp/plans")
  echo "translation (microvm.nix command lines → host-launcher plan): $res"
  case "$res" in *'"failed":[]'*) ;; *) fail=1 ;; esac
fi
for f in "$tmp"/creds/*; do
  if grep -rqF -- "$(cat "$f")" "$tmp/plans" "$tmp/shapes.sh"; then echo "secret $(basename "$f") found in plan output: FAIL"; fail=1; fi
done
echo "secret scan: $(ls "$tmp/creds" | wc -l) secrets searched in ${#shapes[@]} plans and their logs"

# 3b. the rendered units under the real systemd-analyze: the store paths of Exec*= lines point at
# /bin/true (they do not exist here); everything else is verified as written.
if command -v systemd-analyze >/dev/null; then
  unit_files=(); unit_texts=()
  traced nixos-module/tests/units.nix CREDLINK-UNITS > "$tmp/units.sh"
  # shellcheck disable=SC1091
  source "$tmp/units.sh"
  [ "${#unit_files[@]}" -ge 10 ] || { echo "units: FAIL: expected at least 10 rendered units, got ${#unit_files[@]}"; fail=1; }
  for i in "${!unit_files[@]}"; do
    f="$tmp/units/${unit_files[$i]}"; mkdir -p "$(dirname "$f")"
    printf '%s\n' "${unit_texts[$i]}" | sed -E '/^Exec[A-Za-z]*=/s#(=[-+!@:]*)(/nix/store/[^ ]+|/var/lib/microvms/[^ ]+)#\1/bin/true#' > "$f"
  done
  uverify() { # dir unit-file [instance]
    local out bad
    out=$(cd "$1" && systemd-analyze verify --man=no "$1/$2" ${3:+"$3"} 2>&1 | sed "s|$1/||g" || true)
    # systemd 252 here predates ImportCredential= (254) and OpenFile= (253), as in systemd/check.sh.
    bad=$(printf '%s\n' "$out" | grep -v -E "Unknown key '(ImportCredential|OpenFile)'|^$" || true)
    if [ -n "$bad" ]; then echo "systemd-analyze verify ${3:-$2} (rendered by Nix): FAIL"; echo "$bad" | sed 's/^/    /'; fail=1
    else echo "systemd-analyze verify ${3:-$2} (rendered by Nix): ok"; fi
  }
  uverify "$tmp/units/microvm" microvm@.service microvm@web.service
  uverify "$tmp/units/standalone" credlink-vm-chv.service
  uverify "$tmp/units/guest" guest-agent.service
  # Same exposure as the files in systemd/ (make units holds their budgets).
  for u in microvm-score:microvm@.service:2.5 standalone:credlink-vm-chv.service:3.0 guest:guest-agent.service:2.0; do
    IFS=: read -r d n b <<<"$u"
    sc=$(cd "$tmp/units/$d" && systemd-analyze security --offline=true "$tmp/units/$d/$n" 2>/dev/null | sed -n 's/.*Overall exposure level for .*: \([0-9.]*\) .*/\1/p')
    ok=$(awk -v s="$sc" -v b="$b" 'BEGIN { print (s != "" && s + 0 <= b + 0) ? "ok" : "FAIL" }')
    echo "exposure $n (rendered by Nix): ${sc:-?} (budget $b) $ok"; [ "$ok" = ok ] || fail=1
  done
else
  echo "systemd-analyze missing: .ci/run installs systemd"; fail=1
fi

# 4. type errors say why (the module system's message names the option and our type)
expect_error() { # name expected-substring nix-expression
  local err
  if err=$(nixeval --arg tp "$tmp/tp" -E "{ tp }: $3" 2>&1); then echo "type error $1: FAIL (evaluated)"; fail=1; return; fi
  if grep -qF -- "$2" <<<"$err"; then echo "type error $1: ok"; else echo "type error $1: FAIL"; echo "$err" | grep -v '^trace:' | head -5 | sed 's/^/    /'; fail=1; fi
}
h="(import $root/nixos-module/tests/harness.nix { libDir = tp + \"/lib/lib\"; microvmDir = tp + \"/microvm\"; })"
expect_error secret-path-literal "outside the Nix store" "$h.hostVm { credentials.K = $root/README.md; }"
expect_error secret-store-path "outside the Nix store" "$h.hostVm { credentials.K = \"/nix/store/aaaa-k\"; }"
expect_error cid-reserved "between 3 and 4294967294" "$h.hostVm { guestCid = 2; }"
expect_error manifest-conflict "conflicting definition values" "$h.hostVm2 { manifest.unexpected = \"warn\"; } { manifest.unexpected = \"fail\"; }"
expect_error type-conflict-without-force "conflicting definition values" "$h.unitConflict"

# flake.nix and the clan service (what evaluates without nixpkgs; see README)
fl=(nixos-module/tests/flake.nix --arg tp "$tmp/tp" --arg root "$root")
res=$(nixeval --json "${fl[@]}" -A failed)
echo "flake + clan: $(nixeval --json "${fl[@]}" -A passed) cases, failed: $res"
[ "$res" = "[]" ] || fail=1
# The clan vars generator script, run for real: exact lengths, a bad prompt refused.
nix-instantiate --store dummy:// --eval --strict --arg tp "$tmp/tp" --arg root "$root" \
  -E "{ tp, root }: builtins.trace (import $root/nixos-module/tests/flake.nix { inherit tp root; }).script 0" 2>&1 >/dev/null \
  | grep -v '^trace: evaluation warning' | sed '1s/^trace: //' > "$tmp/generate.sh"
mkdir -p "$tmp/gen/out" "$tmp/gen/prompts"
head -c 48 /dev/urandom | base64 -w0 > "$tmp/gen/prompts/JWT_SECRET"; echo >> "$tmp/gen/prompts/JWT_SECRET"
if (cd "$tmp/gen" && out=$tmp/gen/out prompts=$tmp/gen/prompts bash "$tmp/generate.sh") \
   && [ "$(wc -c < "$tmp/gen/out/API_KEY")" -eq 44 ] && [ "$(wc -c < "$tmp/gen/out/DB_PASSWORD")" -eq 64 ] \
   && [ "$(wc -c < "$tmp/gen/out/JWT_SECRET")" -eq 64 ] && [ "$(stat -c %a "$tmp/gen/out/API_KEY")" = 600 ]; then
  echo "clan generator: ok (44/64/64 bytes, mode 0600 before clan installs it 0400)"
else echo "clan generator: FAIL"; fail=1; fi
printf 'short\n' > "$tmp/gen/prompts/JWT_SECRET"; rm -f "$tmp/gen/out"/*
if err=$(cd "$tmp/gen" && out=$tmp/gen/out prompts=$tmp/gen/prompts bash "$tmp/generate.sh" 2>&1); then
  echo "clan generator, short prompt: FAIL (accepted)"; fail=1
elif grep -q "JWT_SECRET: 5 bytes, want at least 64" <<<"$err" && ! grep -q short <<<"$err"; then echo "clan generator, short prompt: refused ok"
else echo "clan generator, short prompt: FAIL: $err"; fail=1; fi

[ $fail -eq 0 ] && echo "nix: ok" || echo "nix: FAIL"
exit $fail
