# Firmware boot benchmark (tests/bench/firmware/run.sh), run in L1 once per VMM kind: BENCH_RUNS
# boots of each disk image through the VMM's firmware, each stopped at its last milestone; prints
#   BENCH vmm=KIND image=IMAGE metric=METRIC run=N ms=MS|fail
# with MS the L1 milliseconds from launch to the first console line of the milestone.
runs=${BENCH_RUNS:-1} format=${BENCH_FORMAT:-raw}
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
      [ "$ms" = -1 ] && ms=fail
      echo "BENCH vmm=$VMM image=$image metric=${pair%%=*} run=$i ms=$ms"
    done
    i=$((i + 1))
  done
}
bench_boot syslinux L2READY "banner=$FIRMWARE_BANNER" "loader=vmmd-syslinux:" "ready=L2READY"
bench_boot debian 'vmmd-disk ttyS0' "banner=$FIRMWARE_BANNER" "loader=GNU GRUB" "kernel=Linux version" \
  "ready=Welcome to" "login=vmmd-disk ttyS0"
pass "runs=$runs,format=$format"
