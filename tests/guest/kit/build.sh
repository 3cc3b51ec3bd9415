#!/usr/bin/env bash
# Builds the L2 guest kit from Debian's archive into $VMMD_CACHE/kit/<kernel version>/:
#   bzImage         Debian's cloud kernel, as packaged
#   vmlinux         the same kernel as an ELF with the PVH note (cut out of the bzImage's LZ4 payload)
#   root/           the unpacked kernel package (modules for L1: kvm.ko, kvm-amd.ko, ...)
#   base.cpio       busybox-static, virtio/button/evdev modules (depmod'ed), qemu-ga and iperf3 + their
#                   libraries
#   initramfs.cpio  base.cpio + a small cpio with /init, /etc/acpi and /tests (tests/guest/kit/l2)
#   env             KIT_DIR KIT_KVER KIT_BZIMAGE KIT_VMLINUX KIT_INITRAMFS KIT_ROOT (shell syntax)
# Prints the kit directory. Only the small cpio is rebuilt when l2/ changes.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

pkg=$(kit_kernel_package)
kver=${pkg#linux-image-}
dir="$VMMD_CACHE/kit/$kver"
mkdir -p "$dir"

if [ ! -e "$dir/root/.done" ]; then
  deb=$(kit_fetch_deb "$pkg")
  kit_log "unpacking $(basename "$deb")"
  rm -rf "$dir/root"
  dpkg -x "$deb" "$dir/root"
  depmod -b "$dir/root" "$kver"   # the package ships no modules.dep
  touch "$dir/root/.done"
fi

if [ ! -e "$dir/bzImage" ]; then
  cp "$dir/root/boot/vmlinuz-$kver" "$dir/bzImage.tmp" && mv "$dir/bzImage.tmp" "$dir/bzImage"
fi
if [ ! -e "$dir/vmlinux" ]; then
  off=$(grep -obUaP '\x02\x21\x4c\x18' "$dir/bzImage" | head -n1 | cut -d: -f1)
  [ -n "$off" ] || kit_die "no LZ4 payload in $dir/bzImage"
  # lz4 complains about the bytes after the payload; the ELF is whole (checked below).
  tail -c +$((off + 1)) "$dir/bzImage" | lz4 -dc >"$dir/vmlinux.tmp" 2>/dev/null || true
  readelf -n "$dir/vmlinux.tmp" 2>/dev/null | grep -q 'Xen.*0x00000012' ||
    readelf -n "$dir/vmlinux.tmp" 2>/dev/null | grep -qi 'Unknown note type: (0x00000012)' ||
    kit_die "vmlinux from $dir/bzImage has no PVH (XEN_ELFNOTE_PHYS32_ENTRY) note"
  mv "$dir/vmlinux.tmp" "$dir/vmlinux"
fi

# iperf3 (Debian's, with libiperf and libcrypto): TCP throughput for the network benchmark and
# scenarios; busybox has ping, nc, nslookup and udhcpc but nothing that measures a stream.
command -v iperf3 >/dev/null || kit_die "iperf3 is missing (scripts/install-deps.sh)"
modules=(virtio_pci virtio_mmio virtio_blk virtio_net virtio_console virtio_rng button evdev)
key=$(printf '%s\n' "$kver" "${modules[*]}" "$(sha256sum "$(command -v busybox)" /usr/sbin/qemu-ga "$(command -v iperf3)")" \
      "$(sha256sum "$KIT_SRC/build.sh" "$KIT_SRC/lib.sh")" | sha256sum | cut -c1-16)
if [ "$(cat "$dir/base.key" 2>/dev/null)" != "$key" ]; then
  kit_log "building base.cpio"
  stage="$dir/stage.base"
  rm -rf "$stage"
  kit_busybox "$stage"
  mdir="lib/modules/$kver"
  for ko in $(modprobe -d "$dir/root" -S "$kver" --show-depends -a "${modules[@]}" | awk '$1 == "insmod" {print $2}' | sort -u); do
    rel=${ko#"$dir/root/"}
    install -D -m 0644 "$dir/root/$rel" "$stage/$rel"
  done
  cp "$dir/root/$mdir/modules.order" "$dir/root/$mdir/modules.builtin"* "$stage/$mdir/"
  depmod -b "$stage" "$kver"
  kit_copy_elf "$stage" /usr/sbin/qemu-ga
  kit_copy_elf "$stage" "$(command -v iperf3)" /usr/bin/iperf3
  cp -L /usr/lib/os-release "$stage/etc/os-release"
  python3 "$KIT_SRC/mkcpio.py" "$dir/base.cpio" "$stage" --node /dev/console:600:c:5:1 --node /dev/null:666:c:1:3
  rm -rf "$stage"
  echo "$key" >"$dir/base.key"
fi

# The small part: /init, acpid actions and the test scripts.
okey=$(kit_hash "$KIT_SRC/l2")-$(cat "$dir/base.key")
if [ "$(cat "$dir/initramfs.key" 2>/dev/null)" != "$okey" ]; then
  python3 "$KIT_SRC/mkcpio.py" "$dir/overlay.cpio" "$KIT_SRC/l2"
  cat "$dir/base.cpio" "$dir/overlay.cpio" >"$dir/initramfs.cpio.tmp"
  mv "$dir/initramfs.cpio.tmp" "$dir/initramfs.cpio"
  echo "$okey" >"$dir/initramfs.key"
fi

cat >"$dir/env" <<EOT
KIT_DIR='$dir'
KIT_KVER='$kver'
KIT_ROOT='$dir/root'
KIT_BZIMAGE='$dir/bzImage'
KIT_VMLINUX='$dir/vmlinux'
KIT_INITRAMFS='$dir/initramfs.cpio'
EOT
echo "$dir"
