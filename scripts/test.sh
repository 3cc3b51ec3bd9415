#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what is missing, builds three trees and runs
#   build/       release build: every test (unit, probe guest on KVM, interop with QEMU, nested tier;
#                without KVM here, not the unit tests: each test runs once on that path)
#   build-asan/  ASan+UBSan build: every test but the slow nested tier and the QEMU-only runs
#   build-fuzz/  clang + libFuzzer: each fuzz target (vmmd_add_fuzzer) for a bounded time
# The tests that need a usable /dev/kvm (CTest label "kvm") run on this host when it has one
# (scripts/kvm-check), from both trees; otherwise inside two L1 VMs that have one, side by side
# (scripts/kvm-tests-l1.sh; scripts/l1/run.sh: QEMU TCG with an emulated SVM CPU, the host's file
# system over 9p), each of them once: the worker's under ASan, those through vmmd and vmctl from
# the release tree (scripts/kvm-tests.sh --once says why). None is skipped. VMMD_KVM=l1 takes the
# L1 path on any host.
# Benchmarks (label bench) are not tests: they print tables and run on their own (tests/bench/).
# Extra arguments are passed to the release ctest runs (e.g. -R qcow2).
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)
./scripts/install-deps.sh
jobs=$(nproc)

# The guest kit (Debian's cloud kernel, initramfs with qemu-ga): KernelKit.* and the nested tier.
tests/guest/kit/build.sh >/dev/null
# The Debian root file systems of the firmware disks and of the package test, debootstrapped (on a
# fresh host: minutes of downloads and dpkg) in the background while the trees compile; a test
# that needs one while it is still being built waits for it (kit_rootfs_tarball's lock), and one
# whose build failed here is built, and its failure reported, by the test itself.
rootfs_log=$(mktemp --tmpdir vmmd-rootfs.XXXXXX)
(tests/guest/disks/rootfs.sh && tests/packaging/rootfs.sh) >"$rootfs_log" 2>&1 &
rootfs_pid=$!

./scripts/build.sh release
./scripts/build.sh asan
built=$(date +%s)

if kvm=$(scripts/kvm-check); then kvm_place=host; else kvm_place=l1; fi
echo "== KVM tests: ${kvm#*: } -> they run $([ $kvm_place = host ] && echo "on this host, from both trees" ||
  echo "inside two L1 VMs (scripts/l1/run.sh), each once: the worker's from build-asan, those through vmmd from build")"

logs=build/test-logs
rm -rf "$logs" && mkdir -p "$logs"
status=0
# part NAME LOG COMMAND...: runs one part, its output also kept in $logs/LOG (appended); records
# its time (added up) and leaves its exit status in part_rc.
declare -A part_seconds=()
part() {
  local name=$1 log=$2 t0
  shift 2
  t0=$(date +%s)
  set +e
  "$@" 2>&1 | tee -a "$logs/$log"
  part_rc=${PIPESTATUS[0]}
  set -e
  part_seconds[$name]=$(( ${part_seconds[$name]:-0} + $(date +%s) - t0 ))
}
asan_env=(env ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1)

echo "== ASan+UBSan build: our code under the sanitizers (unit, e2e, interop; not the QEMU-only runs)"
part host-asan host-asan.log bash -c "cd build-asan && ${asan_env[*]} ctest --output-on-failure -j $jobs -LE 'kvm|nested|bench|fuzz' -E '^probe_qemu_'"
[ "$part_rc" = 0 ] || status=1

echo "== libFuzzer targets (bounded time each)"
# 20 s a target here (their own budgets are up to 60 s): a smoke run that stays within CI's time on
# 2 cores; longer campaigns run the targets by hand.
CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DVMMD_FUZZ=ON -DVMMD_FUZZ_SECONDS=20 -DCMAKE_BUILD_TYPE=Debug \
  -DCMAKE_CXX_FLAGS_DEBUG=-g1 -DCMAKE_C_FLAGS_DEBUG=-g1 -DCMAKE_EXE_LINKER_FLAGS=-fuse-ld=lld >/dev/null
cmake --build build-fuzz -j "$jobs" --target vmmd_fuzzers
# Each target is one single-threaded process for a fixed time: one per core.
part host-fuzz host-fuzz.log bash -c "cd build-fuzz && ctest --output-on-failure -j $jobs -L fuzz --no-tests=ignore"
[ "$part_rc" = 0 ] || status=1

# Without KVM here (the L1 path) every test runs once, as the KVM ones do: the unit tests (label
# unit), which the ASan tree has just run, are left out of the release run, whose time goes to the
# nested tier and the package test instead.
release_skip="kvm|bench"
[ $kvm_place = host ] || release_skip="kvm|bench|unit"
echo "== release build: every test but the KVM ones (benchmarks aside)$([ $kvm_place = host ] || echo "; not the unit tests, run under ASan above")"
part host-release host-release.log bash -c 'cd build && ctest --output-on-failure -j "$0" -LE "$1" "${@:2}"' "$jobs" "$release_skip" "$@"
[ "$part_rc" = 0 ] || status=1

if [ $kvm_place = host ]; then
  part kvm kvm.log scripts/kvm-tests.sh build-asan build -- "$@"
else
  mkdir -p "$logs/l1"
  part kvm kvm.log scripts/kvm-tests-l1.sh --logs "$logs/l1" -- "$@"
fi
[ "$part_rc" = 0 ] || status=1

if [ $status -ne 0 ]; then
  # The nested tier's own summary lines, so that a CI log's tail says which scenario failed and why.
  echo "== nested tier results"
  grep -ah 'NESTED \(scenario\|summary\|error\)' build/tests/nested/*.log 2>/dev/null | tail -n 40 || true
fi

wait "$rootfs_pid" || { echo "== note: the root file systems did not build in the background:"; tail -n 5 "$rootfs_log"; }
rm -f "$rootfs_log"

# How many tests ran where, and how long each part took.
# ctest's closing lines ("N% tests passed, F tests failed out of T"), colour escapes dropped.
closing() { cat "$@" 2>/dev/null | sed 's/\x1b\[[0-9;]*m//g' | grep -ao '[0-9]* tests failed out of [0-9]*'; }
tests_in() { closing "$@" | awk '{n += $6} END {print n + 0}'; }
failed_in() { closing "$@" | awk '{n += $1} END {print n + 0}'; }
host_logs=("$logs"/host-*.log)
host_seconds=$(( part_seconds[host-asan] + part_seconds[host-fuzz] + part_seconds[host-release] ))
echo "== summary"
printf '%-34s %6s tests %4s failed %6s s\n' "on the host (asan, fuzz, release)" "$(tests_in "${host_logs[@]}")" \
  "$(failed_in "${host_logs[@]}")" "$host_seconds"
printf '%-34s %6s tests %4s failed %6s s\n' "KVM tests $([ $kvm_place = host ] && echo "on the host" || echo "in L1")" \
  "$(tests_in "$logs/kvm.log")" "$(failed_in "$logs/kvm.log")" "${part_seconds[kvm]}"
echo "install + build: $((built - started)) s; whole run: $(( $(date +%s) - started )) s"
all_tests=$(tests_in "$logs"/*.log) all_failed=$(failed_in "$logs"/*.log)
echo "total: $((all_tests - all_failed)) passed, $all_failed failed"
exit $status
