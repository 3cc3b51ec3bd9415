# ACPI power button: once the guest has started acpid (L2UP), QMP system_powerdown; the guest's
# acpid powers it off and the VMM exits 0. Uses the VMM's -qmp unix socket.
SOCK=/tmp/qmp.sock TRIGGER=L2UP \
SOCK_TEXT='{"execute":"qmp_capabilities"} {"execute":"system_powerdown"}' \
  l2_run -qmp unix:/tmp/qmp.sock,server=on,wait=off
if grep -q 'L2: power button' "$LOG" && [ "$RUN_EXIT" = 0 ] && [ "$RUN_TIMEOUT" = 0 ]; then
  pass "exit=0,exit_ms=$RUN_MS"
else
  fail "button_seen=$(grep -c 'L2: power button' "$LOG"),exit=$RUN_EXIT,timeout=$RUN_TIMEOUT"
fi
