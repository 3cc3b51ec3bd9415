#!/usr/bin/env bash
# Runs the tests that need a usable /dev/kvm (CTest label "kvm") of each built tree given:
#   build-asan: under ASan+UBSan, without the QEMU-only runs (probe_qemu_*)
#   build:      all of them
# scripts/test.sh calls it on the host when /dev/kvm is usable there, and through
# scripts/l1/run.sh (inside an L1 that has one) when not. Extra arguments go to each ctest.
#   scripts/kvm-tests.sh [--results DIR [--resume]] [--once] TREE... [-- CTEST-ARGS...]
# --results DIR: each run's Testing/Temporary/LastTest.log is copied there as TREE-LastTest.log
#   (TREE-qemu-LastTest.log for the release tree's QEMU-only runs under --once), its output kept
#   as TREE.out and its exit status, once it has ended, as TREE.done.
# --resume: a run that has ended before (TREE.done in DIR) is not run again; its output and status
#   are given again (scripts/test.sh, when an L1 stopped making progress: the next L1 goes on
#   from the run it was in).
# --once: each KVM test runs in one tree, not both, as three parts that are shared
#   out between two L1s (scripts/kvm-tests-l1.sh):
#     build-asan  the worker's own tests (probe guest, QMP monitor, migration, hostile guests, the
#                 RealKvm* units), under ASan
#     build       those that go through vmmd and vmctl (labels daemon, cli, agent, chaos: whole VMs
#                 started, moved and killed, the longest by far), from the release tree
#     build-qemu  the QEMU-only runs (probe_qemu_*), from the release tree
#   For the L1 path, where each test costs an emulated machine's time: running both trees there
#   took ~30 minutes of a 2-core CI host, half of it the same vmmd scenarios twice.
# KVM_TESTS_JOBS: ctest's -j (default: the cores here).
set -uo pipefail
cd "$(dirname "$0")/.."
results="" trees=() once=0 resume=0
while [ $# -gt 0 ]; do
  case "$1" in
    --results) results=$2; shift 2 ;;
    --resume) resume=1; shift ;;
    --once) once=1; shift ;;
    --) shift; break ;;
    *) trees+=("$1"); shift ;;
  esac
done
jobs=${KVM_TESTS_JOBS:-$(nproc)}
status=0
daemon_labels='daemon|cli|agent|chaos'
where="on the host"
[ "${VMMD_IN_L1:-}" != 1 ] || where="in L1"

# run TREE RESULT-NAME WHAT CTEST-ARGS...: one ctest over TREE.
run() {
  local tree=$1 name=$2 what=$3 out=/dev/null rc
  shift 3
  if [ $resume = 1 ] && [ -n "$results" ] && [ -f "$results/$name.done" ]; then
    echo "== $tree: $what: ended in the L1 before, its output again"
    cat "$results/$name.out"
    [ "$(cat "$results/$name.done")" = 0 ] || status=1
    return
  fi
  echo "== $tree: $what, $where"
  [ -z "$results" ] || out="$results/$name.out"
  # Through a pipe: in L1 stdout is the console, a terminal, and ctest would colour its summary.
  (cd "$tree" && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
     ctest --output-on-failure -j "$jobs" -L kvm "$@" 2>&1) | tee "$out"
  rc=${PIPESTATUS[0]}
  [ "$rc" = 0 ] || status=1
  if [ -n "$results" ]; then
    cp "$tree/Testing/Temporary/LastTest.log" "$results/$name-LastTest.log" 2>/dev/null || true
    echo "$rc" >"$results/$name.done"
  fi
}

for tree in "${trees[@]}"; do
  if [ $once = 1 ]; then
    case "$tree" in
      build-asan) run "$tree" "$tree" "the worker's KVM tests (label kvm, not $daemon_labels)" \
                    -LE "$daemon_labels" -E '^probe_qemu_' "$@" ;;
      build) run "$tree" "$tree" "the KVM tests through vmmd and vmctl (labels kvm and $daemon_labels)" \
               -L "$daemon_labels" "$@" ;;
      build-qemu) run build "$tree" "the QEMU-only KVM runs (probe_qemu_*)" -R '^probe_qemu_' "$@" ;;
      *) echo "kvm-tests.sh: --once knows build-asan, build and build-qemu, not $tree" >&2; exit 2 ;;
    esac
    continue
  fi
  case "$tree" in
    build-asan) run "$tree" "$tree" "the KVM tests (label kvm)" -E '^probe_qemu_' "$@" ;;
    *) run "$tree" "$tree" "the KVM tests (label kvm)" "$@" ;;
  esac
done
exit $status
