#!/usr/bin/env bash
# Boot benchmark in the nested tier: in one L1 boot, for each VMM, launch -> L2 ready marker and
# launch -> exit (the guest powers off at once), RUNS runs each (interleaved), same kernel,
# initramfs, memory and `quiet`; prints one table with median, min and max, and the ratio of
# each median to QEMU microvm's, and the guest's own uptime at the marker (the rest of
# launch -> ready is the VMM: its start-up, loading, firmware). Times are L1 milliseconds: under emulation absolute values mean
# little, the ratio within one run is the figure.
#
#   tests/bench/boot/run.sh [--runs N] [--vmm KIND|PATH]... [--kernel bzImage|pvh] [--mem MIB]
#
# Default VMMs: build/vmm/vmm when it exists, qemu-microvm (-M microvm,rtc=on), qemu-pc (-M pc).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../../.." && pwd)
runs=5 kernel=bzImage mem=256 vmms=()
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs=$2; shift 2 ;;
    --vmm) vmms+=("$2"); shift 2 ;;
    --kernel) kernel=$2; shift 2 ;;
    --mem) mem=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench/boot: unknown argument $1" >&2; exit 2 ;;
  esac
done
if [ ${#vmms[@]} -eq 0 ]; then
  [ -x "$top/build/vmm/vmm" ] && vmms+=("$top/build/vmm/vmm")
  vmms+=(qemu-microvm qemu-pc)
fi
kinds=() args=()
for v in "${vmms[@]}"; do
  case "$v" in qemu-microvm|qemu-pc) kinds+=("$v") ;; *) kinds+=(vmm) ;; esac
  args+=(--vmm "$v")
done
log="${VMMD_CACHE:-${XDG_CACHE_HOME:-${HOME:-/var/tmp}/.cache}/vmmd}/bench-boot.log"
mkdir -p "$(dirname "$log")"
status=0
"$top/tests/nested/run.sh" "${args[@]}" --scenario-dir "$here/l1" --log "$log" \
  --timeout $((120 + runs * ${#kinds[@]} * 2 * 60)) \
  --env BENCH_RUNS="$runs" --env BENCH_KINDS="${kinds[*]}" --env BENCH_KERNEL="$kernel" \
  --env BENCH_MEM="$mem" "boot-bench@${kinds[0]}" >/dev/null || status=1

python3 - "$log" "$runs" "$kernel" "$mem" "${kinds[@]}" <<'PY'
import re, statistics, sys
log, runs, kernel, mem, kinds = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:]
data, guest = {}, {}
for line in open(log, errors="replace"):
    m = re.search(r"BENCH vmm=(\S+) metric=(\S+) run=(\d+) ms=(\S+)(?: guest_s=(\S+))?", line)
    if m:
        data.setdefault((m[1], m[2]), []).append(m[4])
        if m[5]:
            guest.setdefault(m[1], []).append(float(m[5]) * 1000)
print(f"L2 boot in the nested tier: {runs} runs each, kernel {kernel}, -m {mem} -smp 1, quiet; "
      "L1 ms (L1 = QEMU TCG)")
print(f"{'vmm':<14} {'metric':<16} {'median':>8} {'min':>8} {'max':>8} {'fail':>5} {'/microvm':>9}"
      f" {'guest':>7}")
ref = {}
rows = []
for metric, label in (("ready", "launch->ready"), ("exit", "launch->exit")):
    for kind in kinds:
        vals = data.get((kind, metric), [])
        ok = [float(v) for v in vals if v != "fail"]
        med = statistics.median(ok) if ok else None
        if kind == "qemu-microvm":
            ref[metric] = med
        rows.append((kind, metric, label, ok, med, len(vals) - len(ok)))
for kind, metric, label, ok, med, fails in rows:
    if not ok:
        print(f"{kind:<14} {label:<16} {'-':>8} {'-':>8} {'-':>8} {fails:>5} {'-':>9}")
        continue
    r = ref.get(metric)
    ratio = f"{med / r:.2f}x" if r else "-"
    g = f"{statistics.median(guest[kind]):>7.0f}" if metric == "ready" and guest.get(kind) else f"{'':>7}"
    print(f"{kind:<14} {label:<16} {med:>8.0f} {min(ok):>8.0f} {max(ok):>8.0f} {fails:>5} {ratio:>9} {g}")
print("guest: median of the guest's own uptime at the ready marker (kernel start -> userspace), ms")
PY
exit $status
