# Firmware boot benchmark (tests/bench/firmware/run.sh), run in L1 once per VMM kind: BENCH_RUNS
# boots of each disk image through the VMM's firmware, each stopped at its last milestone; prints
#   BENCH vmm=KIND image=IMAGE metric=METRIC run=N ms=MS|fail
# with MS the L1 milliseconds from launch to the first console line of the milestone.
runs=${BENCH_RUNS:-1} format=${BENCH_FORMAT:-raw} missed=0
# systemd's welcome has colour codes inside ("Welcome to ESC[1mDebian..."): its tail is the mark.
# bench_boot IMAGE LAST_MARKER METRIC=TEXT...: one boot per run, killed at LAST_MARKER.
bench_boot() {
  image=$1 last=$2
  shift 2
  i=1
  while [ "$i" -le "$runs" ]; do
    TIMEOUT=${FIRMWARE_TIMEOUT:-400} MEM=384 MARKER="$last" KILL_AFTER=1 BOOT_DISK="$image-$format" \
      BOOT_FORMAT="$format" l2_run
    for pair in "$@"; do
      ms=$(first_ms "${pair#*=}")
      [ "$ms" = -1 ] && { ms=fail; missed=$((missed + 1)); }
      echo "BENCH vmm=$VMM image=$image metric=${pair%%=*} run=$i ms=$ms"
    done
    i=$((i + 1))
  done
}
bench_boot syslinux L2READY "banner=$FIRMWARE_BANNER" "loader=vmmd-syslinux:" "ready=L2READY"
bench_boot debian 'vmmd-disk ttyS0' "banner=$FIRMWARE_BANNER" "loader=GNU GRUB" "kernel=Linux version" \
  "ready=GNU/Linux 12 (bookworm)" "login=vmmd-disk ttyS0"
if [ "$missed" = 0 ]; then pass "runs=$runs,format=$format"; else fail "missed_milestones=$missed"; fi
