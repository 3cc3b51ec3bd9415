#!/usr/bin/env bash
# The quick-start demo: a real Linux guest under vmmd. Installs what is missing, builds vmm, vmmd,
# vmctl and vmm-img (release tree in build/) and the guest kit (Debian's cloud kernel and a busybox
# initramfs with qemu-ga, cached under $VMMD_CACHE), then runs scripts/demo-steps.sh: vmmd in
# temporary state/run dirs (no root paths), a qcow2 data disk, a tap NIC (as root), and vmctl
# define / start / list / console / exec / agent / shutdown (ACPI power button) / list.
# Where this host's /dev/kvm cannot boot Linux (no KVM, or a PVM one: see scripts/kvm-check), the
# same steps run inside an L1 VM (scripts/l1/run.sh: QEMU TCG with an emulated AMD SVM CPU),
# slower. VMMD_KVM=l1 or VMMD_KVM=host forces the choice.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
# elapsed SINCE: the time since SINCE (seconds since the epoch), as "N s" or "M min N s".
elapsed() { local s=$(($(date +%s) - $1)); if [ "$s" -ge 60 ]; then echo "$((s / 60)) min $((s % 60)) s"; else echo "$s s"; fi; }

./scripts/install-deps.sh
echo "== Building vmm, vmmd, vmctl and vmm-img (release tree in build/)"
[ -f build/build.ninja ] || cmake -S . -B build -G Ninja >/dev/null
# Ninja's progress, condensed to a line per quarter; warnings and errors pass through.
cmake --build build --target vmm vmmd vmctl vmm-img 2>&1 | awk '
  /^\[[0-9]+\/[0-9]+\] / { split(substr($1, 2), n, "/"); q = int(n[1] * 4 / n[2])
                          if (q > shown) { shown = q; printf "   %d of %d build steps done\n", n[1], n[2]; fflush() }
                          next }
  /^ninja: no work to do/ { print "   up to date"; next }
  { print; fflush() }'
echo "== Building the guest kit (Debian's cloud kernel, a busybox initramfs with qemu-ga)"
kit=$(tests/guest/kit/build.sh)
source "$kit/env"
echo "   $KIT_DIR"
built=$(date +%s)

# The PVH entry of the uncompressed vmlinux: no decompressor to run, the fastest way in
# (tests/bench/boot/README.md).
steps=(scripts/demo-steps.sh build "$KIT_VMLINUX" "$KIT_INITRAMFS")
rc=0
if where=$(scripts/kvm-check --for linux); then
  "${steps[@]}" || rc=$?
else
  if [ "${VMMD_KVM:-}" = l1 ]; then
    echo "demo: VMMD_KVM=l1: running the steps inside an L1 VM (scripts/l1/run.sh), slower"
  else
    echo "demo: guests cannot run on this host (${where#l1: }); running the same steps inside an L1 VM (scripts/l1/run.sh), slower"
  fi
  scripts/l1/run.sh --mem 3072 --timeout 900 -- "${steps[@]}" || rc=$?
fi
echo
if [ "$rc" -eq 0 ]; then
  echo "== Demo done in $(elapsed "$start") (installs, build and kit: $((built - start)) s; the guest steps: $(elapsed "$built"))"
else
  echo "== Demo FAILED (exit status $rc) after $(elapsed "$start")" >&2
fi
exit "$rc"
