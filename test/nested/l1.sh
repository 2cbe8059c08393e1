#!/usr/bin/env bash
# Boots L1 — a QEMU TCG guest with AMD SVM (nested paging) that runs this machine's own root
# file system read-only over virtio-9p — and runs one command inside it, where /dev/kvm and
# /dev/vhost-vsock exist, so the command can start L2 guests with `-accel kvm` and
# `-device vhost-vsock-pci`. The console goes to stdout; the exit status is the command's.
#
#   test/nested/l1.sh [--mem 3G] [--smp 1] [--work DIR] -- COMMAND [ARG...]
#
# COMMAND runs as root in a chroot of the host's / (read-only) with fresh /proc, /sys, /dev,
# /run and /var/tmp (tmpfs; TMPDIR=/var/tmp), the host's /tmp visible read-only, and DIR (default:
# a new directory under the cache) mounted read-write at the same path: write results there.
# Environment variables named CREDLINK_* and NESTED_* are passed in. Needs qemu-system-x86_64
# with TCG (no KVM on the host) and test/e2e/assets.sh's kernel; the L1 initramfs is cached
# under $CREDLINK_NESTED_CACHE (default .cache/nested), keyed by the kernel version and this
# directory's l1-init.
#
# Example (what `make bench` or a one-off experiment can reuse):
#   test/nested/l1.sh -- sh -c 'qemu-system-x86_64 -accel kvm -cpu host … ; ls -l /dev/kvm'
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
cache=${CREDLINK_NESTED_CACHE:-$top/.cache/nested}
mem=3G smp=1 work=
while [ $# -gt 0 ]; do
  case $1 in
    --mem) mem=$2; shift 2 ;;
    --smp) smp=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    --) shift; break ;;
    *) echo "usage: l1.sh [--mem 3G] [--smp 1] [--work DIR] -- COMMAND [ARG...]" >&2; exit 2 ;;
  esac
done
[ $# -gt 0 ] || { echo "l1.sh: no command" >&2; exit 2; }
e2e=$("$top/test/e2e/assets.sh")
kver=$(cat "$e2e/kver")
mkdir -p "$cache"
key=$( { echo "$kver"; cat "$here/l1-init" "$here/l1.sh"; } | sha256sum | cut -c1-12)
initrd=$cache/l1-initrd-$key.gz
if [ ! -s "$initrd" ]; then
  empty=$(mktemp -d); trap 'rm -rf "$empty"' EXIT
  "$top/test/e2e/mkinitrd.sh" "$e2e" "$initrd.tmp" "$here/l1-init" "$empty" \
    virtio_pci 9pnet_virtio 9p kvm kvm-amd vhost_vsock
  mv "$initrd.tmp" "$initrd"
fi
if [ -z "$work" ]; then mkdir -p "$cache/run"; work=$(mktemp -d "$cache/run/l1.XXXXXX"); fi
work=$(cd "$work" && pwd)
script=$work/.l1-run.sh
{
  echo '#!/bin/sh'
  echo 'export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TMPDIR=/var/tmp'
  env | grep -E '^(CREDLINK|NESTED)_[A-Za-z0-9_]*=' | while IFS= read -r kv; do printf 'export %s=%q\n' "${kv%%=*}" "${kv#*=}"; done
  printf 'cd %q 2>/dev/null || cd /\n' "$PWD"
  printf 'exec'; printf ' %q' "$@"; echo
} > "$script"
# The host root is shared read-only; multidevs=remap keeps inode numbers unique across the
# host's file systems. -no-reboot + panic=-1: any L1 failure ends QEMU instead of hanging.
status=$work/.l1-status
rm -f "$status"
qemu-system-x86_64 -machine q35 -accel tcg -cpu max -m "$mem" -smp "$smp" -nodefaults -display none \
  -serial stdio -no-reboot -kernel "$e2e/vmlinux" -initrd "$initrd" \
  -append "console=ttyS0 quiet panic=-1 nested.run=$script nested.work=$work" \
  -virtfs local,path=/,mount_tag=host,security_model=none,readonly=on,multidevs=remap \
  -virtfs local,path="$work",mount_tag=work,security_model=none,multidevs=remap </dev/null |
  while IFS= read -r line; do
    line=${line%$'\r'}
    printf '%s\n' "$line"
    case $line in NESTED-EXIT*) set -- $line; echo "${2:-125}" > "$status" ;; esac
  done
[ -s "$status" ] || { echo "l1.sh: L1 ended without reporting the command's exit status" >&2; exit 125; }
exit "$(cat "$status")"
