# Boot benchmark, run in L1 (shipped by tests/bench/boot/run.sh). For each of $BENCH_RUNS rounds
# and each VMM kind in $BENCH_KINDS (interleaved, so that load on the machine hits all alike):
#   ready: launch -> the L2 ready marker (the VMM is killed there)
#   exit:  launch -> VMM exit, the guest powering off at once (l2.action=poweroff)
# Same kernel ($BENCH_KERNEL: bzImage|pvh), initramfs, -m $BENCH_MEM, -smp 1 and `quiet`.
# Prints "BENCH vmm=KIND metric=ready|exit run=I ms=T" (or ms=fail) for every run; ready lines
# add guest_s=<the guest's /proc/uptime at the marker> (kernel start -> userspace).
[ "${BENCH_KERNEL:-bzImage}" = pvh ] && KERNEL=$L2_VMLINUX || KERNEL=$L2_BZIMAGE
MEM=${BENCH_MEM:-256}
bad=0
i=1
while [ "$i" -le "${BENCH_RUNS:-5}" ]; do
  for VMM in ${BENCH_KINDS:-$VMM}; do
    KILL_AFTER=1 APPEND= l2_run
    if [ "$RUN_MARKERS" -ge 1 ]; then
      echo "BENCH vmm=$VMM metric=ready run=$i ms=$RUN_MARKER_MS guest_s=$(field uptime "$READY")"
    else echo "BENCH vmm=$VMM metric=ready run=$i ms=fail"; bad=$((bad + 1)); fi
    KILL_AFTER=0 APPEND=l2.action=poweroff l2_run
    if [ "$RUN_EXIT" = 0 ] && [ "$RUN_TIMEOUT" = 0 ]; then echo "BENCH vmm=$VMM metric=exit run=$i ms=$RUN_MS"
    else echo "BENCH vmm=$VMM metric=exit run=$i ms=fail"; bad=$((bad + 1)); fi
  done
  i=$((i + 1))
done
VMM=${BENCH_KINDS%% *}
[ "$bad" = 0 ] && pass "runs=${BENCH_RUNS:-5}" || fail "failed_runs=$bad"
