#!/usr/bin/env bash
# Live-migration benchmark in the nested tier: a Linux guest (the kit's, 256 MiB, 1 vCPU, -M pc)
# migrated over unix: between two VMMs of one kind in one L1, idle and dirtying memory, our vmm
# against QEMU with the same guest, parameters and link; one L1 boot, one run; prints a table.
#
#   tests/bench/migration/nested.sh [--vmm PATH] [--kinds "vmm-pc qemu-pc"] [--mem "256 1024"]
#                                   [--scenarios "mig-bench snap-bench"]
#
# mig-bench: live migration (l1/mig-bench.sh). snap-bench: snapshot save and restore
# (l1/snap-bench.sh): QEMU's savevm/loadvm on a qcow2 disk, its exec: file and -loadvm restores,
# vmm's file: save and restore, plain and mapped-ram.
#
# --mem takes one or more guest sizes (MiB). L1 gets NESTED_L1_MEM MiB (default here: 1024, or
# 2560 when a size is over 512: a source and a destination of 1 GiB side by side).
#
# Everything in L2 runs under TCG-emulated nested virtualization (L1 is QEMU TCG): the figures
# compare the VMMs with each other, not with hardware. Downtime and total time are what each
# source's query-migrate reports.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../../.." && pwd)
source "$top/tests/guest/kit/lib.sh"
vmm="$top/build/vmm/vmm" kinds="vmm-pc qemu-pc" mem=256 scenarios="mig-bench snap-bench"
while [ $# -gt 0 ]; do
  case "$1" in
    --vmm) vmm=$2; shift 2 ;;
    --kinds) kinds=$2; shift 2 ;;
    --mem) mem=$2; shift 2 ;;
    --scenarios) scenarios=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench/migration: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ -x "$vmm" ] || { echo "bench/migration: $vmm is not built" >&2; exit 2; }
log="$VMMD_CACHE/bench-migration-nested.log"
status=0
big=0
for m in $mem; do [ "$m" -gt 512 ] && big=1; done
[ $big = 1 ] && export NESTED_L1_MEM=${NESTED_L1_MEM:-2560}
cases=$(( $(echo "$kinds" | wc -w) * $(echo "$mem" | wc -w) * $(echo "$scenarios" | wc -w) ))
disk=()
case " $scenarios " in
  *" snap-bench "*)
    # QEMU's savevm needs a qcow2 disk: L1 sees this file's bytes as /dev/vdb (run.sh --disk).
    image="$VMMD_CACHE/bench-snap.qcow2"
    rm -f "$image" && qemu-img create -q -f qcow2 "$image" 64M && truncate -s 1G "$image"
    disk=(--disk "snap=$image") ;;
esac
"$top/tests/nested/run.sh" --vmm "$vmm" --scenario-dir "$here/l1" --log "$log" "${disk[@]}" \
  --env BENCH_KINDS="$kinds" --env BENCH_MEM="$mem" --env BENCH_RUNS="${BENCH_RUNS:-3}" --timeout $((240 + cases * 400)) \
  $(for s in $scenarios; do echo "$s@vmm"; done) || status=1

if grep -aq 'BENCH vmm=' "$log"; then
  echo
  echo "Live migration over unix: in one L1 (nested tier, L1 = QEMU TCG, ${NESTED_L1_MEM:-1024} MiB), guest of $mem MiB, 1 vCPU, -M pc, one run;"
  echo "downtime-limit 300 ms, max-bandwidth 128 MiB/s on both; idle = kit services only, dirty = 16 MiB tmpfs copy every ~0.7 s"
  awk '/^BENCH vmm=/ {
    for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
    printf "%-8s %5s %-6s %-10s %9s %12s %9s %10s %6s %12s\n", v["vmm"], v["mem"], v["load"], v["status"], v["total_ms"], v["downtime_ms"],
      v["setup_ms"], sprintf("%.1f", v["ram_bytes"] / 1048576), v["iterations"], v["state"]
    delete v
  }
  BEGIN { printf "%-8s %5s %-6s %-10s %9s %12s %9s %10s %6s %12s\n", "vmm", "MiB", "load", "status", "total_ms", "downtime_ms", "setup_ms", "ram_MiB", "iters", "source_state" }' \
    <(grep -ao 'BENCH vmm=.*' "$log" | tr -d '\r' | awk '!seen[$0]++')
fi

if grep -aq 'SNAP vmm=' "$log"; then
  echo
  echo "Snapshot save and restore in the same L1, idle guest (kit services), 1 vCPU, -M pc (ms; restore = launch of a"
  echo "fresh process -> guest running; qemu savevm/loadvm: STOP -> RESUME events, on a qcow2 disk; vmm: no disk)"
  awk '/^SNAP vmm=/ {
    for (i = 2; i <= 6; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
    key = sprintf("%-8s %5s %-20s", v["vmm"], v["mem"], v["op"])
    if (!(key in n)) order[++keys] = key
    all[key] = all[key] " " v["ms"]; n[key]++
    delete v
  }
  END {
    printf "%-8s %5s %-20s %9s  %s\n", "vmm", "MiB", "operation", "median", "runs"
    for (k = 1; k <= keys; k++) {
      key = order[k]; m = split(substr(all[key], 2), xs, " ")
      for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (xs[j] + 0 < xs[i] + 0) { t = xs[i]; xs[i] = xs[j]; xs[j] = t }
      printf "%s %9s  %s\n", key, xs[int((m + 1) / 2)], all[key]
    }
  }' \
    <(grep -ao 'SNAP vmm=.*' "$log" | tr -d '\r' | awk '!seen[$0]++')
fi
exit $status
