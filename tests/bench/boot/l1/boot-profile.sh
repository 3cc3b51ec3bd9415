# Boot profile, run in L1 (tests/bench/boot/profile.sh). For each VMM kind in $BENCH_KINDS, one
# L2 boot of $BENCH_KERNEL (bzImage|pvh) with -m $BENCH_MEM, twice:
#   timeline: without `quiet` (loglevel=7) and with earlyprintk on ttyS0, so that the
#     decompressor and the kernel print from their first line; l1run stamps every line (L1 ms
#     since launch) and the kernel its own time. Printed as "PROFILE vmm=K timeline MS LINE" for
#     the landmark lines. The console costs exits, alike for every VMM (same kernel, same lines).
#   counts: `quiet` with initcall_debug; at the guest's BOOTPROF-SNAP (right after userspace
#     starts) QMP query-stats target=vcpu (QEMU: provider kvm; vmm: its own) and L1's KVM debugfs
#     counters of the running VM; then the guest prints its initcall timings and kernel log.
#     Printed as "PROFILE vmm=K qmp JSON", "PROFILE vmm=K kvmstat NAME VALUE", "PROFILE vmm=K
#     guest LINE".
l2_guest "${BENCH_KERNEL:-bzImage}"
MEM=${BENCH_MEM:-256}
mountpoint -q /sys/kernel/debug 2>/dev/null || mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
bad=0
for VMM in ${BENCH_KINDS:-$VMM}; do
  KILL_AFTER=1 TIMEOUT=120 APPEND="loglevel=7 earlyprintk=serial,ttyS0,115200" l2_run
  [ "$RUN_MARKERS" -ge 1 ] || bad=$((bad + 1))
  echo "PROFILE vmm=$VMM timeline ready_ms=$RUN_MARKER_MS exit=$RUN_EXIT"
  grep -a -e 'Decompressing' -e 'Booting the kernel' -e 'Linux version' -e 'tsc: ' -e 'clocksource' \
    -e 'Calibrating' -e 'PCI' -e 'pci 0000:00:1f' -e 'ACPI: Interpreter' -e 'rtc_cmos' -e 'i8042' -e 'serial8250' \
    -e 'Freeing unused' -e 'Run /init' -e 'L2READY' -e 'Unpacking initramfs' -e 'Trying to unpack' \
    -e 'x86/fpu' -e 'smpboot' -e 'Memory: ' -e 'kvm-clock' -e 'floppy' "$LOG" |
    head -n 100 | sed "s/^/PROFILE vmm=$VMM timeline /"
  # Where the L1 time went between console lines: the 25 longest gaps, with the line that ended each.
  awk '{ ms = $1 + 0; if (NR > 1) printf "%d %d %s\n", ms - prev, ms, $0; prev = ms }' "$LOG" | sort -rn | head -n 25 |
    sed "s/^/PROFILE vmm=$VMM gap /"
  # The L1 side of the counters: the VM's KVM debugfs directory (<pid>-<fd>) while it runs.
  log=/tmp/l2-$SCENARIO-$VMM.log
  rm -f "$log" /tmp/kvmstat
  (
    i=0
    while [ $i -lt 600 ] && ! grep -qs BOOTPROF-SNAP "$log"; do sleep 0.2; i=$((i + 1)); done
    for f in /sys/kernel/debug/kvm/*-*/*; do
      [ -f "$f" ] && v=$(cat "$f" 2>/dev/null) && [ -n "$v" ] && echo "${f##*/} $v"
    done >/tmp/kvmstat
  ) &
  poller=$!
  rm -f /tmp/qmp-prof.sock
  SOCK=/tmp/qmp-prof.sock TRIGGER=BOOTPROF-SNAP TIMEOUT=120 KILL_AFTER=0 \
    SOCK_TEXT='{"execute":"qmp_capabilities"} {"execute":"query-stats","arguments":{"target":"vcpu"}}' \
    APPEND="initcall_debug log_buf_len=4M l2.test=bootprof" l2_run -qmp unix:/tmp/qmp-prof.sock,server=on,wait=off
  wait $poller
  grep -q BOOTPROF-END "$LOG" || bad=$((bad + 1))
  echo "PROFILE vmm=$VMM counts ready_ms=$RUN_MARKER_MS exit=$RUN_EXIT ms=$RUN_MS"
  grep -a ' SOCK {"return": \[' "$LOG" | sed "s/^[0-9.]* SOCK /PROFILE vmm=$VMM qmp /"
  sed "s/^/PROFILE vmm=$VMM kvmstat /" /tmp/kvmstat
  grep -a 'BOOTPROF ' "$LOG" | sed "s/^[0-9.]* BOOTPROF /PROFILE vmm=$VMM guest /"
done
VMM=${BENCH_KINDS%% *}
[ "$bad" = 0 ] && pass "kinds=$(echo ${BENCH_KINDS:-$VMM} | tr ' ' ,)" || fail "failed=$bad"
