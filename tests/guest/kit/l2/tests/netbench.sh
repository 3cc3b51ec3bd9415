#!/bin/sh
# The network benchmark's client guest (tests/bench/network), eth0 already up (/init's vmmd.net=):
# for each target, guest->guest on the bridge (l2.peer=ADDR, the server guest's iperf3) and
# guest->host through NAT (l2.nat=ADDR, an iperf3 server in another network namespace of L1):
# TCP throughput (iperf3, l2.seconds=S, default 10, the receiver's figure) and round-trip time
# (busybox ping, 20 echoes 0.2 s apart, the average). Prints
#   NETBENCH what=g2g|nat metric=tcp mbit_s=N
#   NETBENCH what=g2g|nat metric=rtt avg_ms=N min_ms=N max_ms=N
# (or "NETBENCH what=... metric=... failed"), then tells the server guest to stop (port 7999).
peer= nat= seconds=10
for word in $(cat /proc/cmdline); do
  case "$word" in
    l2.peer=*) peer=${word#l2.peer=} ;;
    l2.nat=*) nat=${word#l2.nat=} ;;
    l2.seconds=*) seconds=${word#l2.seconds=} ;;
  esac
done
rc=0
# The first echo also resolves the peer's MAC; up to 30 s for it (the server was ready before
# this guest started).
i=0
while [ $i -lt 30 ] && ! ping -c 1 -W 1 "$peer" >/dev/null 2>&1; do i=$((i + 1)); done
for target in "g2g $peer" "nat $nat"; do
  set -- $target
  what=$1 address=$2
  if iperf3 -c "$address" -t "$seconds" -f m >/tmp/iperf3.out 2>&1; then
    mbit=$(awk '/receiver/ { for (i = 2; i <= NF; i++) if ($i == "Mbits/sec") print $(i - 1) }' /tmp/iperf3.out)
    echo "NETBENCH what=$what metric=tcp mbit_s=$mbit"
  else
    echo "NETBENCH what=$what metric=tcp failed"; sed 's/^/NETBENCH-LOG /' /tmp/iperf3.out; rc=1
  fi
  if ping -c 20 -i 0.2 -W 3 "$address" >/tmp/ping.out 2>&1; then
    # round-trip min/avg/max = 0.482/0.571/0.722 ms
    sed -n 's|.*min/avg/max = \([0-9.]*\)/\([0-9.]*\)/\([0-9.]*\) ms|NETBENCH what='"$what"' metric=rtt avg_ms=\2 min_ms=\1 max_ms=\3|p' /tmp/ping.out
  else
    echo "NETBENCH what=$what metric=rtt failed"; tail -n 3 /tmp/ping.out | sed 's/^/NETBENCH-LOG /'; rc=1
  fi
done
nc -w 3 "$peer" 7999 </dev/null >/dev/null 2>&1
exit $rc
