#!/usr/bin/env bash
# The KVM tests (scripts/kvm-tests.sh --once) on a host without a usable /dev/kvm: in two L1 VMs
# (scripts/l1/run.sh) side by side, one vCPU each (one per core here), the tests shared out
# between them: the worker's own under ASan with the QEMU-only runs in one, those through vmmd and
# vmctl from the release tree in the other. Each L1's output is printed when both have ended;
# scripts/test.sh calls it. Extra arguments go to each ctest.
#   scripts/kvm-tests-l1.sh [--logs DIR] [-- CTEST-ARGS...]
# --logs DIR: each L1's output (kvm-NAME.log), results share (l1-NAME/) and stall reports (default:
#   a temporary directory).
# One vCPU each because L1s of two stopped making progress (both vCPUs spinning for good, console
# and heartbeat silent) in 4 of 5 long runs on a 2-core host, at random tests, while the nested
# tier's one-vCPU L1s never did. An L1 that stops all the same is replaced, loudly (its stall
# report included), by a fresh one that goes on from the ctest run it was in (kvm-tests.sh
# --resume), at most twice. Exit status 0 only when both parts passed.
set -uo pipefail
cd "$(dirname "$0")/.."
logs=""
while [ $# -gt 0 ]; do
  case "$1" in
    --logs) logs=$2; shift 2 ;;
    --) shift; break ;;
    *) echo "kvm-tests-l1.sh: unknown option $1 (ctest's go after --)" >&2; exit 2 ;;
  esac
done
[ -n "$logs" ] || logs=$(mktemp -d)
mkdir -p "$logs"
rm -f "$logs"/kvm-*.log "$logs"/kvm-*.log.txt "$logs/warnings.txt"
# Two ctest jobs in each L1: the tests wait on their guests much of the time.
export KVM_TESTS_JOBS=${KVM_TESTS_JOBS:-2}

# in_l1 NAME PART...: kvm-tests.sh --once PART... in an L1 of its own, its output in kvm-NAME.log.
in_l1() {
  local name=$1 attempt rc=0 resume=()
  shift
  mkdir -p "$logs/l1-$name"
  for attempt in 1 2 3; do
    rc=0
    scripts/l1/run.sh --smp 1 --mem 5120 --out "$logs/l1-$name" --env KVM_TESTS_JOBS -- \
      scripts/kvm-tests.sh --results /run/l1out "${resume[@]}" --once "$@" -- "${ctest_args[@]}" \
      >"$logs/kvm-$name.log" 2>&1 || rc=$?
    [ "$rc" = 126 ] && [ "$attempt" -lt 3 ] || break
    mv "$logs/kvm-$name.log" "$logs/kvm-$name-stuck-$attempt.log.txt"
    { echo "== WARNING: the $name L1 stopped making progress; a fresh L1 goes on from the run it was in ($attempt of 2)"
      sed 's/^/   /' "$logs/l1-$name/stall.txt" 2>/dev/null; } | tee -a "$logs/warnings.txt"
    resume=(--resume)
  done
  return "$rc"
}

ctest_args=("$@")
echo "== KVM tests in two L1s side by side, one vCPU each (their output follows when both have ended)"
in_l1 worker build-asan build-qemu & worker=$!
in_l1 vmmd build & vmmd=$!
rc_worker=0 rc_vmmd=0
wait "$worker" || rc_worker=$?
wait "$vmmd" || rc_vmmd=$?
cat "$logs/warnings.txt" 2>/dev/null
echo "== the L1 with the worker's tests (ASan) and the QEMU-only runs: exit $rc_worker"
cat "$logs/kvm-worker.log"
echo "== the L1 with the tests through vmmd and vmctl: exit $rc_vmmd"
cat "$logs/kvm-vmmd.log"
[ "$rc_worker" = 0 ] && [ "$rc_vmmd" = 0 ]
