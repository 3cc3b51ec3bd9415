#!/usr/bin/env bash
# Boot trace in the nested tier (tests/bench/boot/README.md): in one L1 boot, one quiet L2 boot per
# VMM kind with the guest kernel's tracer on from its first initcalls (initcalls, scheduler
# switches, workqueue items; tests/bench/boot/l1/boot-trace.sh), then a summary per boot: which
# task ran how long, whether the guest was ever idle, the slowest initcalls and work items.
# The raw events stay in $VMMD_CACHE/bench-boot-trace.log.
#
#   tests/bench/boot/trace.sh [--kinds "vmm-microvm qemu-microvm ..."] [--kernel bzImage|pvh] [--mem MIB] [--vmm PATH]
#                             [--events LIST]   (trace_event= list; default: initcall, sched_switch, workqueue)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../../.." && pwd)
kinds="vmm-microvm qemu-microvm" kernel=pvh mem=256 vmm=$top/build/vmm/vmm events=""
while [ $# -gt 0 ]; do
  case "$1" in
    --kinds) kinds=$2; shift 2 ;;
    --kernel) kernel=$2; shift 2 ;;
    --mem) mem=$2; shift 2 ;;
    --vmm) vmm=$2; shift 2 ;;
    --events) events=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench/boot/trace: unknown argument $1" >&2; exit 2 ;;
  esac
done
log="${VMMD_CACHE:-${XDG_CACHE_HOME:-${HOME:-/var/tmp}/.cache}/vmmd}/bench-boot-trace.log"
mkdir -p "$(dirname "$log")"
n=$(echo $kinds | wc -w)
status=0
"$top/tests/nested/run.sh" --vmm "$vmm" --scenario-dir "$here/l1" --log "$log" --timeout $((120 + n * 150)) \
  --env BENCH_KINDS="$kinds" --env BENCH_KERNEL="$kernel" --env BENCH_MEM="$mem" ${events:+--env BENCH_TRACE_EVENTS="$events"} \
  "boot-trace@vmm" >/dev/null || status=1
python3 "$here/trace_summary.py" "$log" || status=1
exit $status
