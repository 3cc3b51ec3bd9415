# Where L1's CPU goes during L2 boots, run in L1 (tests/bench/boot/profile.sh --perf): for each
# VMM kind in $BENCH_KINDS, two boots of $BENCH_KERNEL to warm L1 up, then perf (carried in with
# --bin) samples L1's whole CPU (cpu-clock, call graphs) over $BENCH_PERF_BOOTS more boots, each
# killed at userspace. On the instruction clock a sample stands for a fixed number of L1
# instructions. Printed as "PERF vmm=K run ready_ms=MS", then perf's tables by process and shared
# object ("PERF vmm=K dso ..."), by process and symbol ("PERF vmm=K sym ...") and the callers of
# the kernel's page clearing ("PERF vmm=K clear ...": who made L1 zero fresh pages). Samples taken
# while L2 runs count as L2 guest time and appear in the totals only.
l2_guest "${BENCH_KERNEL:-pvh}"
MEM=${BENCH_MEM:-256}
perf=/opt/vmm/bin/perf
[ -x "$perf" ] || { fail "no perf in L1 (profile.sh carries \$(command -v perf) with --bin)"; exit 0; }
# perf's report of /tmp/perf.data without its blank lines and hints.
report() { "$perf" report -i /tmp/perf.data --stdio -n --no-children "$@" 2>/dev/null | grep -v '^$' | grep -v '^# *\.*$' | grep -v 'To display\|tips.txt'; }
bad=0
for VMM in ${BENCH_KINDS:-$VMM}; do
  for i in 1 2; do KILL_AFTER=1 TIMEOUT=120 l2_run >/dev/null 2>&1; done
  rm -f /tmp/perf.data
  "$perf" record -q -a -g -e cpu-clock -F "${BENCH_PERF_FREQ:-4000}" -o /tmp/perf.data >/tmp/perf.out 2>&1 &
  recorder=$!
  sleep 0.5
  for i in $(seq "${BENCH_PERF_BOOTS:-3}"); do
    KILL_AFTER=1 TIMEOUT=120 l2_run
    [ "$RUN_MARKERS" -ge 1 ] || bad=$((bad + 1))
    echo "PERF vmm=$VMM run ready_ms=$RUN_MARKER_MS"
  done
  kill -INT "$recorder"; wait "$recorder"
  report --sort comm,dso -g none | head -n 30 | sed "s/^/PERF vmm=$VMM dso /"
  report --sort comm,sym -g none | grep -v '^#' | head -n 50 | sed "s/^/PERF vmm=$VMM sym /"
  report --sort sym -S clear_page_rep,clear_page_orig,clear_page_erms -g caller,0.5,callee --percent-limit 1 | grep -v '^#' |
    head -n 60 | sed "s/^/PERF vmm=$VMM clear /"
done
[ "$bad" = 0 ] && pass "perf ${BENCH_PERF_BOOTS:-3} boots per kind" || fail "failed_boots=$bad"
