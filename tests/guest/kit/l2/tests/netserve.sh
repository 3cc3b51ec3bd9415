#!/bin/sh
# The network benchmark's server guest (tests/bench/network): with eth0 already up (/init's
# vmmd.net=), runs an iperf3 server, prints "NETSERVE ready address=...", and ends (the guest
# powers off) when a client connects to port 7999 (the benchmark's client guest does once it has
# measured), or after l2.serve_s seconds (default 600).
serve_s=600
for word in $(cat /proc/cmdline); do
  case "$word" in l2.serve_s=*) serve_s=${word#l2.serve_s=} ;; esac
done
iperf3 -s -D || { echo "NETSERVE iperf3-failed"; exit 1; }
echo "NETSERVE ready address=$(ip -4 -o addr show dev eth0 | awk '{print $4}')"
nc -l -p 7999 </dev/null >/dev/null &
listener=$!
(sleep "$serve_s"; kill $listener 2>/dev/null) &
wait $listener
echo "NETSERVE done"
