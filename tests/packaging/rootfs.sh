#!/usr/bin/env bash
# Builds (once) the Debian 12 root file system the packaging test boots as L1: debootstrap
# bookworm, minbase plus systemd as PID 1, udev (loads kvm_amd), the generic kernel with its
# initramfs (L1 boots its own kernel, as an installed system does) and vmmd's runtime libraries,
# so that `apt-get install ./vmmd_*.deb` resolves offline inside L1.
#
#   tests/packaging/rootfs.sh   -> prints the path of the cached tarball
#
# The tarball is cached as $VMMD_CACHE/packaging/rootfs-KEY.tar, KEY a hash of this file (the
# package list and the setup below); a changed script builds a new one. Needs root and
# deb.debian.org (first run only).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
source "$top/tests/guest/kit/lib.sh"

suite=bookworm
mirror=${VMMD_DEBIAN_MIRROR:-http://deb.debian.org/debian}
packages=(systemd systemd-sysv udev dbus kmod iproute2 procps linux-image-amd64 initramfs-tools
          libuv1 libsqlite3-0 libnettle8 zlib1g libsystemd0 libxml2)

key=$(sha256sum <"$here/rootfs.sh" | cut -c1-16)  # the content only: any checkout shares the cache
dir="$VMMD_CACHE/packaging"
tarball="$dir/rootfs-$key.tar"
if [ -f "$tarball" ]; then echo "$tarball"; exit 0; fi
[ "$(id -u)" -eq 0 ] || kit_die "debootstrap needs root"
command -v debootstrap >/dev/null || kit_die "debootstrap is missing (apt-get install debootstrap)"
mkdir -p "$dir"
root=$(mktemp -d "$dir/build.XXXXXX")
trap 'umount -R "$root/proc" "$root/sys" "$root/dev" 2>/dev/null || true; rm -rf "$root"' EXIT

kit_log "debootstrap $suite (${#packages[@]} packages and their dependencies; minutes)"
start=$(date +%s)
include=$(IFS=,; echo "${packages[*]}")
debootstrap --variant=minbase --include="$include" "$suite" "$root" "$mirror" >"$root.log" 2>&1 ||
  { tail -n 30 "$root.log" >&2; kit_die "debootstrap failed (log: $root.log)"; }
rm -f "$root.log"

# The root file system is /dev/vda (virtio-blk), the console the first serial port; no network.
echo vmmd-pkgtest >"$root/etc/hostname"
printf '/dev/vda / ext4 rw,errors=remount-ro 0 1\n' >"$root/etc/fstab"
printf 'kvm_amd\n' >"$root/etc/modules-load.d/kvm.conf"
chroot "$root" passwd -d root >/dev/null
# No package lists: everything the .deb needs is installed, and L1 has no network anyway.
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*_Packages
ls "$root"/boot/vmlinuz-* "$root"/boot/initrd.img-* >/dev/null || kit_die "no kernel or initramfs in the root file system"
kit_log "debootstrap took $(( $(date +%s) - start ))s"

tar -C "$root" --numeric-owner --xattrs -cf "$tarball.tmp" .
mv "$tarball.tmp" "$tarball"
for stale in "$dir"/rootfs-*.tar; do  # earlier package lists' tarballs (~650 MB each)
  [ "$stale" = "$tarball" ] || rm -f "$stale"
done
echo "$tarball"
