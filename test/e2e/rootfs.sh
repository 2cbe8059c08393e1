#!/usr/bin/env bash
# Prepares (once) and caches a Debian 12 root file system with systemd for the real-systemd
# end-to-end scenario: debootstrap minbase + systemd + udev, unpacked under the e2e cache.
# Prints the directory. Needs root (debootstrap) and the Debian mirror apt uses.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
cache=${CREDLINK_E2E_CACHE:-$top/.cache/e2e}
root=$cache/rootfs-bookworm
log() { echo "rootfs: $*" >&2; }
if [ -f "$root/.complete" ]; then echo "$root"; exit 0; fi
command -v debootstrap >/dev/null || { apt-get update -q >&2; DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >&2; }
command -v mkfs.ext4 >/dev/null || { DEBIAN_FRONTEND=noninteractive apt-get install -y -q e2fsprogs >&2; }
# The mirror apt is configured with, so that this works wherever apt does.
mirror=$(sed -n 's/^URIs: *\(http[^ ]*\/debian\)$/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
[ -n "$mirror" ] || mirror=$(awk '$1=="deb" && $2 ~ /debian$/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null)
[ -n "$mirror" ] || mirror=http://deb.debian.org/debian
rm -rf "$root"
log "debootstrap bookworm from $mirror (about a minute)"
debootstrap --variant=minbase --include=systemd,systemd-sysv,udev,kmod,iproute2 bookworm "$root" "$mirror" >&2
# A quiet, fast boot: no getty on the console, no network wait.
chroot "$root" systemctl mask getty@tty1.service serial-getty@ttyS0.service systemd-networkd-wait-online.service \
  apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer >&2 || true
echo e2e > "$root/etc/hostname"
rm -rf "$root"/var/cache/apt/archives/*.deb
touch "$root/.complete"
echo "$root"
