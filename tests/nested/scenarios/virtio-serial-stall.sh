# virtio-serial back-pressure: the host end of a named port connects, says hello, then reads
# nothing for 8 s while the guest writes 16 MiB to it (l2/tests/serial-stall.sh). The VMM must
# hold the guest's writer back rather than buffer: its RSS stays flat through the stall and the
# guest finishes only after the host resumes; then all 16 MiB arrive.
rm -f /tmp/stall-recv
MEM=256 APPEND="l2.test=serial-stall" TIMEOUT=240 SOCK=/tmp/stall.sock TRIGGER=STALL-WAIT SOCK_TEXT=hello \
SOCK_RECV=/tmp/stall-recv SOCK_STALL=8 \
  l2_run -chardev socket,id=ser0,path=/tmp/stall.sock,server=on,wait=off -device "$(virtio_serial_dev)" \
    -device virtserialport,chardev=ser0,name=test.0
stall=$(grep -m1 'SOCK-STALL' "$LOG")
resume=$(grep -m1 'SOCK-RESUME' "$LOG")
rss0=$(field rss_kb "$stall") rss1=$(field rss_kb "$resume")
resume_ms=$(echo "$resume" | cut -d' ' -f1 | cut -d. -f1)
done_ms=$(grep -m1 'STALL done' "$LOG" | cut -d' ' -f1 | cut -d. -f1)
bytes=$(wc -c </tmp/stall-recv)
sum=$(md5sum </tmp/stall-recv | cut -d' ' -f1)
zeros=$(head -c 16777216 /dev/zero | md5sum | cut -d' ' -f1)
growth=$(( ${rss1:-0} - ${rss0:-0} ))
if [ -n "$rss0" ] && [ -n "$rss1" ] && [ "$growth" -lt 4096 ] && [ -n "$done_ms" ] && [ "$done_ms" -gt "$resume_ms" ] &&
   [ "$bytes" = 16777216 ] && [ "$sum" = "$zeros" ] && grep -q 'L2TEST name=serial-stall rc=0' "$LOG"; then
  pass "rss_growth_kb=$growth,writer_done_after_resume_ms=$((done_ms - resume_ms)),bytes=$bytes"
else
  fail "rss0=$rss0,rss1=$rss1,resume_ms=$resume_ms,done_ms=$done_ms,bytes=$bytes,md5=$sum"
fi
rm -f /tmp/stall-recv
