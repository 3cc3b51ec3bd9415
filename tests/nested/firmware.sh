#!/usr/bin/env bash
# The firmware-* scenarios (a VMM boots disk images through its firmware: SeaBIOS, then SYSLINUX
# or GRUB 2) with the disks of tests/guest/disks attached to L1: builds the disks once (cached;
# the first build needs root and deb.debian.org), then runs tests/nested/run.sh with them.
#
#   tests/nested/firmware.sh [run.sh options] [SCENARIO[@KIND]...]
#
# Without scenarios, every firmware-* scenario (firmware-vmmd only for a vmm binary, which then
# needs --bin vmmd --bin vmctl). VMM_IMG names the vmm-img that converts the disks
# to qcow2 (default build/storage/vmm-img). L1 gets NESTED_L1_MEM MiB (default 1536: Debian in L2
# has 384).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
disks=$("$top/tests/guest/disks/build.sh")
source "$disks/env"
options=() scenarios=() timeout=""
while [ $# -gt 0 ]; do
  case "$1" in
    --timeout) timeout=$2; shift 2 ;;
    --vmm|--scenario-dir|--env|--bin|--log|--disk) options+=("$1" "$2"); shift 2 ;;
    -*) options+=("$1"); shift ;;
    *) scenarios+=("$1"); shift ;;
  esac
done
[ ${#scenarios[@]} -gt 0 ] ||
  mapfile -t scenarios < <(ls "$here/scenarios" | sed -n 's/^\(firmware-.*\)\.sh$/\1/p' |
                           sed 's/^firmware-vmmd$/firmware-vmmd@vmm/')  # vmmd drives only vmm
export NESTED_L1_MEM=${NESTED_L1_MEM:-1536}
# A Debian boot in L2 takes minutes of wall time on a shared 2-core host: run.sh's default bound
# (60 + 120 s a run) is too short; this one allows 10 minutes a run.
vmm_count=$(printf '%s\n' "${options[@]}" | grep -c '^--vmm$' || true)
timeout=${timeout:-$((120 + 600 * ${#scenarios[@]} * (vmm_count > 0 ? vmm_count : 1)))}
exec "$here/run.sh" --disk "syslinux-raw=$DISK_SYSLINUX_RAW" --disk "syslinux-qcow2=$DISK_SYSLINUX_QCOW2" \
  --disk "debian-raw=$DISK_DEBIAN_RAW" --disk "debian-qcow2=$DISK_DEBIAN_QCOW2" --timeout "$timeout" \
  "${options[@]}" "${scenarios[@]}"
