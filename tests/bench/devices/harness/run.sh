#!/usr/bin/env bash
# Benchmark (b): virtio-blk and virtio-net device models driven by the driver harness, each figure
# beside the physical limit (plain pread/pwrite on the same file, plain write() on the same tap)
# measured in the same run. Needs root and /dev/net/tun for the network rows (a private network
# namespace is made; nothing on the host's network changes).
#
#   tests/bench/devices/harness/run.sh [BUILD_DIR] [-- extra args: --dir DIR --seconds S --disk-mib N --only blk|net]
set -euo pipefail
root=$(cd "$(dirname "$0")/../../../.." && pwd)
build=${1:-$root/build}
[ $# -gt 0 ] && shift
[ "${1:-}" = "--" ] && shift
bench=$build/tests/bench/devices/harness/virtio_device_bench
if [ ! -x "$bench" ]; then
  echo "run.sh: $bench not built (cmake --build $build --target virtio_device_bench)" >&2
  exit 2
fi
echo "virtio device benchmark (driver harness), $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) CPUs, kernel $(uname -r)"
exec "$bench" "$@"
