# Network benchmark, run in L1 (shipped by tests/bench/network/run.sh; not a CTest scenario).
# Sets up what a vmmd NAT network is: a bridge (nbbr0, 192.168.124.1/24) with masquerade
# (nftables) towards a veth pair into another network namespace ("outside", 10.99.0.2) that runs
# an iperf3 server. Then, for every VMM kind in $BENCH_KINDS in turn, boots two guests of the L2
# kit, each NIC a tap made by tapfd (IFF_VNET_HDR | IFF_MULTI_QUEUE, as vmmd makes them) on the
# bridge, passed as `-netdev tap,id=n0,fd=3` to a virtio-net-pci device: guest A (netserve:
# iperf3 -s at 192.168.124.10), then guest B (netbench at 192.168.124.11) measures TCP throughput
# and ping RTT to A over the bridge and to the outside server through NAT.
# Prints "BENCH vmm=KIND what=g2g|nat metric=tcp|rtt ..." lines (the guest's NETBENCH lines).
B=/opt/vmm/bin IP=/opt/vmm/bin/ip
for t in ip nft iperf3 tapfd; do
  [ -x "$B/$t" ] || { fail "missing-$t(tests/bench/network/run.sh carries it with --bin)"; return 0 2>/dev/null || exit 0; }
done
setup() {
  l1_net_modules || return 1
  echo 1 >/proc/sys/net/ipv4/ip_forward
  $IP link add nbbr0 address 02:00:00:00:02:01 type bridge && $IP addr add 192.168.124.1/24 dev nbbr0 && $IP link set nbbr0 up || return 1
  l1_outside_netns $IP || return 1
  # vmmd's NAT: what leaves the bridge's subnet for elsewhere goes out with L1's address.
  printf '%s\n' 'table ip netbench {' \
    '  chain postrouting { type nat hook postrouting priority srcnat; ip saddr 192.168.124.0/24 ip daddr != 192.168.124.0/24 masquerade; }' \
    '}' | "$B/nft" -f - || return 1
  $IP netns exec outside "$B/iperf3" -s -D
}
if ! setup >/tmp/net-bench-setup.log 2>&1; then
  sed 's/^/NESTED-LOG net-bench setup: /' /tmp/net-bench-setup.log
  fail "setup"
  return 0 2>/dev/null || exit 0
fi

seconds=${BENCH_SECONDS:-10}
failed="" plan_vmm=$VMM kinds=${BENCH_KINDS:-$VMM}
for kind in $kinds; do
  VMM=$kind
  l2_vmm || { failed="$failed,$kind"; continue; }
  nic=virtio-net-pci,netdev=n0,romfile=  # -M pc for every kind; L1 carries no option ROMs (vmm ignores romfile)
  (
    SCENARIO=net-bench-server
    MEM=${BENCH_MEM:-160} TIMEOUT=$((seconds * 4 + 240)) APPEND="vmmd.net=192.168.124.10/24,192.168.124.1 l2.test=netserve" \
      L2_WRAP="$B/tapfd nbtap0 nbbr0 3 --" l2_run -netdev tap,id=n0,fd=3 -device "$nic,mac=52:54:00:00:7c:0a"
  ) &
  server=$!
  server_log=/tmp/l2-net-bench-server-$kind.log
  i=0
  while [ $i -lt 1200 ] && ! grep -q 'NETSERVE ready' "$server_log" 2>/dev/null; do sleep 0.1; i=$((i + 1)); done
  MEM=${BENCH_MEM:-160} TIMEOUT=$((seconds * 4 + 180)) \
    APPEND="vmmd.net=192.168.124.11/24,192.168.124.1 l2.test=netbench l2.peer=192.168.124.10 l2.nat=10.99.0.2 l2.seconds=$seconds" \
    L2_WRAP="$B/tapfd nbtap1 nbbr0 3 --" l2_run -netdev tap,id=n0,fd=3 -device "$nic,mac=52:54:00:00:7c:0b"
  wait $server
  grep -o 'NETBENCH what=.*' "$LOG" | sed "s/^NETBENCH /BENCH vmm=$kind /"
  if ! grep -q 'L2TEST name=netbench rc=0' "$LOG"; then
    failed="$failed,$kind"
    tail -n 20 "$LOG" | sed "s/^/NESTED-LOG net-bench $kind client: /"
    tail -n 10 "$server_log" | sed "s/^/NESTED-LOG net-bench $kind server: /"
  fi
done
VMM=$plan_vmm
[ -z "$failed" ] && pass "kinds=$(echo $kinds | tr ' ' ,),seconds=$seconds" || fail "failed=${failed#,}"
