#!/bin/sh
# Boot trace, the guest side (tests/bench/boot/l1/boot-trace.sh; boot with trace_event=... so the
# kernel records initcall, scheduler and workqueue events from its first initcalls on). Prints
# the kernel's trace buffer up to userspace, one short line an event ("BOOTTRACE <s> <task-pid>
# <event> <details>"; a 115200-baud console is slow, so the CPU number, flags and the fields that
# repeat are left out), then BOOTTRACE-END.
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
echo 0 >/sys/kernel/tracing/tracing_on
sed -n '/^#/!p' /sys/kernel/tracing/trace |
  sed -e 's/^ *\([^ ]*\) *\[[0-9]*\] [^ ]* *\([0-9.]*\): /BOOTTRACE \2 \1 /' \
    -e 's/prev_comm=[^ ]* prev_pid=[0-9]* prev_prio=[0-9]* prev_state=\([^ ]*\) ==> next_comm=\([^ ]*\) next_pid=\([0-9]*\) .*/\1 \2-\3/' \
    -e 's/work struct [0-9a-f]*: function //' -e 's/+0x[0-9a-f]*\/0x[0-9a-f]*//' -e 's/ prio=[0-9]* target_cpu=[0-9]*//'
echo "BOOTTRACE-END"
