# Boot trace, run in L1 (tests/bench/boot/trace.sh): for each VMM kind in $BENCH_KINDS,
# one quiet L2 boot of $BENCH_KERNEL with the kernel's own tracer recording from its first
# initcalls (scheduler switches and wake-ups, workqueue items, timer interrupts, initcalls); the
# guest prints the buffer at userspace (tests/guest/kit/l2/tests/boottrace.sh). Shows where the
# guest's time goes between two initcalls: running which task, or idle waiting for what.
# Printed as "TRACE vmm=K LINE".
l2_guest "${BENCH_KERNEL:-bzImage}"
MEM=${BENCH_MEM:-256}
events=${BENCH_TRACE_EVENTS:-initcall:initcall_start,initcall:initcall_finish,sched:sched_switch,workqueue:workqueue_execute_start,workqueue:workqueue_execute_end}
bad=0
for VMM in ${BENCH_KINDS:-$VMM}; do
  TIMEOUT=110 KILL_AFTER=0 MARKER=BOOTTRACE-END \
    APPEND="trace_event=$events trace_buf_size=16M l2.test=boottrace" l2_run
  [ "$RUN_MARKERS" -ge 1 ] || bad=$((bad + 1))
  echo "TRACE vmm=$VMM ready_ms=$(grep -am1 ' L2READY ' "$LOG" | cut -d' ' -f1) uptime=$(field uptime "$READY") exit=$RUN_EXIT"
  grep -a ' BOOTTRACE ' "$LOG" | sed "s/^[0-9.]* BOOTTRACE /TRACE vmm=$VMM /"
done
VMM=${BENCH_KINDS%% *}
[ "$bad" = 0 ] && pass "kinds=$(echo ${BENCH_KINDS:-$VMM} | tr ' ' ,)" || fail "failed=$bad"
