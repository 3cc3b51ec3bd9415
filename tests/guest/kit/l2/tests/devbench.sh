#!/bin/sh
# Device benchmark (a), the guest side (tests/bench/devices/nested.sh): O_DIRECT dd write then
# read of l2.mib MiB on vda (raw) and vdb (qcow2), then a TCP transfer of l2.tcp_mib MiB to the L1
# host (10.0.2.1:7002, busybox nc) over virtio-net. Prints "DEVBENCH what=... mib=N ms=T" lines.
modprobe -a virtio_pci virtio_mmio virtio_blk virtio_net 2>/dev/null
mib=64 tcp_mib=16
for word in $(cat /proc/cmdline); do
  case "$word" in
    l2.mib=*) mib=${word#l2.mib=} ;;
    l2.tcp_mib=*) tcp_mib=${word#l2.tcp_mib=} ;;
  esac
done
# Milliseconds since boot (10 ms resolution).
now_ms() {
  set -- $(cat /proc/uptime)
  s=${1%.*} cs=${1#*.}
  cs=${cs#0}
  echo $((s * 1000 + cs * 10))
}
timed() {  # timed WHAT MIB COMMAND...
  what=$1 size=$2
  shift 2
  t0=$(now_ms)
  "$@" || echo "DEVBENCH what=$what failed"
  echo "DEVBENCH what=$what mib=$size ms=$(($(now_ms) - t0))"
}
for disk in vda vdb; do
  timed $disk-write $mib dd if=/dev/zero of=/dev/$disk bs=1M count=$mib oflag=direct 2>/dev/null
  timed $disk-read $mib dd if=/dev/$disk of=/dev/null bs=1M count=$mib iflag=direct 2>/dev/null
done
i=0
while [ $i -lt 30 ] && [ ! -e /sys/class/net/eth0 ]; do sleep 0.1; i=$((i + 1)); done
ip link set lo up
ip link set eth0 up
ip addr add 10.0.2.15/24 dev eth0
ping -c 1 -W 3 10.0.2.1 >/dev/null 2>&1 || echo "DEVBENCH ping failed"
send() { dd if=/dev/zero bs=64k count=$((tcp_mib * 16)) 2>/dev/null | nc 10.0.2.1 7002; }
timed tcp-send $tcp_mib send
