#!/usr/bin/env bash
# Builds the end-to-end guest's initramfs (cpio newc + gzip):
#   mkinitrd.sh CACHE OUT.gz INIT STAGE_FILES_DIR module...
# CACHE is test/e2e/assets.sh's directory (kernel modules under kroot/); everything in
# STAGE_FILES_DIR is copied to / of the image; the named modules and their dependencies
# (from modules.dep) are loaded by INIT in the order of /modules.order.
set -euo pipefail
cache=$1 out=$2 init=$3 files=$4; shift 4
kver=$(cat "$cache/kver")
moddir=$cache/kroot/lib/modules/$kver
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage"/{bin,proc,sys,dev,tmp,run,etc,lib/modules}
cp /bin/busybox "$stage/bin/busybox"
install -m 0755 "$init" "$stage/init"
cp -a "$files"/. "$stage/"
: > "$stage/modules.order"
declare -A seen
add() { # path relative to moddir, dependencies first
  local rel=$1 dep
  [[ -n ${seen[$rel]:-} ]] && return
  for dep in $(awk -v m="$rel:" '$1==m {for(i=2;i<=NF;i++) print $i}' "$moddir/modules.dep"); do add "$dep"; done
  seen[$rel]=1
  mkdir -p "$stage/lib/modules/$(dirname "$rel")"
  cp "$moddir/$rel" "$stage/lib/modules/$rel"
  echo "$rel" >> "$stage/modules.order"
}
for m in "$@"; do
  rel=$(grep -E "(^|/)$m\.ko(\.xz|\.zst)?:" "$moddir/modules.dep" | cut -d: -f1 || true)
  [[ -n $rel ]] || { echo "mkinitrd: module $m not found for $kver" >&2; exit 1; }
  add "$rel"
done
(cd "$stage" && find . -print0 | sort -z | cpio --null -o -H newc --quiet) | gzip -1 > "$out"
