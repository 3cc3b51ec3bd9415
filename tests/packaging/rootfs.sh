#!/usr/bin/env bash
# Builds (once) the Debian 12 root file system the packaging test boots as L1: debootstrap
# bookworm, minbase plus systemd as PID 1, udev (loads kvm_amd), the generic kernel with its
# initramfs (L1 boots its own kernel, as an installed system does) and vmmd's runtime libraries,
# so that `apt-get install ./vmmd_*.deb` resolves offline inside L1.
#
#   tests/packaging/rootfs.sh   -> prints the path of the cached tarball
#
# The tarball is cached as $VMMD_CACHE/packaging/rootfs-KEY.tar, KEY a hash of this file (the
# package list and the setup below; kit_rootfs_tarball in tests/guest/kit/lib.sh); a changed
# script builds a new one. Needs root and deb.debian.org (first run only).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
source "$top/tests/guest/kit/lib.sh"

# The root file system is /dev/vda (virtio-blk), the console the first serial port; no network.
setup() {
  local root=$1
  echo vmmd-pkgtest >"$root/etc/hostname"
  printf '/dev/vda / ext4 rw,errors=remount-ro 0 1\n' >"$root/etc/fstab"
  printf 'kvm_amd\n' >"$root/etc/modules-load.d/kvm.conf"
  chroot "$root" passwd -d root >/dev/null
  # No package lists: everything the .deb needs is installed, and L1 has no network anyway.
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*_Packages
}

kit_rootfs_tarball packaging setup systemd systemd-sysv udev dbus kmod iproute2 procps linux-image-amd64 \
  initramfs-tools libuv1 libsqlite3-0 libnettle8 zlib1g libsystemd0 libxml2 libnl-3-200 libnl-route-3-200 \
  libnftables1 dnsmasq-base
