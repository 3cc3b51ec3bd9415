#!/bin/sh
# virtio-net over a tap: the NIC comes up, the guest pings the host end (10.0.2.1), sends a
# 2 MiB file to the host over TCP and fetches one back; the md5s are printed for the host side
# to compare.
modprobe -a virtio_pci virtio_mmio virtio_net 2>/dev/null
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
# busybox's nc quits when its stdin ends, so its stdin is a FIFO that a sleep holds open; the
# download is over once the 2 MiB are in (at most 60 s). A pipeline from that sleep would last
# as long as the sleep, whatever the transfer took, and a slow boot then ran past the host's
# time limit before the result line.
: >/tmp/down
mkfifo /tmp/nc-stdin
sleep 120 >/tmp/nc-stdin &
keeper=$!
nc 10.0.2.1 7001 </tmp/nc-stdin >/tmp/down &
fetcher=$!
i=0
while [ $i -lt 600 ] && [ "$(wc -c </tmp/down 2>/dev/null || echo 0)" -lt 2097152 ]; do sleep 0.1; i=$((i + 1)); done
kill $fetcher $keeper 2>/dev/null
echo "NET down_md5=$(md5sum </tmp/down | cut -d' ' -f1) down_bytes=$(wc -c </tmp/down)"
