# L2 boots by the vmlinux ELF (PVH entry) to the ready marker with -smp 1 -m 256, reports 1 CPUs and ~256 MiB, powers off.
KERNEL=$L2_VMLINUX SMP=1 MEM=256 APPEND=l2.action=poweroff l2_run
why=$(check_ready 1 256)
[ -z "$why" ] && [ "$RUN_EXIT" = 0 ] && pass "ready_ms=$RUN_MARKER_MS,exit_ms=$RUN_MS,cpus=$(field cpus "$READY"),memtotal_kb=$(field memtotal_kb "$READY")" ||
  fail "${why:-exit=$RUN_EXIT}"
