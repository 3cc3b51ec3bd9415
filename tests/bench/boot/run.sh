#!/usr/bin/env bash
# Boot benchmark in the nested tier (tests/bench/boot/README.md): in one L1 boot, for each kernel
# (bzImage, PVH vmlinux) and each VMM kind, RUNS boots (interleaved, the kinds' order rotating
# every round), same kernel, initramfs,
# memory and `quiet`, the same argv for every VMM. Prints one table per kernel: launch -> the
# guest's clock start (-> kernel: launch -> ready less the guest's own uptime there: VMM start,
# loading, decompressor, the kernel's earliest setup; split at the VM's creation by the guest's
# kvm-clock into ->VM and VM->kernel), the guest's uptime at userspace, launch ->
# userspace (median, min, max), ratios, and exit counts at userspace from QMP query-stats
# (KVM's: every exit, those that reached the VMM (io+mmio), nested page faults fixed, 4 KiB and
# 2 MiB mappings). Times are L1 milliseconds: under emulation absolute values mean little, the
# ratio within one run is the figure.
#
#   tests/bench/boot/run.sh [--runs N] [--kinds "KIND..."] [--kernels "bzImage pvh"] [--mem MIB]
#                           [--vmm PATH] [--bin PATH]... [--smp N] [--append "ARGS"] [--settle S]
#                           [--guest debian|minimal] [--guest-cpu MODEL] [--cpu] [--clock instructions|wall]
#
# --clock: what an L1 millisecond is (clock.sh). instructions (default): L1 runs on QEMU's
# instruction counter, a millisecond is a million instructions of L1's emulated CPU (the VMM, L1's
# kernel and the L2 guest alike) plus real time while L1 idles; boots of the same work repeat to
# ~1 %. wall: real time, with the emulator's own costs and their noise (up to 2x between L1 boots).
# --smp and --append change the guest alike for every kind (vCPUs; extra kernel arguments, e.g.
# cryptomgr.notests); --settle sleeps S seconds in L1 before each boot (L1 idle between boots).
# --guest picks the guest, the same for every kind: debian (default) is the guest kit's Debian
# cloud kernel and initramfs (~14 MB: busybox, modules, qemu-ga, iperf3); minimal is a microVM
# kernel built from Debian's kernel source (tests/bench/boot/guest/build.sh, cached after the
# first build, ~10 minutes on 2 CPUs) with a busybox-only initramfs (~2 MB, guest/initramfs.sh)
# and the kit's same /init.
# --guest-cpu MODEL: -cpu MODEL instead of -cpu host, for every kind. `host,-xsave` gives both
# VMMs' guests the same CPU here: under QEMU the guest finds QEMU's XSAVE sizes inconsistent
# ("XSAVE consistency problem", a kernel warning) and runs without XSAVE, while vmm's guest uses
# XSAVE with AVX, whose bigger context costs every switch and exit more in this L1.
# --cpu: instead, where L1's one CPU goes in each boot (l1/boot-bench.sh, cpu_table.py): the VMM's
# user time, L2 guest time, L1 kernel time, idle, and L1's huge-page faults, boots killed at
# userspace (no QMP counters).
#
# KIND: vmm-pc, vmm-microvm (the vmm binary, --vmm PATH, default build/vmm/vmm, with -M pc or
# -M microvm,rtc=on), qemu-pc, qemu-microvm, or vmm-pc:NAME / vmm-microvm:NAME for a binary NAME
# carried with --bin (an older build, to measure a change before and after in the same L1 boot).
# Default kinds: vmm-pc vmm-microvm qemu-pc qemu-microvm.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../../.." && pwd)
runs=5 settle=0 append="" smp=1 clock=instructions guest=debian guest_cpu=host cpu=0 kernels="bzImage pvh" mem=256 kinds="vmm-pc vmm-microvm qemu-pc qemu-microvm" vmm=$top/build/vmm/vmm bins=()
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs=$2; shift 2 ;;
    --settle) settle=$2; shift 2 ;;
    --append) append=$2; shift 2 ;;
    --smp) smp=$2; shift 2 ;;
    --kinds) kinds=$2; shift 2 ;;
    --kernels|--kernel) kernels=$2; shift 2 ;;
    --mem) mem=$2; shift 2 ;;
    --guest) guest=$2; shift 2 ;;
    --guest-cpu) guest_cpu=$2; shift 2 ;;
    --clock) clock=$2; shift 2 ;;
    --cpu) cpu=1; shift ;;
    --vmm) vmm=$2; shift 2 ;;
    --bin) bins+=(--bin "$2"); shift 2 ;;
    -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench/boot: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ -x "$vmm" ] || { echo "bench/boot: no vmm binary at $vmm (build first, or --vmm PATH)" >&2; exit 2; }
. "$here/guest/args.sh"
bench_guest_args "$guest" || exit 2
. "$here/clock.sh"
bench_clock "$clock" || exit 2
log="${VMMD_CACHE:-${XDG_CACHE_HOME:-${HOME:-/var/tmp}/.cache}/vmmd}/bench-boot.log"
mkdir -p "$(dirname "$log")"
samples=$((runs * $(echo $kinds | wc -w) * $(echo $kernels | wc -w)))
status=0
"$top/tests/nested/run.sh" --vmm "$vmm" ${bins[@]+"${bins[@]}"} ${guest_args[@]+"${guest_args[@]}"} --scenario-dir "$here/l1" --log "$log" \
  --timeout $((120 + samples * (45 + settle))) \
  --env BENCH_RUNS="$runs" --env BENCH_SETTLE="$settle" --env BENCH_APPEND="$append" --env BENCH_SMP="$smp" --env BENCH_KINDS="$kinds" --env BENCH_KERNELS="$kernels" \
  --env BENCH_MEM="$mem" --env BENCH_CPU="$cpu" --env L2_CPU="$guest_cpu" "boot-bench@vmm" >/dev/null || status=1
label="$guest guest, -cpu $guest_cpu, $clock clock"
if [ "$cpu" = 0 ]; then
  python3 "$here/table.py" "$log" "$runs" "$mem" "$kernels" "$kinds" "$smp" "$append" "$label" || status=1
else
  python3 "$here/cpu_table.py" "$log" "$kernels" "$kinds" "$label" || status=1
fi
exit $status
