#!/usr/bin/env bash
# scripts/l1/run.sh's stall watchdog, end to end: a command that starves L1's PID 1 (a real-time
# dd from /dev/zero with the RT throttle off, so that the heartbeat stops as in the emulator's own
# stalls) must end the run with 126, and the report must sample every vCPU's RIP and name a
# kernel function from L1's kallsyms for a RIP in the kernel (tests/nested/CMakeLists.txt:
# l1_runner_stall). The command is one line: run.sh quotes it for L1's /bin/sh (dash), which has
# no $'...\n...'. (sleep 3: for init to have saved kallsyms.)
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
rc=0
L1_STALL_LIMIT=20 "$top/scripts/l1/run.sh" --smp 1 --mem 1024 --timeout 600 --out "$out" -- \
  bash -c 'echo -1 >/proc/sys/kernel/sched_rt_runtime_us; sleep 3; echo "l1_stall_check: starving PID 1";'\
'exec chrt -f 99 dd if=/dev/zero of=/dev/null bs=4M' || rc=$?
fail() { echo "l1_stall_check: FAILED: $*"; cat "$out/stall.txt" 2>/dev/null; exit 1; }
[ "$rc" = 126 ] || fail "run.sh exited $rc, not 126 (stopped making progress)"
[ -s "$out/kallsyms" ] || fail "L1 saved no kallsyms for the report"
samples=$(grep -c '^sample [0-9]* cpu 0: RIP=0x' "$out/stall.txt" || true)
[ "$samples" -ge 3 ] || fail "$samples register samples of cpu 0, expected at least 3 of 5"
# dd spends nearly all its time in the kernel (clearing and copying pages) and never blocks: those
# samples must be named, not left bare.
grep -qE '^sample [0-9]+ cpu 0: RIP=0xffffffff[0-9a-f]+ .* [A-Za-z_][A-Za-z0-9_.]*\+0x[0-9a-f]+' "$out/stall.txt" ||
  fail "no sample in the kernel was named from kallsyms"
echo "l1_stall_check: passed: rc=126, $samples samples, e.g." \
  "$(grep -m1 -oE 'RIP=0xffffffff[0-9a-f]+ .*' "$out/stall.txt")"
