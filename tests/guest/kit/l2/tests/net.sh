#!/bin/sh
# virtio-net over a tap: the NIC comes up, the guest pings the host end (10.0.2.1), sends a
# 2 MiB file to the host over TCP and fetches one back; the md5s are printed for the host side
# to compare.
modprobe -a virtio_pci virtio_net 2>/dev/null
i=0
while [ $i -lt 30 ] && [ ! -e /sys/class/net/eth0 ]; do sleep 0.1; i=$((i + 1)); done
echo "NET mac=$(cat /sys/class/net/eth0/address 2>/dev/null) carrier=$(cat /sys/class/net/eth0/carrier 2>/dev/null)"
ip link set lo up
ip link set eth0 up
ip addr add 10.0.2.15/24 dev eth0
ping -c 3 -W 3 10.0.2.1 >/tmp/ping 2>&1 && echo "NET ping=ok" || { echo "NET ping=failed"; cat /tmp/ping; exit 1; }
dd if=/dev/urandom of=/tmp/up bs=64k count=32 2>/dev/null
echo "NET up_md5=$(md5sum </tmp/up | cut -d' ' -f1)"
nc -w 5 10.0.2.1 7000 </tmp/up || echo "NET upload=failed"
sleep 1
# busybox's nc quits when its stdin ends: keep stdin open, stop after the 2 MiB with head.
sleep 60 | nc 10.0.2.1 7001 | head -c 2097152 >/tmp/down
echo "NET down_md5=$(md5sum </tmp/down | cut -d' ' -f1) down_bytes=$(wc -c </tmp/down)"
