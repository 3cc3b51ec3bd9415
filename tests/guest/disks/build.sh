#!/usr/bin/env bash
# Builds the bootable test disks from Debian packages, without mounting anything, into
# $VMMD_CACHE/disks/KEY/ (KEY: a hash of every input; a changed input builds a new set):
#
#   syslinux.raw  syslinux.qcow2   MBR (syslinux's mbr.bin) + one active FAT16 partition made by
#                                  mtools, SYSLINUX installed with `syslinux --install` (mtools
#                                  installer), booting the guest kit's kernel and initramfs to the
#                                  kit's userspace (L2READY marker, acpid, qemu-ga) on ttyS0
#   debian.raw    debian.qcow2     MBR with GRUB 2 for i386-pc (boot.img in the MBR, core.img from
#                                  grub-mkimage in the gap after it) + one ext4 partition made by
#                                  `mke2fs -d` from a debootstrapped Debian 12 (rootfs.sh): systemd,
#                                  Debian's cloud kernel, qemu-guest-agent, root login on ttyS0
#   env                            DISK_DIR DISK_SYSLINUX_RAW ... (shell syntax)
#
# The .qcow2 files are the .raw ones converted by vmm-img (VMM_IMG, default build/storage/vmm-img).
# Markers the tests look for on the serial console: "vmmd-syslinux: booting the guest kit" (SAY in
# syslinux.cfg), "GNU GRUB" and "Booting `vmmd test disk" (GRUB's menu), "Debian GNU/Linux 12 vmmd-disk ttyS0"
# (the getty's issue line, right before the "vmmd-disk login: " prompt, which ends no line).
# Prints the directory. Needs root for the Debian disk (the root file system keeps its owners).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../../.." && pwd)
source "$top/tests/guest/kit/lib.sh"

vmm_img=${VMM_IMG:-$top/build/storage/vmm-img}
[ -x "$vmm_img" ] || kit_die "vmm-img not found at $vmm_img (build it, or set VMM_IMG)"
for tool in syslinux mformat mcopy sfdisk grub-mkimage mke2fs; do
  command -v "$tool" >/dev/null || kit_die "$tool is missing (scripts/install-deps.sh)"
done
syslinux_mbr=/usr/lib/syslinux/mbr/mbr.bin
grub_dir=/usr/lib/grub/i386-pc
[ -f "$syslinux_mbr" ] || kit_die "$syslinux_mbr is missing (apt-get install syslinux-common)"
[ -f "$grub_dir/boot.img" ] || kit_die "$grub_dir/boot.img is missing (apt-get install grub-pc-bin)"

kit=$(KIT_QUIET=1 "$top/tests/guest/kit/build.sh")
source "$kit/env"
rootfs=$("$here/rootfs.sh")
root_uuid=$(cat "$here/root.uuid")

key=$(printf '%s\n' "$(sha256sum "$here/build.sh" "$here/rootfs.sh" "$KIT_BZIMAGE" "$KIT_INITRAMFS" \
                        "$syslinux_mbr" "$(command -v syslinux)" "$grub_dir/boot.img" "$grub_dir/kernel.img")" \
        "$(basename "$rootfs")" "$(sha256sum "$vmm_img" | cut -c1-16)" | sha256sum | cut -c1-16)
dir="$VMMD_CACHE/disks/$key"
if [ -f "$dir/env" ]; then echo "$dir"; exit 0; fi
rm -rf "$dir"
mkdir -p "$dir"
work=$(mktemp -d "$VMMD_CACHE/disks/work.XXXXXX")
trap 'rm -rf "$work"' EXIT

MiB=$((1024 * 1024))
# put FILE DISK OFFSET_MIB: writes FILE into DISK at OFFSET_MIB without filling its holes.
put() { dd if="$1" of="$2" bs=1M seek="$3" conv=notrunc,sparse status=none; }

# --- syslinux on FAT ---------------------------------------------------------------------------
kit_log "building syslinux.raw"
part_mib=63
disk=$work/syslinux.raw
truncate -s $(((part_mib + 1) * MiB)) "$disk"
printf 'label: dos\nstart=2048, type=6, bootable\n' | sfdisk -q "$disk"
fat=$work/fat.img
truncate -s $((part_mib * MiB)) "$fat"
# -H: the partition's first sector, which a FAT boot sector keeps in its BPB (hidden sectors).
mformat -i "$fat" -T $((part_mib * 2048)) -h 64 -s 32 -H 2048 -v VMMDBOOT ::
# CONSOLE 0: SYSLINUX writes to the UART only. Its text also reaching the serial console through
# the firmware's video-to-serial mirror (SeaBIOS's sercon, with cursor escapes between the
# characters) once garbled the SAY line that the tests look for.
cat >"$work/syslinux.cfg" <<'EOT'
SERIAL 0 115200
CONSOLE 0
SAY vmmd-syslinux: booting the guest kit
DEFAULT kit
PROMPT 0
TIMEOUT 0
LABEL kit
  LINUX /bzimage
  INITRD /initrd
  APPEND console=ttyS0 panic=-1 quiet
EOT
mcopy -i "$fat" "$KIT_BZIMAGE" ::/bzimage
mcopy -i "$fat" "$KIT_INITRAMFS" ::/initrd
mcopy -i "$fat" "$work/syslinux.cfg" ::/syslinux.cfg
syslinux --install "$fat"
put "$fat" "$disk" 1
rm -f "$fat"
dd if="$syslinux_mbr" of="$disk" bs=440 count=1 conv=notrunc status=none  # code only: the table stays

# --- Debian with GRUB 2 on ext4 ----------------------------------------------------------------
kit_log "building debian.raw"
root=$work/root
mkdir "$root"
tar -C "$root" --numeric-owner -xpf "$rootfs"
kernel=$(cd "$root/boot" && ls vmlinuz-* | sort -V | tail -n1)
initrd=initrd.img-${kernel#vmlinuz-}
[ -f "$root/boot/$initrd" ] || kit_die "no $initrd in $rootfs"
# GRUB's modules in the partition, where core.img's prefix points (as grub-install lays them out).
mkdir -p "$root/boot/grub/i386-pc"
cp "$grub_dir"/*.mod "$grub_dir"/*.lst "$root/boot/grub/i386-pc/"
cat >"$root/boot/grub/grub.cfg" <<EOT
serial --unit=0 --speed=115200
terminal_input serial
terminal_output serial
set timeout=1
menuentry 'vmmd test disk: Debian GNU/Linux' {
  linux /boot/$kernel root=UUID=$root_uuid ro console=ttyS0 panic=-1
  initrd /boot/$initrd
}
EOT
root_mib=$(( $(du -sm "$root" | cut -f1) + 512 ))
disk=$work/debian.raw
truncate -s $(((root_mib + 1) * MiB)) "$disk"
printf 'label: dos\nstart=2048, type=83, bootable\n' | sfdisk -q "$disk"
ext4=$work/ext4.img
mke2fs -q -t ext4 -U "$root_uuid" -L vmmd-root -d "$root" "$ext4" "${root_mib}M" >&2  # stdout: the directory
rm -rf "$root"
put "$ext4" "$disk" 1
rm -f "$ext4"
# core.img: the modules that find and read the partition are built in; normal.mod and the rest
# load from the prefix. boot.img's code goes into the MBR (its default: core.img at sector 1) and
# core.img into the gap before the partition (grub-mkimage already wrote core.img's own length
# into its first sector's block list, which starts at sector 2).
grub-mkimage -O i386-pc -o "$work/core.img" -p '(hd0,msdos1)/boot/grub' \
  biosdisk part_msdos ext2 normal linux serial terminal echo test
[ "$(stat -c %s "$work/core.img")" -lt $((2047 * 512)) ] || kit_die "core.img does not fit before the partition"
dd if="$grub_dir/boot.img" of="$disk" bs=440 count=1 conv=notrunc status=none
dd if="$work/core.img" of="$disk" bs=512 seek=1 conv=notrunc status=none

# --- qcow2 copies --------------------------------------------------------------------------------
for d in syslinux debian; do
  kit_log "converting $d.raw to qcow2 (vmm-img)"
  "$vmm_img" convert -q -f raw -O qcow2 "$work/$d.raw" "$work/$d.qcow2"
  mv "$work/$d.raw" "$work/$d.qcow2" "$dir/"
done
cat >"$dir/env" <<EOT
DISK_DIR='$dir'
DISK_SYSLINUX_RAW='$dir/syslinux.raw'
DISK_SYSLINUX_QCOW2='$dir/syslinux.qcow2'
DISK_DEBIAN_RAW='$dir/debian.raw'
DISK_DEBIAN_QCOW2='$dir/debian.qcow2'
EOT
for stale in "$VMMD_CACHE"/disks/*/env; do  # earlier inputs' disks
  [ "$(dirname "$stale")" = "$dir" ] || rm -rf "$(dirname "$stale")"
done
echo "$dir"
