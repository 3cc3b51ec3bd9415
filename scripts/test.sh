#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what is missing, builds three trees and runs
#   build/       release build: every test (unit, probe guest on KVM, interop with QEMU, nested tier)
#   build-asan/  ASan+UBSan build: every test but the slow nested tier
#   build-fuzz/  clang + libFuzzer: each fuzz target (vmmd_add_fuzzer) for a bounded time
# Benchmarks (label bench) are not tests: they print tables and run on their own (tests/bench/).
# Extra arguments are passed to the release ctest (e.g. -L unit, -R qcow2).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
jobs=$(nproc)

./scripts/build.sh release
./scripts/build.sh asan

status=0
echo "== ASan+UBSan build: our code under the sanitizers (unit, e2e, interop; not the QEMU-only runs)"
(cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
   ctest --output-on-failure -j "$jobs" -LE 'nested|bench|fuzz' -E '^probe_qemu_') || status=1

echo "== libFuzzer targets (bounded time each)"
CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DVMMD_FUZZ=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build build-fuzz -j "$jobs" --target vmmd_fuzzers
(cd build-fuzz && ctest --output-on-failure -L fuzz --no-tests=ignore) || status=1

echo "== release build: every test (benchmarks aside)"
(cd build && ctest --output-on-failure -j "$jobs" -LE bench "$@") || status=1
if [ $status -ne 0 ]; then
  # The nested tier's own summary lines, so that a CI log's tail says which scenario failed and why.
  echo "== nested tier results"
  grep -ah 'NESTED \(scenario\|summary\|error\)' build/tests/nested/*.log 2>/dev/null | tail -n 40 || true
fi
exit $status
