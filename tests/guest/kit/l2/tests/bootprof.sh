#!/bin/sh
# Boot profile, the guest side (tests/bench/boot/l1/boot-profile.sh; boot with initcall_debug and
# a log_buf_len that holds it). Says BOOTPROF-SNAP at once (L1 reads the exit counters there,
# before this script's own console output adds exits), waits 2 s, then prints the kernel's log:
# the 30 slowest initcalls as "BOOTPROF initcall usecs=N fn=NAME" and every other line as
# "BOOTPROF dmesg [  t] text".
echo "BOOTPROF-SNAP"
sleep 2
dmesg | sed -n 's/.*initcall \([^ ]*\) returned .* after \([0-9]*\) usecs.*/\2 \1/p' | sort -rn | head -n 30 |
  while read -r usecs fn; do echo "BOOTPROF initcall usecs=$usecs fn=$fn"; done
dmesg | grep -v -e 'calling  ' -e '] initcall ' | sed 's/^/BOOTPROF dmesg /'
echo "BOOTPROF-END"
