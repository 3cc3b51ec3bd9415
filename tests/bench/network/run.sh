#!/usr/bin/env bash
# Network benchmark in the nested tier: TCP throughput (iperf3) and round-trip time (ping)
# guest->guest on one bridge and guest->host through NAT, our vmm against QEMU with the same
# network setup, one L1 boot, one run; prints a table side by side. See README.md.
#
#   tests/bench/network/run.sh [--seconds S] [--vmm PATH] [--kinds "vmm-pc qemu-pc"]
#
# --seconds: each iperf3 run (default 10). --vmm: the vmm binary (default build/vmm/vmm).
# --kinds: the VMM kinds (tests/nested/l1/lib.sh), measured one after the other in the same L1.
# Everything in L2 runs under TCG-emulated nested virtualization: the figures compare VMMs with
# each other, not with hardware.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../../.." && pwd)
source "$top/tests/guest/kit/lib.sh"
seconds=10 vmm="$top/build/vmm/vmm" kinds="vmm-pc qemu-pc"
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds=$2; shift 2 ;;
    --vmm) vmm=$2; shift 2 ;;
    --kinds) kinds=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench/network: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ -x "$vmm" ] || { echo "bench/network: $vmm is not built" >&2; exit 2; }
for t in ip nft iperf3; do
  command -v "$t" >/dev/null || { echo "bench/network: $t is missing (scripts/install-deps.sh)" >&2; exit 2; }
done

# tapfd: static, like l1run, so that it runs in L1's busybox initramfs.
mkdir -p "$VMMD_CACHE/bench-network"
tapfd="$VMMD_CACHE/bench-network/tapfd-$(kit_hash "$here/tapfd.c")"
if [ ! -x "$tapfd" ]; then
  gcc -static -O2 -Wall -Wextra -Werror -o "$tapfd.tmp" "$here/tapfd.c" && mv "$tapfd.tmp" "$tapfd"
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
ln -s "$tapfd" "$work/tapfd"

log="$VMMD_CACHE/bench-network.log"
runs=$(echo "$kinds" | wc -w)
status=0
"$top/tests/nested/run.sh" --vmm "$vmm" --scenario-dir "$here/l1" --log "$log" \
  --bin "$(command -v ip)" --bin "$(command -v nft)" --bin "$(command -v iperf3)" --bin "$work/tapfd" \
  --env BENCH_KINDS="$kinds" --env BENCH_SECONDS="$seconds" --timeout $((240 + runs * (seconds * 4 + 200))) \
  net-bench@vmm || status=1

python3 - "$log" "$seconds" $kinds <<'PY'
import re, sys
log, seconds, kinds = sys.argv[1], sys.argv[2], sys.argv[3:]
rows = {}
for line in open(log, errors="replace"):
    m = re.search(r"BENCH vmm=(\S+) what=(\S+) metric=(\S+) (.*)", line)
    if m:
        kind, what, metric, rest = m.groups()
        rows[(kind, what, metric)] = "failed" if "failed" in rest else dict(kv.split("=", 1) for kv in rest.split())
print(f"virtio-net on a bridge, nested tier (L1 = QEMU TCG), one run: each NIC a tap made like vmmd's"
      f" (vnet_hdr, multi-queue) passed as -netdev tap,fd=3 to virtio-net-pci, -M pc")
print(f"g2g = guest -> guest on the bridge; nat = guest -> iperf3 server in another network namespace of L1"
      f" through nftables masquerade; tcp: iperf3 -t {seconds}, receiver Mbit/s (higher is better);"
      f" rtt: ping 20 x 0.2 s, avg ms (lower is better)")
ref = kinds[-1]
print(f"{'measure':<22}" + "".join(f"{k:>12}" for k in kinds) + (f"{'  ' + kinds[0] + '/' + ref:>22}" if len(kinds) > 1 else ""))
for what in ("g2g", "nat"):
    for metric, field, unit in (("tcp", "mbit_s", "Mbit/s"), ("rtt", "avg_ms", "ms avg"), ("rtt", "min_ms", "ms min")):
        cells, values = [], []
        for k in kinds:
            r = rows.get((k, what, metric))
            v = r.get(field) if isinstance(r, dict) else None
            cells.append(v if v else ("failed" if r == "failed" else "-"))
            values.append(float(v) if v else None)
        ratio = f"{values[0] / values[-1]:.2f}x" if len(kinds) > 1 and values[0] and values[-1] else "-"
        print(f"{what + ' ' + metric + ' ' + unit:<22}" + "".join(f"{c:>12}" for c in cells) + (f"{ratio:>22}" if len(kinds) > 1 else ""))
PY
exit $status
