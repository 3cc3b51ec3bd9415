#!/usr/bin/env bash
# Firmware boot benchmark in the nested tier: in one L1 boot, for each VMM, the disks of
# tests/guest/disks booted through the VMM's firmware (SeaBIOS), RUNS times each: launch -> the
# firmware's banner on the serial console, -> the boot loader (SYSLINUX's line, GRUB's menu),
# -> Linux (the kit's ready marker from the syslinux disk; the kernel's first line and systemd's
# welcome line, "Welcome to Debian GNU/Linux 12 (bookworm)!", from the Debian disk), -> the
# login prompt. Prints a table, medians side by side and each VMM's ratio to QEMU pc's ("fail":
# the milestone never came; the exit status is then 1). Times are L1 milliseconds: under
# emulation absolute values mean little, the ratio within one run is the figure.
#
#   tests/bench/firmware/run.sh [--runs N] [--format raw|qcow2] [--vmm qemu-pc|PATH]...
#
# Default VMMs: build/vmm/vmm when it exists, qemu-pc. VMM_IMG: as tests/nested/firmware.sh.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../../.." && pwd)
runs=1 format=raw vmms=()
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs=$2; shift 2 ;;
    --format) format=$2; shift 2 ;;
    --vmm) vmms+=("$2"); shift 2 ;;
    -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench/firmware: unknown argument $1" >&2; exit 2 ;;
  esac
done
if [ ${#vmms[@]} -eq 0 ]; then
  [ -x "$top/build/vmm/vmm" ] && vmms+=("$top/build/vmm/vmm")
  vmms+=(qemu-pc)
fi
kinds=() args=()
for v in "${vmms[@]}"; do
  case "$v" in qemu-*) kinds+=("$v") ;; *) kinds+=(vmm) ;; esac
  args+=(--vmm "$v")
done
log="${VMMD_CACHE:-${XDG_CACHE_HOME:-${HOME:-/var/tmp}/.cache}/vmmd}/bench-firmware.log"
mkdir -p "$(dirname "$log")"
status=0
"$top/tests/nested/firmware.sh" "${args[@]}" --scenario-dir "$here/l1" --log "$log" \
  --timeout $((120 + runs * ${#kinds[@]} * 2 * 400)) \
  --env BENCH_RUNS="$runs" --env BENCH_FORMAT="$format" firmware-bench >/dev/null || status=1

python3 - "$log" "$runs" "$format" "${kinds[@]}" <<'PY'
import re, statistics, sys
log, runs, fmt, kinds = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
data = {}
for line in open(log, errors="replace"):
    m = re.search(r"BENCH vmm=(\S+) image=(\S+) metric=(\S+) run=\d+ ms=(\S+)", line)
    if m:
        data.setdefault((m[2], m[3], m[1]), []).append(m[4])
rows = [("syslinux", "banner", "launch -> SeaBIOS banner"), ("syslinux", "loader", "launch -> SYSLINUX line"),
        ("syslinux", "ready", "launch -> Linux ready (kit)"),
        ("debian", "banner", "launch -> SeaBIOS banner"), ("debian", "loader", "launch -> GRUB menu"),
        ("debian", "kernel", "launch -> Linux starts"), ("debian", "ready", "launch -> systemd (Welcome to)"),
        ("debian", "login", "launch -> login prompt")]
print(f"Firmware boot in the nested tier: {runs} run(s) per VMM, {fmt} disks, -m 384 -smp 1; "
      "median L1 ms (L1 = QEMU TCG); ratio to qemu-pc")
print(f"{'image':<9} {'milestone':<30}" + "".join(f" {k:>14}" for k in kinds))
for image, metric, label in rows:
    cells = []
    ref = None
    meds = {}
    for kind in kinds:
        ok = [float(v) for v in data.get((image, metric, kind), []) if v != "fail"]
        meds[kind] = statistics.median(ok) if ok else None
    ref = meds.get("qemu-pc")
    for kind in kinds:
        med = meds[kind]
        if med is None:
            cells.append(f"{'fail':>14}")
        elif ref and kind != "qemu-pc":
            cells.append(f"{med:>7.0f} {med / ref:>5.2f}x")
        else:
            cells.append(f"{med:>14.0f}")
    print(f"{image:<9} {label:<30}" + "".join(f" {c}" for c in cells))
PY
exit $status
