#!/usr/bin/env bash
# Kernel loading benchmark (host side, no KVM needed): how long the worker takes to read a
# bzImage's compressed payload and decompress it into fresh guest-like memory on 1..N threads.
# Prints one table (tests/bench/boot/README.md). Default kernel: the nested tier's kit bzImage.
#
#   tests/bench/boot/loader/run.sh [BUILD_DIR] [-- BZIMAGE [RUNS]]
set -euo pipefail
root=$(cd "$(dirname "$0")/../../../.." && pwd)
build=$root/build
if [ $# -gt 0 ] && [ "$1" != "--" ]; then build=$1; shift; fi
[ "${1:-}" = "--" ] && shift
bench=$build/tests/bench/boot/loader/kernel_load_bench
if [ ! -x "$bench" ]; then
  echo "run.sh: $bench not built (cmake --build $build --target kernel_load_bench)" >&2
  exit 2
fi
if [ $# -eq 0 ]; then
  kit=$(ls -d "${VMMD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vmmd}"/kit/*/ 2>/dev/null | head -1)
  [ -n "$kit" ] && [ -f "$kit/bzImage" ] || { echo "run.sh: no kit bzImage (run the nested tier once, or pass -- BZIMAGE)" >&2; exit 2; }
  set -- "$kit/bzImage"
fi
echo "kernel loading benchmark, $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) CPUs, kernel $(uname -r)"
exec "$bench" "$@"
