#!/usr/bin/env bash
# Prepares (once) and caches a debootstrapped Debian root with a systemd ≥ 254 for the nested
# suite, and prints its directory. Two flavours, the two the suite proves:
#
#   test/nested/rootfs.sh trixie               Debian 13, systemd 257
#   test/nested/rootfs.sh bookworm-backports   Debian 12 + systemd 254 from bookworm-backports
#
# The root is what a distribution guest has for what the suite checks: systemd as PID 1, udev
# (module autoloading, so the ACPI "button" and "evdev" modules come up as on any Debian VM),
# dbus + systemd-logind (which turns the power-button key into a clean poweroff). Needs root
# (debootstrap, chroot) and the Debian mirror apt is configured with; the host's own apt
# configuration is never changed.
#
# Cache: $CREDLINK_NESTED_CACHE (default .cache/nested in the repo)/rootfs-SUITE-RECIPE, where
# RECIPE hashes the package list and $recipe_version (bump it when the steps below change), so
# a changed recipe builds a new root. packages.txt in the
# root lists every installed package with its version (dpkg-query); image.sh keys the guest
# images on that list, so a root rebuilt with other versions gives new images.
set -euo pipefail
suite=${1:?usage: rootfs.sh trixie|bookworm-backports}
top=$(cd "$(dirname "$0")/../.." && pwd)
cache=${CREDLINK_NESTED_CACHE:-$top/.cache/nested}
log() { echo "rootfs($suite): $*" >&2; }
include=systemd,systemd-sysv,udev,kmod,dbus,libpam-systemd,iproute2
recipe_version=1
recipe=$(echo "$suite $include $recipe_version" | sha256sum | cut -c1-12)
root=$cache/rootfs-$suite-$recipe
if [ -f "$root/.complete" ]; then echo "$root"; exit 0; fi
[ "$(id -u)" = 0 ] || { log "needs root (debootstrap)"; exit 1; }
command -v debootstrap >/dev/null || { apt-get update -q >&2; DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >&2; }
mirror=$(sed -n 's/^URIs: *\(http[^ ]*\/debian\)$/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
[ -n "$mirror" ] || mirror=$(awk '$1=="deb" && $2 ~ /debian$/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null)
[ -n "$mirror" ] || mirror=http://deb.debian.org/debian
case $suite in
  trixie) base=trixie ;;
  bookworm-backports) base=bookworm ;;
  *) log "unknown suite $suite"; exit 2 ;;
esac
mkdir -p "$cache"
tmp=$root.tmp.$$
trap 'mountpoint -q "$tmp/proc" && umount "$tmp/proc"; rm -rf "$tmp"' EXIT
log "debootstrap $base from $mirror (minutes)"
# bookworm's debootstrap knows trixie (its script links to sid's) and bookworm's keyring verifies it.
debootstrap --variant=minbase --include=$include "$base" "$tmp" "$mirror" >&2
if [ "$suite" = bookworm-backports ]; then
  echo "deb $mirror bookworm-backports main" > "$tmp/etc/apt/sources.list.d/backports.list"
  mount -t proc proc "$tmp/proc"
  chroot "$tmp" apt-get update -q >&2
  DEBIAN_FRONTEND=noninteractive chroot "$tmp" apt-get install -y -q -t bookworm-backports systemd systemd-sysv udev libpam-systemd >&2
  umount "$tmp/proc"
fi
# A quiet boot: no getty on the console, no network wait, no timers.
chroot "$tmp" systemctl mask getty@tty1.service serial-getty@ttyS0.service systemd-networkd-wait-online.service \
  apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer dpkg-db-backup.timer >&2 || true
echo guest > "$tmp/etc/hostname"
chroot "$tmp" apt-get clean >&2
rm -rf "$tmp"/var/lib/apt/lists/*_Packages "$tmp"/var/cache/apt/*.bin
chroot "$tmp" dpkg-query -W -f '${Package} ${Version}\n' > "$tmp/packages.txt"
log "$(grep '^systemd ' "$tmp/packages.txt")"
rm -rf "$root"; mv "$tmp" "$root"; touch "$root/.complete"
echo "$root"
