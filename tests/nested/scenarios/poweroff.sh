# The guest powers off (poweroff -f right after the ready marker): the VMM exits with status 0.
APPEND=l2.action=poweroff l2_run
if [ "$RUN_TIMEOUT" = 1 ]; then fail "vmm-did-not-exit(markers=$RUN_MARKERS)"
elif [ "$RUN_EXIT" != 0 ]; then fail "exit=$RUN_EXIT"
elif [ "$RUN_MARKERS" != 1 ]; then fail "markers=$RUN_MARKERS"
else pass "exit=0,exit_ms=$RUN_MS"
fi
