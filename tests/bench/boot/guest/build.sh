#!/usr/bin/env bash
# Builds the boot benchmark's minimal guest kernel (microvm.config beside this script) from
# Debian's linux-source package into $VMMD_CACHE/bench-guest/<source version>-<config hash>/:
#   bzImage   relocatable, LZ4-compressed, with the PVH note (as Debian's kernels)
#   vmlinux   the same kernel as an ELF for PVH boots, cut out of the bzImage's LZ4 payload
# Cached: a second run with the same source and config prints the directory at once. Needs
# gcc, make, flex, bison, bc, libelf-dev and lz4 (scripts/install-deps.sh); ~10 minutes on 2 CPUs.
#
#   tests/bench/boot/guest/build.sh      -> prints the directory
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../../../.." && pwd)
# shellcheck source=../../../guest/kit/lib.sh
. "$top/tests/guest/kit/lib.sh"
for tool in gcc make flex bison bc lz4 readelf; do
  command -v "$tool" >/dev/null || kit_die "$tool is missing (scripts/install-deps.sh)"
done
[ -e /usr/include/gelf.h ] || kit_die "libelf-dev is missing (scripts/install-deps.sh)"
deb=$(kit_fetch_deb linux-source-6.1)
version=$(dpkg-deb -f "$deb" Version)
dir="$VMMD_CACHE/bench-guest/$version-$(sha256sum "$here/microvm.config" | cut -c1-12)"
if [ -s "$dir/bzImage" ] && [ -s "$dir/vmlinux" ]; then echo "$dir"; exit 0; fi
work="$VMMD_CACHE/bench-guest/work"
rm -rf "$work" && mkdir -p "$work"
kit_log "unpacking $(basename "$deb")"
dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$work" ./usr/src/linux-source-6.1.tar.xz
tar -xf "$work/usr/src/linux-source-6.1.tar.xz" -C "$work"
src="$work/linux-source-6.1" out="$work/build"
make -s -C "$src" O="$out" tinyconfig >/dev/null
KCONFIG_CONFIG="$out/.config" "$src/scripts/kconfig/merge_config.sh" -m -O "$out" "$out/.config" "$here/microvm.config" >/dev/null 2>&1
make -s -C "$src" O="$out" olddefconfig >/dev/null 2>&1
# Every line of the fragment must have survived olddefconfig (a dependency left out drops it).
grep -v '^#' "$here/microvm.config" | grep . | while read -r line; do
  case "$line" in
    *=n) grep -qx "# ${line%=n} is not set" "$out/.config" || grep -qx "$line" "$out/.config" || kit_die "config: $line did not stick" ;;
    *) grep -qx "$line" "$out/.config" || kit_die "config: $line did not stick" ;;
  esac
done
kit_log "building the benchmark guest kernel ($version, $(nproc) jobs)"
make -s -C "$src" O="$out" -j"$(nproc)" bzImage >"$work/build.log" 2>&1 || { tail -n 30 "$work/build.log" >&2; kit_die "kernel build failed"; }
mkdir -p "$dir"
cp "$out/arch/x86/boot/bzImage" "$dir/bzImage.tmp"
# The payload is an LZ4 legacy frame (magic 02 21 4c 18) holding the stripped vmlinux.
off=$(grep -obUaP '\x02\x21\x4c\x18' "$dir/bzImage.tmp" | head -n1 | cut -d: -f1)
[ -n "$off" ] || kit_die "no LZ4 payload in the built bzImage"
tail -c +$((off + 1)) "$dir/bzImage.tmp" | lz4 -dc >"$dir/vmlinux.tmp" 2>/dev/null || true
readelf -n "$dir/vmlinux.tmp" 2>/dev/null | grep -q 'Unknown note type: (0x00000012)' ||
  kit_die "the built vmlinux has no PVH (XEN_ELFNOTE_PHYS32_ENTRY) note"
cp "$out/.config" "$dir/config"
mv "$dir/vmlinux.tmp" "$dir/vmlinux"
mv "$dir/bzImage.tmp" "$dir/bzImage"
rm -rf "$work"
echo "$dir"
