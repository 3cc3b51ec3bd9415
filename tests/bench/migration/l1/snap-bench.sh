# Snapshot save and restore benchmark, run in L1 (shipped by tests/bench/migration/nested.sh with
# --snapshots; not a CTest scenario). For every guest size in $BENCH_MEM (MiB), the kit's guest
# (1 vCPU, -M pc, idle: services started) is saved and restored:
#   qemu-pc: on a qcow2 disk (the image nested.sh attached as --disk snap=...): HMP savevm and
#            loadvm through QMP human-monitor-command on the running guest (time: the STOP and
#            RESUME events' timestamps), `migrate exec:cat > FILE` (total-time), then fresh
#            processes restoring from the file (-incoming "exec:cat FILE") and from the internal
#            snapshot (-loadvm): launch -> RESUME event (l1run's clock; -loadvm loads and starts
#            before the main loop runs, so there: launch -> the answer to a query-status sent at
#            connect, which says running)
#   vmm-pc:  no disk (vmm's snapshot of a disk is vmmd's qcow2 internal snapshot, not timed here):
#            `migrate file:F` (plain stream; total-time), a fresh vmm -incoming file:F (launch ->
#            "incoming done", its debug log line right before RESUME), that guest saved with
#            mapped-ram (total-time) and restored again from the mapped file.
# Each run ($BENCH_RUNS, default 3) boots fresh sources. Prints one line per measurement:
#   SNAP vmm=KIND mem=MIB op=OP run=N ms=MS [detail]
W=/tmp/snap-bench
failed="" plan_vmm=$VMM
export VMM_LOG=debug  # vmm's "incoming done" line times its restores (QEMU ignores it)

# qemu_up LOG: the restoring QEMU runs: its RESUME event came (-incoming), or the query-status
# l1run sent at connect says running (-loadvm loads and starts before its monitor answers).
qemu_up() { grep -q -e '"event": *"RESUME"' -e 'SOCK .*"running": *true' "$1"; }

# event_ms NAME TEXT: the event NAME's timestamp in TEXT (QMP output), in ms.
event_ms() {
  echo "$2" | grep "\"event\": *\"$1\"" | head -n1 |
    sed -n 's/.*"seconds": *\([0-9]*\), *"microseconds": *\([0-9]*\).*/\1 \2/p' | awk '{printf "%.3f", $1 * 1000 + $2 / 1000}'
}

# hmp_timed KIND MEM OP CMD: runs HMP CMD on the running QEMU; prints its STOP -> RESUME time.
hmp_timed() {
  # unixcat waits 2 s of silence by default; savevm under TCG is silent for longer.
  out=$({ echo '{"execute":"qmp_capabilities"}'; echo "{\"execute\":\"human-monitor-command\",\"arguments\":{\"command-line\":\"$4\"}}"; } |
    unixcat -t 120 "$W/src.qmp")
  stop=$(event_ms STOP "$out") resume=$(event_ms RESUME "$out")
  ret=$(echo "$out" | grep -o '"return": *"[^"]*"' | tail -n1)
  if [ -n "$stop" ] && [ -n "$resume" ]; then
    echo "SNAP vmm=$1 mem=$2 op=$3 run=$run ms=$(awk "BEGIN{printf \"%.0f\", $resume - $stop}") $ret"
  else
    echo "SNAP vmm=$1 mem=$2 op=$3 run=$run ms=? no-events $(echo "$out" | tr -d '\n' | cut -c1-300)"
    failed="$failed,$1-$2-$3"
  fi
}

# saved KIND MEM OP URI FILE [mapped]: migrate the source to URI (writing FILE); prints
# query-migrate's total-time and the file's allocated size.
saved() {
  [ "${6:-}" = mapped ] && qmp_talk "$W/src.qmp" '{"execute":"migrate-set-capabilities","arguments":{"capabilities":[{"capability":"mapped-ram","state":true}]}}' >/dev/null
  result=$(qmp_migrate "$W/src.qmp" "$4")
  echo "SNAP vmm=$1 mem=$2 op=$3 run=$run ms=$(field total_ms "$result") file_kb=$(du -k "$5" 2>/dev/null | cut -f1) $result"
  case "$result" in status=completed*) ;; *) failed="$failed,$1-$2-$3" ;; esac
}

# boot_source MEM ARGS...: the guest in the background, QMP at $W/src.qmp; waits for its services.
boot_source() {
  mem=$1; shift
  (
    SCENARIO=snap-src KERNEL=$L2_BZIMAGE SMP=1 MEM=$mem TIMEOUT=600 APPEND="" l2_run -qmp "unix:$W/src.qmp,server=on,wait=off" "$@"
  ) 2>/tmp/snap-src.err &
  wait_for 200 grep -q "L2UP services started" "/tmp/l2-snap-src-$VMM.log"
}

stop_source() {
  qmp_talk "$W/src.qmp" '{"execute":"quit"}' >/dev/null 2>&1
  wait
}

# restored KIND MEM OP ARGS...: a fresh VMM restoring (ARGS: -incoming ... or -loadvm ...);
# prints launch -> running.
restored() {
  kind=$1 m=$2 op=$3; shift 3
  if [ "$kind" = vmm-pc ]; then
    SCENARIO=snap-$op MEM=$m TIMEOUT=300 MARKER="incoming done" KILL_AFTER=1 APPEND="" l2_run "$@"
    ms=$RUN_MARKER_MS detail=$(grep -o 'incoming done.*' "$LOG" | head -n1 | sed 's/ /_/g')
  else
    # l1run holds the first monitor from launch (its events logged with its clock); the second
    # one answers query-status and quit.
    log=/tmp/l2-snap-$op-$kind.log
    rm -f "$log"
    # query-status is answered by QEMU's main loop (its QMP socket is served by an I/O thread,
    # whose greeting comes before any load): "running" there is after -loadvm's load and start.
    SOCK=$W/dst.qmp TRIGGER="" SOCK_TEXT=$(printf '%s\n%s' '{"execute":"qmp_capabilities"}' '{"execute":"query-status"}') SCENARIO=snap-$op MEM=$m TIMEOUT=300 \
      MARKER=never-printed APPEND="" l2_run -qmp "unix:$W/dst.qmp,server=on,wait=off" -qmp "unix:$W/dst2.qmp,server=on,wait=off" "$@" &
    wait_for 280 qemu_up "$log"
    ms=$(grep -m1 -e '"event": *"RESUME"' -e 'SOCK .*"running": *true' "$log" | cut -d' ' -f1) detail=resume-event-or-running-status
    qmp_talk "$W/dst2.qmp" '{"execute":"quit"}' >/dev/null 2>&1
    wait
  fi
  echo "SNAP vmm=$kind mem=$m op=$op run=$run ms=${ms:-?} $detail"
  [ -n "$ms" ] && [ "$ms" != -1 ] || { failed="$failed,$kind-$m-$op"; tail -n 20 "/tmp/l2-snap-$op-$kind.log" | sed "s|^|NESTED-LOG snap-bench $kind $op: |"; }
}

for m in ${BENCH_MEM:-256}; do
 for run in $(seq 1 "${BENCH_RUNS:-3}"); do
  for kind in ${BENCH_KINDS:-vmm-pc qemu-pc}; do
    VMM=$kind
    l2_vmm || { failed="$failed,$kind"; continue; }
    rm -rf "$W" && mkdir -p "$W"
    if [ "$kind" = qemu-pc ]; then
      dev=$(disk_dev snap) || { failed="$failed,no-disk"; continue; }
      drive="file=$dev,format=qcow2,if=virtio,cache=none"
      boot_source "$m" -drive "$drive" || { failed="$failed,$kind-$m-boot"; stop_source; continue; }
      hmp_timed "$kind" "$m" savevm "savevm s$m-$run"
      hmp_timed "$kind" "$m" loadvm "loadvm s$m-$run"
      saved "$kind" "$m" save-exec "exec:cat > $W/q.state" "$W/q.state"
      stop_source
      restored "$kind" "$m" restore-exec -drive "$drive" -incoming "exec:cat $W/q.state"
      restored "$kind" "$m" restore-loadvm -drive "$drive" -loadvm "s$m-$run"
    else
      boot_source "$m" || { failed="$failed,$kind-$m-boot"; stop_source; continue; }
      saved "$kind" "$m" save-plain "file:$W/plain.state" "$W/plain.state"
      stop_source
      # The restored guest is the source of the mapped-ram save.
      (
        SCENARIO=snap-src MEM=$m TIMEOUT=600 APPEND="" l2_run -qmp "unix:$W/src.qmp,server=on,wait=off" -incoming "file:$W/plain.state"
      ) 2>/tmp/snap-src.err &
      if wait_for 200 grep -q "incoming done" "/tmp/l2-snap-src-$VMM.log"; then
        echo "SNAP vmm=$kind mem=$m op=restore-plain run=$run ms=$(grep -m1 'incoming done' "/tmp/l2-snap-src-$VMM.log" | cut -d' ' -f1) $(grep -o 'incoming done.*' "/tmp/l2-snap-src-$VMM.log" | sed 's/ /_/g')"
        saved "$kind" "$m" save-mapped "file:$W/mapped.state" "$W/mapped.state" mapped
      else
        failed="$failed,$kind-$m-restore-plain"
      fi
      stop_source
      restored "$kind" "$m" restore-mapped -incoming "file:$W/mapped.state"
      restored "$kind" "$m" restore-plain-again -incoming "file:$W/plain.state"
    fi
  done
 done
done
VMM=$plan_vmm
if [ -z "$failed" ]; then pass "mem=$(echo ${BENCH_MEM:-256} | tr ' ' '+')"; else fail "failed=${failed#,}"; fi
