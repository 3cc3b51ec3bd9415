#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what is missing, builds three trees and runs
#   build/       release build: every test (unit, probe guest on KVM, interop with QEMU, nested tier)
#   build-asan/  ASan+UBSan build: every test but the slow nested tier
#   build-fuzz/  clang + libFuzzer: each fuzz target (vmmd_add_fuzzer) for a bounded time
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

echo "== release build: every test"
(cd build && ctest --output-on-failure -j "$jobs" "$@") || status=1
exit $status
