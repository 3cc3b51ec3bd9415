# Guest-agent benchmark, run in L1 (shipped by tests/bench/agent/run.sh). Boots the L2 kit (its
# /init starts the real qemu-ga on the port named org.qemu.guest_agent.0) under every VMM kind
# in $BENCH_KINDS at once, each with the same virtio-serial setup and -m $BENCH_MEM, then runs
# /opt/vmm/bin/agent_ping on all their agent sockets ($BENCH_COUNT pings each, interleaved in
# rounds) and kills the VMMs. Prints agent_ping's "BENCH vmm=KIND metric=ping ..." lines.
pids="" targets=""
for VMM in ${BENCH_KINDS:-$VMM}; do
  l2_vmm || continue
  sock=/tmp/bench-qga-$VMM.sock
  rm -f "$sock"
  "$L2_BIN" -M "$L2_MACHINE" -accel kvm -cpu host -m "${BENCH_MEM:-192}" -smp 1 -kernel "$L2_BZIMAGE" \
    -initrd "$L2_INITRD" -append "$L2_BASE_APPEND" -display none -nodefaults -serial "file:/tmp/bench-l2-$VMM.log" \
    -chardev "socket,id=qga0,path=$sock,server=on,wait=off" -device "$(virtio_serial_dev)" \
    -device virtserialport,chardev=qga0,name=org.qemu.guest_agent.0 </dev/null >"/tmp/bench-vmm-$VMM.log" 2>&1 &
  pids="$pids $!" targets="$targets $sock=$VMM"
done
# shellcheck disable=SC2086
/opt/vmm/bin/agent_ping --count "${BENCH_COUNT:-500}" --rounds 10 --wait 240 $targets
rc=$?
for VMM in ${BENCH_KINDS:-$VMM}; do
  [ "$rc" = 0 ] || tail -n 5 "/tmp/bench-vmm-$VMM.log" "/tmp/bench-l2-$VMM.log" 2>/dev/null | sed "s/^/NESTED-LOG bench $VMM: /"
done
# shellcheck disable=SC2086
kill -9 $pids 2>/dev/null
wait 2>/dev/null
VMM=${BENCH_KINDS%% *}
[ "$rc" = 0 ] && pass "kinds=${BENCH_KINDS:-$VMM}" || fail "agent_ping-rc=$rc"
