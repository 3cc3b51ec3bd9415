# QMP system_powerdown at the Debian disk's login prompt: the ACPI power button, systemd-logind
# powers the system off and the VMM exits 0. Needs run.sh --disk debian-raw=...
TIMEOUT=${FIRMWARE_TIMEOUT:-400} MEM=384 REBOOT=no-reboot MARKER='vmmd-disk ttyS0' \
BOOT_DISK=debian-raw BOOT_FORMAT=raw SOCK=/tmp/qmp.sock TRIGGER='vmmd-disk ttyS0' \
SOCK_TEXT='{"execute":"qmp_capabilities"} {"execute":"system_powerdown"}' \
  l2_run -qmp unix:/tmp/qmp.sock,server=on,wait=off
if [ "$RUN_MARKERS" -ge 1 ] && grep -q 'reboot: Power down' "$LOG" && [ "$RUN_EXIT" = 0 ] && [ "$RUN_TIMEOUT" = 0 ]; then
  pass "login_ms=$RUN_MARKER_MS,exit_ms=$RUN_MS"
else
  fail "login=$RUN_MARKERS,exit=$RUN_EXIT,timeout=$RUN_TIMEOUT"
fi
