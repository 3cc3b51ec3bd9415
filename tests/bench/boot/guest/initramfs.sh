#!/usr/bin/env bash
# Builds the boot benchmark's minimal guest initramfs into $VMMD_CACHE/bench-guest/ and prints its
# path: Debian's busybox-static with its applets and the guest kit's /init, acpid actions and test
# scripts (tests/guest/kit/l2), as the kit's initramfs has them, without what only the kit's
# Debian kernel uses (its modules) and the kit's larger programs (qemu-ga, iperf3 and their
# libraries): ~2 MB instead of ~14 MB, what a microVM guest's initramfs is like. Cached by
# content (busybox, l2/, this script); a few seconds to build.
#
#   tests/bench/boot/guest/initramfs.sh      -> prints the cpio's path
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../../../.." && pwd)
# shellcheck source=../../../guest/kit/lib.sh
. "$top/tests/guest/kit/lib.sh"
command -v busybox >/dev/null || kit_die "busybox is missing (scripts/install-deps.sh)"
# Contents only (not the paths it was called by).
key=$( (sha256sum <"$(command -v busybox)"; sha256sum <"$0"; kit_hash "$KIT_SRC/l2") | sha256sum | cut -c1-16)
out="$VMMD_CACHE/bench-guest/initramfs-$key.cpio"
if [ -s "$out" ]; then echo "$out"; exit 0; fi
mkdir -p "$VMMD_CACHE/bench-guest"
stage=$(mktemp -d "$VMMD_CACHE/bench-guest/stage.XXXXXX")
trap 'rm -rf "$stage" "$stage.base.cpio" "$stage.l2.cpio"' EXIT
kit_busybox "$stage"
python3 "$KIT_SRC/mkcpio.py" "$stage.base.cpio" "$stage" --node /dev/console:600:c:5:1 --node /dev/null:666:c:1:3
python3 "$KIT_SRC/mkcpio.py" "$stage.l2.cpio" "$KIT_SRC/l2"
rm -f "$VMMD_CACHE"/bench-guest/initramfs-*.cpio
cat "$stage.base.cpio" "$stage.l2.cpio" >"$out.tmp"
mv "$out.tmp" "$out"
echo "$out"
