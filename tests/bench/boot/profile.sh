#!/usr/bin/env bash
# Boot profile in the nested tier (tests/bench/boot/README.md): one L1 boot, one L2 boot per VMM
# kind and kernel with the console on (a timeline of landmark lines, L1 ms since launch) and one
# quiet with initcall_debug (exit counters through QMP query-stats and L1's KVM debugfs, the
# slowest initcalls, the kernel's log). Prints the PROFILE lines; the whole L1 console stays in
# $VMMD_CACHE/bench-boot-profile.log.
#
#   tests/bench/boot/profile.sh [--kinds "vmm-pc qemu-pc qemu-microvm ..."] [--kernel bzImage|pvh] [--mem MIB] [--vmm PATH]
#                               [--bin PATH]...   (another vmm build for a kind vmm-pc:NAME, as run.sh)
#                               [--trace [--events LIST]] [--guest debian|minimal]   (the guest kernel, as run.sh)
#                               [--clock instructions|wall]   (L1's clock, as run.sh; default instructions)
#                               [--perf]   (where L1's CPU goes, by process and symbol)
#
# --perf: instead, perf in L1 (the host's `perf`, carried in) samples L1's whole CPU over three
# quiet boots per kind after two warm-up boots (tests/bench/boot/l1/boot-perf.sh): L1 time by
# process, shared object and symbol, and who made L1's kernel clear pages. The VMM's user time,
# L1's kernel work for it (exits, page faults, KVM_CREATE_VM) and what is left for the L2 guest.
#
# --trace: instead, one quiet boot per kind with the guest kernel's tracer on from its first
# initcalls (trace_event=LIST, default initcalls, sched_switch and workqueue items;
# tests/bench/boot/l1/boot-trace.sh), summarized per boot by trace_summary.py: which task ran
# how long, whether the guest was ever idle, the slowest initcalls and work items. The raw events
# stay in $VMMD_CACHE/bench-boot-trace.log.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../../.." && pwd)
kinds="vmm-pc vmm-microvm qemu-pc qemu-microvm" guest=debian kernel=bzImage mem=256 vmm=$top/build/vmm/vmm bins=() trace=0 perf=0 events="" clock=instructions
while [ $# -gt 0 ]; do
  case "$1" in
    --kinds) kinds=$2; shift 2 ;;
    --kernel) kernel=$2; shift 2 ;;
    --mem) mem=$2; shift 2 ;;
    --guest) guest=$2; shift 2 ;;
    --vmm) vmm=$2; shift 2 ;;
    --bin) bins+=(--bin "$2"); shift 2 ;;
    --trace) trace=1; shift ;;
    --perf) perf=1; shift ;;
    --clock) clock=$2; shift 2 ;;
    --events) events=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench/boot/profile: unknown argument $1" >&2; exit 2 ;;
  esac
done
if [ "$trace" = 1 ] && [ "$perf" = 1 ]; then
  echo "bench/boot/profile: --trace and --perf are two different runs; pick one" >&2
  exit 2
fi
if [ "$trace" = 1 ] && [ "$guest" = minimal ]; then
  echo "bench/boot/profile: --trace needs the guest kernel's tracer, which the minimal guest is built without (use --guest debian)" >&2
  exit 2
fi
. "$here/guest/args.sh"
bench_guest_args "$guest" || exit 2
. "$here/clock.sh"
bench_clock "$clock" || exit 2
scenario=boot-profile
[ "$trace" = 0 ] || scenario=boot-trace
if [ "$perf" = 1 ]; then
  scenario=boot-perf
  command -v perf >/dev/null || { echo "bench/boot/profile: --perf needs perf on this host (Debian's linux-perf)" >&2; exit 2; }
  bins+=(--bin "$(readlink -f "$(command -v perf)")")
fi
log="${VMMD_CACHE:-${XDG_CACHE_HOME:-${HOME:-/var/tmp}/.cache}/vmmd}/bench-$scenario.log"
mkdir -p "$(dirname "$log")"
n=$(echo $kinds | wc -w)
status=0
"$top/tests/nested/run.sh" --vmm "$vmm" ${bins[@]+"${bins[@]}"} ${guest_args[@]+"${guest_args[@]}"} --scenario-dir "$here/l1" --log "$log" --timeout $((120 + n * 300)) \
  --env BENCH_KINDS="$kinds" --env BENCH_KERNEL="$kernel" --env BENCH_MEM="$mem" ${events:+--env BENCH_TRACE_EVENTS="$events"} \
  "$scenario@vmm" >/dev/null || status=1
if [ "$perf" = 1 ]; then
  grep -a '^PERF \|NESTED scenario=' "$log" | tr -d '\r'
elif [ "$trace" = 0 ]; then
  grep -a '^PROFILE \|NESTED scenario=' "$log" | tr -d '\r'
else
  python3 "$here/trace_summary.py" "$log" || status=1
fi
exit $status
