#!/usr/bin/env bash
# Prepares (once) and caches the guest boot assets the end-to-end tests and the fixture capture
# need: a PVH vmlinux unpacked from Debian's current kernel package (never installed on the host)
# and its module tree. Prints the cache directory on stdout.
#
#   test/e2e/assets.sh            # uses $CREDLINK_E2E_CACHE or .cache/e2e in the repo
#
# Debian's kernel package is resolved through linux-image-amd64 rather than hard-coded, so a
# point release does not break the harness.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
cache=${CREDLINK_E2E_CACHE:-$top/.cache/e2e}
mkdir -p "$cache"
log() { echo "assets: $*" >&2; }

need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
# The initramfs has no libc, so Debian's dynamic busybox would not run there: require the static one.
dpkg -s busybox-static >/dev/null 2>&1 || need+=(busybox-static)
command -v cpio >/dev/null || need+=(cpio)
command -v depmod >/dev/null || need+=(kmod)
command -v xz >/dev/null || need+=(xz-utils)
if [ ${#need[@]} -gt 0 ]; then
  log "installing ${need[*]}"
  [ "$(id -u)" = 0 ] || { log "need root to install ${need[*]}"; exit 1; }
  apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >&2
fi

if [ ! -s "$cache/kver" ]; then
  pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
  if [ -z "$pkg" ]; then apt-get update -q >&2; pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}'); fi
  [ -n "$pkg" ] || { log "cannot resolve linux-image-amd64"; exit 1; }
  kver=${pkg#linux-image-}
  log "kernel $kver"
  tmp=$(mktemp -d "$cache/dl.XXXX")
  (cd "$tmp" && apt-get download "$pkg" >&2)
  rm -rf "$cache/kroot"
  dpkg -x "$tmp"/"$pkg"_*.deb "$cache/kroot"
  rm -rf "$tmp"
  depmod -b "$cache/kroot" "$kver"
  echo "$kver" > "$cache/kver"
fi
kver=$(cat "$cache/kver")

if [ ! -s "$cache/vmlinux" ]; then
  # Debian's bzImage carries an XZ-compressed ELF with a PVH note; QEMU boots that ELF directly,
  # about twice as fast as the bzImage. Try every XZ magic until one decompresses to an ELF.
  img="$cache/kroot/boot/vmlinuz-$kver"
  for off in $(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$img" | cut -d: -f1); do
    tail -c +$((off + 1)) "$img" | xz -dc 2>/dev/null > "$cache/vmlinux.tmp" || true
    if [ "$(head -c 4 "$cache/vmlinux.tmp" | od -An -tx1 | tr -d ' ')" = 7f454c46 ]; then
      mv "$cache/vmlinux.tmp" "$cache/vmlinux"; break
    fi
  done
  rm -f "$cache/vmlinux.tmp"
  [ -s "$cache/vmlinux" ] || { log "no XZ-compressed ELF in $img"; exit 1; }
fi
echo "$cache"
