# Self-test of run.sh's stall watchdog (CTest nested_watchdog): on L1's first boot this scenario
# stops L1's heartbeat and waits, so L1's console falls silent as in a stuck L1; run.sh must kill
# that L1 and run this scenario again in a fresh one (NESTED_L1_BOOT=2), where it passes.
if [ "${NESTED_L1_BOOT:-1}" = 1 ]; then
  kill -STOP "$(cat /tmp/l1-heartbeat.pid)"
  sleep 600
fi
pass "boot=$NESTED_L1_BOOT"
