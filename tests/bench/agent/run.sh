#!/usr/bin/env bash
# Guest-agent benchmark in the nested tier: the guest-ping round trip (host socket -> VMM's
# virtio-serial -> the real qemu-ga in the L2 kit -> back), COUNT timed pings after a warm-up,
# through each VMM in one L1 boot with the same guest (all VMMs run at once; the pings are
# interleaved in 10 rounds so that load on the machine hits all alike); prints mean, p50, p99,
# min and max and the ratio of each mean to QEMU pc's. Times are L1 microseconds: L1 runs under
# TCG, so absolute values mean little; the ratio within one run is the figure.
#
#   tests/bench/agent/run.sh [--count N] [--vmm KIND|PATH]... [--build DIR]
#
# Default VMMs: build/vmm/vmm (-M pc) and qemu-pc (-M pc), then qemu-microvm (virtio-mmio).
# Needs the build tree's agent_ping (cmake --build build --target agent_ping).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../../.." && pwd)
count=500 build="$top/build" vmms=()
while [ $# -gt 0 ]; do
  case "$1" in
    --count) count=$2; shift 2 ;;
    --vmm) vmms+=("$2"); shift 2 ;;
    --build) build=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench/agent: unknown argument $1" >&2; exit 2 ;;
  esac
done
ping="$build/tests/bench/agent/agent_ping"
[ -x "$ping" ] || { echo "bench/agent: $ping is missing (cmake --build $build --target agent_ping)" >&2; exit 2; }
if [ ${#vmms[@]} -eq 0 ]; then
  [ -x "$build/vmm/vmm" ] && vmms+=("$build/vmm/vmm")
  vmms+=(qemu-pc qemu-microvm)
fi
kinds=() args=()
for v in "${vmms[@]}"; do
  case "$v" in qemu-microvm|qemu-pc) kinds+=("$v") ;; *) kinds+=(vmm) ;; esac
  args+=(--vmm "$v")
done
log="${VMMD_CACHE:-$HOME/.cache/vmmd}/bench-agent.log"
mkdir -p "$(dirname "$log")"
status=0
"$top/tests/nested/run.sh" "${args[@]}" --bin "$ping" --scenario-dir "$here/l1" --log "$log" \
  --timeout $((420 + ${#kinds[@]} * 120)) --env BENCH_COUNT="$count" --env BENCH_KINDS="${kinds[*]}" \
  "agent-bench@${kinds[0]}" >/dev/null || status=1

python3 - "$log" "$count" "${kinds[@]}" <<'PY'
import re, sys
log, count, kinds = sys.argv[1], sys.argv[2], sys.argv[3:]
rows = {}
for line in open(log, errors="replace"):
    m = re.search(r"BENCH vmm=(\S+) metric=ping (.*)", line)
    if m:
        rows[m[1]] = dict(kv.split("=", 1) for kv in m[2].split())
print(f"guest-ping round trip through the guest agent, nested tier: {count} pings each after 20 warm-up;"
      " L1 microseconds (L1 = QEMU TCG), same L2 kit and qemu-ga")
print(f"{'vmm':<14} {'mean':>8} {'p50':>8} {'p99':>8} {'min':>8} {'max':>8} {'mean/qemu-pc':>13}")
ref = rows.get("qemu-pc", {}).get("mean_us")
for kind in kinds:
    r = rows.get(kind)
    if not r or "fail" in r:
        print(f"{kind:<14} {'failed: ' + (r or {}).get('fail', 'no result'):>40}")
        continue
    ratio = f"{float(r['mean_us']) / float(ref):.2f}x" if ref else "-"
    print(f"{kind:<14} {r['mean_us']:>8} {r['p50_us']:>8} {r['p99_us']:>8} {r['min_us']:>8} {r['max_us']:>8} {ratio:>13}")
PY
exit $status
