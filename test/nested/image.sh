#!/usr/bin/env bash
# Builds (once per inputs) the bootable image of a systemd ≥ 254 test guest and prints its
# directory (root.ext4, initrd.gz, key):
#
#   test/nested/image.sh trixie|bookworm-backports GUEST-AGENT-BINARY
#
# The guest is a distribution guest, not a test rig: rootfs.sh's debootstrapped Debian with
# the Debian kernel's modules under /lib/modules (those a VM uses: everything but sound, GPU,
# media, wireless/wired NIC, InfiniBand, SCSI, USB and similar hardware drivers), so udev
# loads virtio-console, vsock, the ACPI button and evdev itself and systemd-logind turns the
# power button into a clean poweroff. The initramfs only mounts the root (virtio-blk, ext4).
# Added: credlink's shipped guest-agent.service, unmodified (a drop-in copies its log to the
# console so the test can read it), /etc/credlink/manifest.json, and units that print what
# the test checks, with NESTED- markers, on the console:
#   nested-report    systemd's version, every credential PID 1 imported (name, size, sha256
#                    prefix), the SMBIOS table's credentials (`guest-agent inspect --table`) and
#                    `guest-agent check --source auto` (systemd's import against the SMBIOS
#                    table, as root)
#   nested-app       Requires=/After= guest-agent: prints NESTED-APP-STARTED once started
#   nested-shutdown  at shutdown: what logind logged about the power key, and whether
#                    nested-app ever ran (it leaves /run/nested-app-ran)
#   nested-analyze   once the boot is over: systemd-analyze and the slowest units
#   nested-never-ready  (kernel command line nested.never_ready=1) a start job that never
#                    finishes, so PID 1 keeps sending STATUS= to vmm.notify_socket
# Cached under $CREDLINK_NESTED_CACHE/img-SUITE-KEY, KEY = the root's package versions, the
# kernel version, the agent binary, the shipped unit and this script.
set -euo pipefail
exec 3>&1 1>&2 # stdout carries only the result
suite=${1:?usage: image.sh SUITE GUEST-AGENT}; agent=${2:?usage: image.sh SUITE GUEST-AGENT}
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
cache=${CREDLINK_NESTED_CACHE:-$top/.cache/nested}
e2e=$("$top/test/e2e/assets.sh")
kver=$(cat "$e2e/kver")
base=$("$here/rootfs.sh" "$suite")
case $suite in trixie) tls_min=8192 ;; *) tls_min=1024 ;; esac  # < 257 imports only 4 KiB
key=$( { cat "$base/packages.txt"; echo "$kver $tls_min"; sha256sum < "$agent"; cat "$top/systemd/guest-agent.service" "$0" "$top/test/e2e/systemd-init"; } | sha256sum | cut -c1-12)
out=$cache/img-$suite-$key
if [ -s "$out/root.ext4" ] && [ -s "$out/initrd.gz" ]; then echo "$out" >&3; exit 0; fi
log() { echo "image($suite): $*" >&2; }
tmp=$(mktemp -d "$cache/img.XXXXXX"); trap 'rm -rf "$tmp"' EXIT
root=$tmp/root
cp -a "$base" "$root"; rm -f "$root/.complete"
# The kernel's modules, as linux-image-* installs them (minus hardware a VM never has).
mods=$e2e/kroot/lib/modules/$kver
mkdir -p "$root/lib/modules/$kver"
(cd "$mods" && find . -type f \( -name '*.ko*' -o -name 'modules.*' \) \
  -not -path './kernel/sound/*' -not -path './kernel/drivers/gpu/*' -not -path './kernel/drivers/media/*' \
  -not -path './kernel/drivers/net/wireless/*' -not -path './kernel/drivers/net/ethernet/*' \
  -not -path './kernel/drivers/infiniband/*' -not -path './kernel/drivers/scsi/*' -not -path './kernel/drivers/usb/*' \
  -not -path './kernel/drivers/iio/*' -not -path './kernel/drivers/staging/*' -not -path './kernel/drivers/comedi/*' \
  -not -path './kernel/drivers/isdn/*' -not -path './kernel/drivers/bluetooth/*' -not -path './kernel/drivers/mtd/*' \
  -not -path './kernel/drivers/target/*' -not -path './kernel/drivers/mmc/*' -not -path './kernel/drivers/hwmon/*' \
  -not -path './kernel/drivers/video/*' -not -path './kernel/net/wireless/*' -not -path './kernel/net/mac80211/*' \
  -print0 | cpio --null -pdm --quiet "$root/lib/modules/$kver")
depmod -b "$root" "$kver"

install -D -m 0755 "$agent" "$root/usr/bin/guest-agent"
u=$root/etc/systemd/system
install -D -m 0644 "$top/systemd/guest-agent.service" "$u/guest-agent.service"
mkdir -p "$u/guest-agent.service.d" "$u/multi-user.target.wants" "$root/etc/credlink"
printf '[Service]\nStandardError=journal+console\n' > "$u/guest-agent.service.d/nested-console.conf"
cat > "$root/etc/credlink/manifest.json" <<J
{"credentials": {
  "API_KEY": {"bytes": 44}, "DB_PASSWORD": {"bytes": 64},
  "JWT_SECRET": {"min_bytes": 64, "max_bytes": 128},
  "TLS_BUNDLE": {"min_bytes": $tls_min},
  "ENVIRONMENT": {"secret": false}},
 "unexpected": "fail"}
J
cat > "$u/nested-report.service" <<'U'
[Unit]
Description=nested test: what PID 1 imported, and systemd's import checked against SMBIOS
[Service]
Type=oneshot
StandardOutput=tty
TTYPath=/dev/console
ExecStart=/bin/sh -c 'echo "NESTED-SYSTEMD $(systemctl --version | head -1)"; for f in /run/credentials/@system/*; do echo "NESTED-IMPORTED $(basename $f) $(stat -c %%s $f) $(sha256sum < $f | cut -c1-16)"; done; /usr/bin/guest-agent inspect --table 2>&1 | sed "s/^/NESTED-SMBIOS /"; /usr/bin/guest-agent check --source auto --credentials-dir /run/credentials/@system --manifest /etc/credlink/manifest.json 2>&1 | sed "s/^/NESTED-CHECK /"; echo NESTED-REPORT-DONE'
[Install]
WantedBy=multi-user.target
U
cat > "$u/nested-app.service" <<'U'
[Unit]
Description=nested test: an application that needs the credentials
Requires=guest-agent.service
After=guest-agent.service
[Service]
Type=oneshot
StandardOutput=tty
TTYPath=/dev/console
ExecStart=/bin/sh -c 'touch /run/nested-app-ran; echo "NESTED-APP-STARTED agent=$(systemctl is-active guest-agent.service)"'
[Install]
WantedBy=multi-user.target
U
cat > "$u/nested-shutdown.service" <<'U'
[Unit]
Description=nested test: report the power key at shutdown
After=systemd-logind.service systemd-journald.service
[Service]
Type=oneshot
RemainAfterExit=yes
StandardOutput=tty
TTYPath=/dev/console
ExecStart=/bin/true
ExecStop=/bin/sh -c 'for i in $(seq 1 30); do k=$(journalctl -b -u systemd-logind -o cat --no-pager | grep -m1 -i "power key"); [ -n "$k" ] && break; sleep 0.1; done; echo "NESTED-SHUTDOWN $k"; echo "NESTED-APP-RAN $([ -e /run/nested-app-ran ] && echo yes || echo no)"'
[Install]
WantedBy=multi-user.target
U
cat > "$u/nested-analyze.service" <<'U'
[Unit]
Description=nested test: once the boot is over, where its time went
[Service]
Type=exec
StandardOutput=tty
TTYPath=/dev/console
ExecStart=/bin/sh -c 'systemctl is-system-running --wait >/dev/null; systemd-analyze | head -1 | sed "s/^/NESTED-ANALYZE /"; systemd-analyze blame --no-pager | head -8 | sed "s/^/NESTED-BLAME /"'
[Install]
WantedBy=multi-user.target
U
cat > "$u/nested-never-ready.service" <<'U'
[Unit]
Description=nested test: a start job that never finishes
ConditionKernelCommandLine=nested.never_ready=1
[Service]
Type=notify
NotifyAccess=none
ExecStart=/bin/sleep infinity
TimeoutStartSec=infinity
[Install]
WantedBy=multi-user.target
U
for s in guest-agent nested-report nested-app nested-shutdown nested-analyze nested-never-ready; do
  ln -sf "/etc/systemd/system/$s.service" "$u/multi-user.target.wants/$s.service"
done
log "mkfs.ext4 ($(du -sm "$root" | cut -f1) MiB)"
mkfs.ext4 -q -F -L root -d "$root" "$tmp/root.ext4" 900M
empty=$tmp/empty; mkdir -p "$empty"
"$top/test/e2e/mkinitrd.sh" "$e2e" "$tmp/initrd.gz" "$top/test/e2e/systemd-init" "$empty" virtio_pci virtio_blk ext4 crc32c_generic
rm -rf "$root"
echo "$key" > "$tmp/key"
rm -rf "$out"; mv "$tmp" "$out"; trap - EXIT
echo "$out" >&3
