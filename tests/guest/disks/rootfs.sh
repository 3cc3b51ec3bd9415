#!/usr/bin/env bash
# Builds (once) the root file system of the Debian system disk (tests/guest/disks/build.sh):
# debootstrap bookworm, minbase plus systemd as PID 1, udev, Debian's cloud kernel (the guest
# kit's kernel) with its initramfs, the real qemu-guest-agent (started by its udev rule when
# the virtio-serial port org.qemu.guest_agent.0 appears) and dbus, without which systemd-logind
# does not run and nothing would act on the ACPI power button (QMP system_powerdown). Root has
# no password, so the serial getty's login prompt lets anyone in: a test image, never a
# production one.
#
#   tests/guest/disks/rootfs.sh   -> prints the path of the cached tarball
#
# Cached as $VMMD_CACHE/disks/rootfs-KEY.tar, KEY a hash of this file (kit_rootfs_tarball in
# tests/guest/kit/lib.sh). Needs root and deb.debian.org (first run only); a few minutes.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../../.." && pwd)
source "$top/tests/guest/kit/lib.sh"

# The root file system is the first partition of the first virtio disk, found by its UUID (the
# one build.sh gives mke2fs); the console is the first serial port, where systemd's getty
# generator starts serial-getty@ttyS0 because the kernel command line names it.
setup() {
  local root=$1
  echo vmmd-disk >"$root/etc/hostname"
  printf '127.0.1.1 vmmd-disk\n' >>"$root/etc/hosts"
  printf 'UUID=%s / ext4 rw,errors=remount-ro 0 1\n' "$(cat "$here/root.uuid")" >"$root/etc/fstab"
  chroot "$root" passwd -d root >/dev/null
  # Smaller: no package lists, no downloaded .debs, no documentation or translations.
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*_Packages \
         "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/locale/*
}

kit_rootfs_tarball disks setup systemd systemd-sysv udev dbus kmod linux-image-cloud-amd64 initramfs-tools \
  qemu-guest-agent
