# Where L1's CPU goes during an L2 boot (shipped by tests/bench/boot/cpu.sh): for each of
# $BENCH_RUNS rounds, each kernel in $BENCH_KERNELS and each kind in $BENCH_KINDS (interleaved),
# one quiet L2 boot, killed at userspace (L2READY). Around it L1's /proc/stat and /proc/vmstat:
# L1 has one CPU, so the deltas split the boot's L1 time into the VMM's own user time, L2 guest
# time (KVM accounts a vCPU's time in the guest apart), L1 kernel time (exits, page faults, the
# clearing of fresh pages, system calls) and idle, in ticks of 10 ms; plus L1's huge-page and
# page faults. Prints "CPU vmm=KIND kernel=K run=I ready_ms=T guest_s=S user=U l2=G sys=Y
# idle=D thp=H pgfault=F" (user excludes l2).
stat_now() {
  set -- $(head -n 1 /proc/stat)
  S_USER=$2 S_SYS=$(($4 + $7 + $8)) S_IDLE=$(($5 + $6)) S_GUEST=${10}
  S_THP=$(sed -n 's/^thp_fault_alloc //p' /proc/vmstat)
  S_PGF=$(sed -n 's/^pgfault //p' /proc/vmstat)
}
bad=0
i=1
while [ "$i" -le "${BENCH_RUNS:-3}" ]; do
  for kernel in ${BENCH_KERNELS:-bzImage}; do
    [ "$kernel" = pvh ] && KERNEL=${BENCH_VMLINUX:-$L2_VMLINUX} || KERNEL=${BENCH_BZIMAGE:-$L2_BZIMAGE}
    for VMM in ${BENCH_KINDS:-$VMM}; do
      stat_now
      user0=$S_USER sys0=$S_SYS idle0=$S_IDLE guest0=$S_GUEST thp0=$S_THP pgf0=$S_PGF
      TIMEOUT=90 KILL_AFTER=1 APPEND="${BENCH_APPEND:-}" SMP=${BENCH_SMP:-1} MEM=${BENCH_MEM:-256} l2_run
      stat_now
      if [ "$RUN_MARKERS" -ge 1 ]; then
        echo "CPU vmm=$VMM kernel=$kernel run=$i ready_ms=$RUN_MARKER_MS guest_s=$(field uptime "$READY")" \
          "user=$((S_USER - user0 - (S_GUEST - guest0))) l2=$((S_GUEST - guest0)) sys=$((S_SYS - sys0)) idle=$((S_IDLE - idle0))" \
          "thp=$((S_THP - thp0)) pgfault=$((S_PGF - pgf0))"
      else
        echo "CPU vmm=$VMM kernel=$kernel run=$i ready_ms=fail"; bad=$((bad + 1))
      fi
    done
  done
  i=$((i + 1))
done
VMM=${BENCH_KINDS%% *}
[ "$bad" = 0 ] && pass "runs=${BENCH_RUNS:-3}" || fail "failed_runs=$bad"
