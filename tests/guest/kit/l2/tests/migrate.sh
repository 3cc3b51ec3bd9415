#!/bin/sh
# The guest of the migrate-linux scenario (tests/nested): a workload to move between VMMs.
#   - memory: 16 MiB of random bytes in tmpfs (/tmp), copied afresh every round (dirtying 16 MiB
#     of page cache per round) and the copy's md5 checked against the md5 taken at the start;
#     one console line per round: "MIGMEM round=N ok|MISMATCH bad=B boot=ID uptime=S"
#   - TCP: a connection to L1 (10.0.2.1:7000, eth0 set up by vmmd.net=) carrying "tcp N" lines,
#     N counting up, one every 0.2 s: the L1 side sees whether the stream went on without a gap.
# MIGMEM_MB (environment, default 16) sets the size of the copy. Runs until the VMM is stopped
# from outside.
read -r boot </proc/sys/kernel/random/boot_id
dd if=/dev/urandom of=/tmp/ref bs=1M count="${MIGMEM_MB:-16}" 2>/dev/null
want=$(md5sum </tmp/ref | cut -d' ' -f1)
echo "MIGMEM start md5=$want boot=$boot"
(
  i=0
  while :; do echo "tcp $i"; i=$((i + 1)); sleep 0.2; done
) | nc 10.0.2.1 7000 &
round=0 bad=0
while :; do
  round=$((round + 1))
  cp /tmp/ref /tmp/copy
  if [ "$(md5sum </tmp/copy | cut -d' ' -f1)" = "$want" ]; then r=ok; else r=MISMATCH; bad=$((bad + 1)); fi
  read -r up _ </proc/uptime
  echo "MIGMEM round=$round $r bad=$bad boot=$boot uptime=$up"
  sleep 0.3
done
