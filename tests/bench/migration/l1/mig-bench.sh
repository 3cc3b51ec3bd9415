# Live-migration benchmark, run in L1 (shipped by tests/bench/migration/nested.sh; not a CTest
# scenario). For every VMM kind in $BENCH_KINDS (vmm-pc, qemu-pc) and every load in $BENCH_LOADS:
# and every guest size in $BENCH_MEM (MiB, one or more: "256 1024"):
# boots the kit's guest (that size, 1 vCPU, -M pc, no NIC) in a source VMM, starts a
# destination of the same kind with `-incoming unix:`, sets the same parameters on both kinds
# (downtime-limit 300 ms, max-bandwidth 128 MiB/s: QEMU 7.2's defaults) and migrates; prints
#   BENCH vmm=KIND mem=MIB load=LOAD status=S total_ms=T downtime_ms=D setup_ms=U ram_bytes=B iterations=I state=R
# Loads: idle (the kit's services started, then nothing), dirty (l2/tests/migrate.sh: a 16 MiB
# tmpfs copy rewritten and md5-checked about every 0.7 s; its TCP stream has no peer here).
# The first runs (2026-12-05) got no idle rows: l1run kept the console log in a 4 KiB stdio
# buffer, so the few lines of an idle guest (its marker among them) reached the file only at
# exit, and the 150 s wait for the marker ran out; l1run now writes the log line by line.
W=/tmp/mig-bench
failed="" plan_vmm=$VMM
for mem in ${BENCH_MEM:-256}; do
for kind in ${BENCH_KINDS:-vmm-pc qemu-pc}; do
  VMM=$kind
  l2_vmm || { failed="$failed,$kind"; continue; }
  for load in ${BENCH_LOADS:-idle dirty}; do
    rm -rf "$W" && mkdir -p "$W"
    case $load in
      idle) append="" mark="L2UP services started" ;;
      *) append="l2.test=migrate" mark="MIGMEM round=3 " ;;
    esac
    for side in src dst; do
      [ $side = src ] && extra="" || extra="-incoming unix:$W/mig.sock"
      (
        SCENARIO=mig-bench-$load-$side
        KERNEL=$L2_BZIMAGE SMP=1 MEM=$mem TIMEOUT=300 APPEND="$append" l2_run -qmp "unix:$W/$side.qmp,server=on,wait=off" $extra
        echo "exit=$RUN_EXIT" >"$W/$side.exit"
      ) 2>"/tmp/mig-bench-$side.err" &
      [ $side = src ] && { wait_for 150 grep -q "$mark" "/tmp/l2-mig-bench-$load-src-$kind.log" || break; }
    done
    result="status=no-guest"
    if wait_for 60 test -S "$W/mig.sock" -a -S "$W/src.qmp" -a -S "$W/dst.qmp"; then
      qmp_talk "$W/src.qmp" '{"execute":"migrate-set-parameters","arguments":{"downtime-limit":300,"max-bandwidth":134217728}}' >/dev/null
      result=$(qmp_migrate "$W/src.qmp" "unix:$W/mig.sock")
    fi
    echo "BENCH vmm=$kind mem=$mem load=$load $result"
    case "$result" in
      status=completed*) ;;
      *) failed="$failed,$kind-$mem-$load"
         ls /tmp | sed "s|^|NESTED-LOG mig-bench tmp: |"
         for side in src dst; do
           sed "s|^|NESTED-LOG mig-bench $kind $load $side stderr: |" "/tmp/mig-bench-$side.err" 2>/dev/null
           tail -n 15 "/tmp/l2-mig-bench-$load-$side-$kind.log" 2>/dev/null | sed "s|^|NESTED-LOG mig-bench $kind $load $side: |"
         done ;;
    esac
    for side in src dst; do [ -S "$W/$side.qmp" ] && qmp_talk "$W/$side.qmp" '{"execute":"quit"}' >/dev/null 2>&1; done
    wait_for 30 test -e "$W/src.exit" -a -e "$W/dst.exit"
    wait
  done
done
done
VMM=$plan_vmm
if [ -z "$failed" ]; then pass "kinds=$(echo ${BENCH_KINDS:-vmm-pc qemu-pc} | tr ' ' '+')"; else fail "failed=${failed#,}"; fi
