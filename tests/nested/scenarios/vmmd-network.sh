# vmmd's networks with real guests (issue 16): vmmd in L1 (`vmctl net-start default` defines
# libvirt's default NAT network, 192.168.124.0/24 on vmmdbr0; `net-define` an isolated one, iso,
# 192.168.125.0/24 on vmmdbr1), four guests of the L2 kit with "agent": true and
# {"network": ...} NICs: a and b on default, c and d on iso, each booted with vmmd.net=dhcp (the
# kit's udhcpc: address, route, resolv.conf, host name from dnsmasq). Through `vmctl exec`
# (the real qemu-ga):
#   - each guest got an address of its network by DHCP and its VM name as host name;
#   - a and b ping each other by name (dnsmasq's DNS on the bridge);
#   - a and b reach a TCP echo server (busybox nc) in another network namespace of L1, "outside"
#     (10.99.0.2 behind a veth pair; it has no route back to the guests, so only vmmd's
#     masquerade lets the replies come back);
#   - `vmctl list` and `vmctl --json list` show a's and b's addresses, the ones the guests have;
#   - c pings d by name on iso, but reaches neither the outside server nor 10.99.0.2 at all;
#   - destroying the VMs removes their taps; net-stop takes the bridges down.
# Needs VMM=vmm and --bin vmmd, vmctl, dnsmasq (vmmd runs /usr/sbin/dnsmasq: linked here) and
# ip (iproute2's, for the namespace).
B=/opt/vmm/bin IP=/opt/vmm/bin/ip
needs_vmm_bins vmmd vmctl dnsmasq ip || { return 0 2>/dev/null || exit 0; }
W=/tmp/vmmd-network
rm -rf "$W" && mkdir -p "$W"
ctl() { "$B/vmctl" "$@" 2>>"$W/vmctl.err"; }
: >"$W/detail"
step() { printf ',%s' "$1" >>"$W/detail"; }

# L1 as a host: the modules, dnsmasq where vmmd looks for it, the users dnsmasq looks up.
l1_net_modules >"$W/setup.log" 2>&1
mkdir -p /usr/sbin
ln -sf "$B/dnsmasq" /usr/sbin/dnsmasq
[ -f /etc/passwd ] || printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >/etc/passwd
[ -f /etc/group ] || printf 'root:x:0:\nnogroup:x:65534:\n' >/etc/group
touch /etc/resolv.conf
# The outside: a TCP echo server in its own namespace, 10.99.0.2, L1's end 10.99.0.1.
l1_outside_netns $IP >>"$W/setup.log" 2>&1 && step outside
$IP netns exec outside nc -ll -p 7000 -e /bin/cat >>"$W/setup.log" 2>&1 &
echo_server=$!

"$B/vmmd" --state-dir "$W/state" --run-dir "$W/run" --vmm "$B/vmm" --foreground >"$W/vmmd.log" 2>&1 &
vmmd_pid=$!
export VMMD_SOCKET=$W/run/vmmd.sock

finish() {
  for vm in a b c d; do ctl destroy "$vm" >/dev/null; done
  sleep 1
  taps=$(ls /sys/class/net | grep -c '^vmmdt')
  [ "$taps" = 0 ] && step taps-removed
  ctl net-stop default >/dev/null && ctl net-stop iso >/dev/null && [ ! -e /sys/class/net/vmmdbr0 ] && step net-stopped
  kill "$vmmd_pid" 2>/dev/null; wait "$vmmd_pid" 2>/dev/null
  kill "$echo_server" 2>/dev/null
  detail=$(cut -c2- "$W/detail")
  if [ "$1" = pass ] && [ "$detail" = "$want" ]; then
    pass "$detail"
  else
    for f in "$W/vmmd.log" "$W/vmctl.err" "$W/setup.log" "$W"/state/networks/*/dnsmasq.log "$W/run/vms/a/console.log" "$W/run/vms/c/console.log"; do
      [ -f "$f" ] && tail -n 12 "$f" | sed "s|^|NESTED-LOG $SCENARIO $VMM: ${f#"$W"/}: |"
    done
    fail "${detail:-none}${2:+,failed-at=$2}"
  fi
}
want=outside,net-start,vms-started,agents,a=192.168.124.x,b=192.168.124.x,c=192.168.125.x,d=192.168.125.x
want=$want,a-pings-b,b-pings-a,a-nat,b-nat,list,list-json,c-pings-d,c-no-nat,c-no-route,taps-removed,net-stopped

wait_for 20 ctl list || { finish fail vmmd-start; return 0 2>/dev/null || exit 0; }
cat >"$W/iso.json" <<EOF
{"name": "iso", "mode": "isolated", "bridge": "vmmdbr1",
 "ipv4": {"address": "192.168.125.1", "prefix": 24, "dhcp": {"start": "192.168.125.2", "end": "192.168.125.254"}}}
EOF
ctl net-start default >/dev/null && ctl net-define "$W/iso.json" >/dev/null && ctl net-start iso >/dev/null &&
  step net-start || { finish fail net-start; return 0 2>/dev/null || exit 0; }
for vm in a b c d; do
  case $vm in a|b) net=default ;; *) net=iso ;; esac
  cat >"$W/$vm.json" <<EOF
{"schema": 1, "name": "$vm", "memory": 128, "vcpus": 1, "kernel": "$L2_BZIMAGE", "initrd": "$L2_INITRD",
 "cmdline": "$L2_BASE_APPEND vmmd.net=dhcp", "agent": true, "nics": [{"network": "$net"}]}
EOF
  ctl define "$W/$vm.json" >/dev/null && ctl start "$vm" >/dev/null || { finish fail "start-$vm"; return 0 2>/dev/null || exit 0; }
done
step vms-started
for vm in a b c d; do
  wait_for 150 ctl exec "$vm" -- true || { finish fail "agent-$vm"; return 0 2>/dev/null || exit 0; }
done
step agents

# guest_address VM: eth0's IPv4 address as the guest has it (DHCP's)
guest_address() { ctl exec "$1" -- ip -4 -o addr show dev eth0 | awk '{print $4}' | cut -d/ -f1 | head -n1; }
for vm in a b c d; do
  address=$(guest_address "$vm") name=$(ctl exec "$vm" -- hostname)
  eval "address_$vm=\$address"
  case "$vm:$address" in
    [ab]:192.168.124.*|[cd]:192.168.125.*) [ "$name" = "$vm" ] && step "$vm=${address%.*}.x" ;;
  esac
done
# the peer's name: dnsmasq knows it once the peer holds its lease (it does: it answered exec)
wait_for 30 ctl exec a -- ping -c 1 -W 2 b && step a-pings-b
wait_for 30 ctl exec b -- ping -c 1 -W 2 a && step b-pings-a
for vm in a b; do
  [ "$(ctl exec "$vm" -- sh -c '(echo nat-ok-from-'$vm'; sleep 2) | nc -w 5 10.99.0.2 7000')" = "nat-ok-from-$vm" ] && step "$vm-nat"
done
# vmctl list: NAME STATE VCPUS MEMORY UPTIME IPV4 (the last column)
ctl list >"$W/list"
[ "$(awk '$1 == "a" {print $NF}' "$W/list")" = "$address_a" ] && [ "$(awk '$1 == "b" {print $NF}' "$W/list")" = "$address_b" ] &&
  [ -n "$address_a" ] && step list
ctl --json list >"$W/list.json"
grep -q "\"$address_a\"" "$W/list.json" && grep -q "\"$address_b\"" "$W/list.json" && [ -n "$address_a" ] && step list-json
wait_for 30 ctl exec c -- ping -c 1 -W 2 d && step c-pings-d
# Both ran (an exec that failed prints nothing) and got nothing back: "rc=1" alone.
[ "$(ctl exec c -- sh -c '(echo nat-from-c; sleep 2) | nc -w 5 10.99.0.2 7000; echo rc=$?')" = rc=1 ] && step c-no-nat
[ "$(ctl exec c -- sh -c 'ping -c 2 -W 2 10.99.0.2 >/dev/null 2>&1; echo rc=$?')" = rc=1 ] && step c-no-route
[ -z "${NESTED_VERBOSE:-}" ] || sed "s/^/NESTED-LOG $SCENARIO $VMM: vmctl list: /" "$W/list"
finish pass
