# The guest reboots (reboot -f after the ready marker) without -no-reboot: it comes up again
# (a second ready marker with a new boot id); the scenario stops the VMM after that.
REBOOT=reboot KILL_AFTER=2 APPEND=l2.action=reboot l2_run
b1=$(grep ' L2READY ' "$LOG" | sed -n '1s/.*boot=//p'); b2=$(grep ' L2READY ' "$LOG" | sed -n '2s/.*boot=//p')
if [ "$RUN_MARKERS" -ge 2 ] && [ -n "$b2" ] && [ "$b1" != "$b2" ]; then
  pass "booted_twice,second_ready_ms=$(grep ' L2READY ' "$LOG" | sed -n '2s/ .*//p')"
else
  fail "markers=$RUN_MARKERS,exit=$RUN_EXIT,timeout=$RUN_TIMEOUT"
fi
