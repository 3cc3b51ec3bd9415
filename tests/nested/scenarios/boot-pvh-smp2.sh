# L2 boots by the vmlinux ELF (PVH entry) to the ready marker with -smp 2 -m 384, reports 2 CPUs and ~384 MiB, powers off.
KERNEL=$L2_VMLINUX SMP=2 MEM=384 APPEND=l2.action=poweroff l2_run
why=$(check_ready 2 384)
[ -z "$why" ] && [ "$RUN_EXIT" = 0 ] && pass "ready_ms=$RUN_MARKER_MS,exit_ms=$RUN_MS,cpus=$(field cpus "$READY"),memtotal_kb=$(field memtotal_kb "$READY")" ||
  fail "${why:-exit=$RUN_EXIT}"
