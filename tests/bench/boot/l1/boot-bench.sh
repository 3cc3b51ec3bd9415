# Boot benchmark, run in L1 (shipped by tests/bench/boot/run.sh). For each of $BENCH_RUNS rounds,
# each kernel in $BENCH_KERNELS (bzImage, pvh) and each VMM kind in $BENCH_KINDS (interleaved, so
# that load on the machine hits all alike; the kinds' order rotates by one every round, since a
# boot's time depends on which boot came just before it in this L1), one L2 boot: same
# initramfs, -m $BENCH_MEM, -smp 1, `quiet`, the same argv for every VMM (-M from the kind) plus
# a -qmp socket. The guest's init says L2READY (launch -> userspace, l1run's clock; the guest's
# own uptime there), then L2SNAP (l2.test=snap), where L1 asks the VMM for QMP query-stats:
# KVM's exit counters of the vCPU and page-table counters of the VM (provider kvm, the same from
# QEMU and vmm), and vmm's own counters of the exits that reach it (provider vmm). Then the guest
# powers off.
# Prints "BENCH vmm=KIND kernel=K run=I ready_ms=T guest_s=S vm_ns=N" (ready_ms=fail on a failed
# boot; N: the guest's kvm-clock at its sched clock start, ns since VM creation, from L2SNAP)
# and "BENCH-QMP vmm=KIND kernel=K run=I JSON" for each query-stats reply.
#
# BENCH_CPU=1 (run.sh --cpu): instead, each boot is quiet and killed at userspace (L2READY), and
# L1's /proc/stat and /proc/vmstat around it split the boot's L1 time (L1 has one CPU) into the
# VMM's own user time, L2 guest time (KVM accounts a vCPU's time in the guest apart), L1 kernel
# time (exits, page faults, the clearing of fresh pages, system calls) and idle, in ticks of
# 10 ms; plus L1's huge-page and page faults. Prints "CPU vmm=KIND kernel=K run=I ready_ms=T
# guest_s=S user=U l2=G sys=Y idle=D thp=H pgfault=F" (user excludes l2).
MEM=${BENCH_MEM:-256}
KVM_VCPU='{"provider":"kvm","names":["exits","io_exits","mmio_exits","pf_fixed","halt_exits","insn_emulation"]}'
KVM_VM='{"provider":"kvm","names":["pages_4k","pages_2m"]}'
qmp_boot() {
  vcpu_providers=$KVM_VCPU
  case "$VMM" in vmm*) vcpu_providers="$KVM_VCPU,{\"provider\":\"vmm\"}" ;; esac
  rm -f /tmp/bench-qmp.sock
  SOCK=/tmp/bench-qmp.sock TRIGGER=L2SNAP KILL_AFTER=0 TIMEOUT=90 APPEND="l2.test=snap ${BENCH_APPEND:-}" SMP=${BENCH_SMP:-1} \
    SOCK_TEXT="{\"execute\":\"qmp_capabilities\"} {\"execute\":\"query-stats\",\"arguments\":{\"target\":\"vcpu\",\"providers\":[$vcpu_providers]}} {\"execute\":\"query-stats\",\"arguments\":{\"target\":\"vm\",\"providers\":[$KVM_VM]}}" \
    l2_run -qmp unix:/tmp/bench-qmp.sock,server=on,wait=off
  tag="vmm=$VMM kernel=$kernel run=$i"
  if [ "$RUN_MARKERS" -ge 1 ]; then
    vm_ns=$(grep -a -m1 'L2SNAP ' "$LOG" | sed -n 's/.*sched_offset_ns=\([0-9]*\).*/\1/p')
    echo "BENCH $tag ready_ms=$RUN_MARKER_MS guest_s=$(field uptime "$READY") vm_ns=${vm_ns:-none}"
  else
    echo "BENCH $tag ready_ms=fail"; bad=$((bad + 1))
    tail -n 5 "$LOG" | sed "s/^/NESTED-LOG $VMM: /"
  fi
  grep -a ' SOCK {"return": \[' "$LOG" | sed "s/^[0-9.]* SOCK /BENCH-QMP $tag /"
}
stat_now() {
  set -- $(head -n 1 /proc/stat)
  S_USER=$2 S_SYS=$(($4 + $7 + $8)) S_IDLE=$(($5 + $6)) S_GUEST=${10}
  S_THP=$(sed -n 's/^thp_fault_alloc //p' /proc/vmstat)
  S_PGF=$(sed -n 's/^pgfault //p' /proc/vmstat)
}
cpu_boot() {
  stat_now
  user0=$S_USER sys0=$S_SYS idle0=$S_IDLE guest0=$S_GUEST thp0=$S_THP pgf0=$S_PGF
  TIMEOUT=90 KILL_AFTER=1 APPEND="${BENCH_APPEND:-}" SMP=${BENCH_SMP:-1} l2_run
  stat_now
  if [ "$RUN_MARKERS" -ge 1 ]; then
    echo "CPU vmm=$VMM kernel=$kernel run=$i ready_ms=$RUN_MARKER_MS guest_s=$(field uptime "$READY")" \
      "user=$((S_USER - user0 - (S_GUEST - guest0))) l2=$((S_GUEST - guest0)) sys=$((S_SYS - sys0)) idle=$((S_IDLE - idle0))" \
      "thp=$((S_THP - thp0)) pgfault=$((S_PGF - pgf0))"
  else
    echo "CPU vmm=$VMM kernel=$kernel run=$i ready_ms=fail"; bad=$((bad + 1))
  fi
}
# rotated N WORD...: the words, the first N (mod their count) moved to the end.
rotated() {
  rot_n=$(($1 % ($# - 1))); shift
  while [ "$rot_n" -gt 0 ]; do rot_first=$1; shift; set -- "$@" "$rot_first"; rot_n=$((rot_n - 1)); done
  echo "$@"
}
bad=0
i=1
while [ "$i" -le "${BENCH_RUNS:-5}" ]; do
  for kernel in ${BENCH_KERNELS:-bzImage}; do
    l2_guest "$kernel"
    for VMM in $(rotated $((i - 1)) ${BENCH_KINDS:-$VMM}); do
      [ "${BENCH_SETTLE:-0}" = 0 ] || sleep "$BENCH_SETTLE"
      if [ "${BENCH_CPU:-0}" = 1 ]; then cpu_boot; else qmp_boot; fi
    done
  done
  i=$((i + 1))
done
VMM=${BENCH_KINDS%% *}
[ "$bad" = 0 ] && pass "runs=${BENCH_RUNS:-5}" || fail "failed_runs=$bad"
