#!/usr/bin/env bash
# Runs the tests that need a usable /dev/kvm (CTest label "kvm") of each built tree given:
#   build-asan: under ASan+UBSan, without the QEMU-only runs (probe_qemu_*)
#   build:      all of them
# scripts/test.sh calls it on the host when /dev/kvm is usable there, and through
# scripts/l1/run.sh (inside an L1 that has one) when not. Extra arguments go to each ctest.
#   scripts/kvm-tests.sh [--results DIR] TREE... [-- CTEST-ARGS...]
# --results DIR: each tree's Testing/Temporary/LastTest.log is copied there as TREE-LastTest.log.
set -uo pipefail
cd "$(dirname "$0")/.."
results="" trees=()
while [ $# -gt 0 ]; do
  case "$1" in
    --results) results=$2; shift 2 ;;
    --) shift; break ;;
    *) trees+=("$1"); shift ;;
  esac
done
jobs=$(nproc)
status=0
for tree in "${trees[@]}"; do
  args=(--output-on-failure -j "$jobs" -L kvm)
  case "$tree" in
    build-asan) args+=(-E '^probe_qemu_') ;;
  esac
  where="on the host"
  [ "${VMMD_IN_L1:-}" != 1 ] || where="in L1"
  echo "== $tree: the KVM tests (label kvm), $where"
  # Through a pipe: in L1 stdout is the console, a terminal, and ctest would colour its summary.
  (cd "$tree" && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
     ctest "${args[@]}" "$@" | cat) || status=1
  [ -z "$results" ] || cp "$tree/Testing/Temporary/LastTest.log" "$results/$tree-LastTest.log" 2>/dev/null || true
done
exit $status
