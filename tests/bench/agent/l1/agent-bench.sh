# Guest-agent benchmark, run in L1 (shipped by tests/bench/agent/run.sh). For each VMM kind in
# $BENCH_KINDS: boots the L2 kit (its /init starts the real qemu-ga on the port named
# org.qemu.guest_agent.0) with the same virtio-serial setup, runs /opt/vmm/bin/agent_ping
# ($BENCH_COUNT pings after a warm-up) on the agent socket, and kills the VMM.
# Prints agent_ping's "BENCH vmm=KIND metric=ping ..." line (or "... fail=...") per kind.
bad=0
for VMM in ${BENCH_KINDS:-$VMM}; do
  l2_vmm || { bad=$((bad + 1)); continue; }
  sock=/tmp/bench-qga-$VMM.sock
  rm -f "$sock"
  "$L2_BIN" -M "$L2_MACHINE" -accel kvm -cpu host -m 256 -smp 1 -kernel "$L2_BZIMAGE" -initrd "$L2_INITRD" \
    -append "$L2_BASE_APPEND" -display none -nodefaults -serial "file:/tmp/bench-l2-$VMM.log" \
    -chardev "socket,id=qga0,path=$sock,server=on,wait=off" -device "$(virtio_serial_dev)" \
    -device virtserialport,chardev=qga0,name=org.qemu.guest_agent.0 </dev/null >"/tmp/bench-vmm-$VMM.log" 2>&1 &
  pid=$!
  i=0
  while [ ! -S "$sock" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
  /opt/vmm/bin/agent_ping "$sock" "$VMM" "${BENCH_COUNT:-500}" 120 || {
    bad=$((bad + 1))
    tail -n 5 "/tmp/bench-vmm-$VMM.log" "/tmp/bench-l2-$VMM.log" | sed "s/^/NESTED-LOG bench $VMM: /"
  }
  kill -9 "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
done
VMM=${BENCH_KINDS%% *}
[ "$bad" = 0 ] && pass "kinds=${BENCH_KINDS:-$VMM}" || fail "failed_kinds=$bad"
