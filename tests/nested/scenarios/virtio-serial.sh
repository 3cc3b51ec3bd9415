# virtio-serial bulk transfer: a named port (virtserialport name=test.0 on a unix-socket chardev)
# carries 16 MiB from L1 to the guest and 16 MiB from the guest to L1 at the same time; both
# arrive whole (sizes and md5s match). l2/tests/serial-16m.sh is the guest side.
head -c 16777216 /dev/urandom >/tmp/serial-h2g
want_h2g=$(md5sum </tmp/serial-h2g | cut -d' ' -f1)
rm -f /tmp/serial-g2h
MEM=512 APPEND="l2.test=serial-16m" TIMEOUT=300 SOCK=/tmp/serial.sock TRIGGER=SERIAL-GO \
SOCK_SEND=/tmp/serial-h2g SOCK_RECV=/tmp/serial-g2h \
  l2_run -chardev socket,id=ser0,path=/tmp/serial.sock,server=on,wait=off -device "$(virtio_serial_dev)" \
    -device virtserialport,chardev=ser0,name=test.0
want_g2h=$(grep -m1 -o 'SERIAL g2h bytes=16777216 md5=[0-9a-f]*' "$LOG" | sed 's/.*md5=//')
got_g2h=$(md5sum </tmp/serial-g2h | cut -d' ' -f1)
bytes_g2h=$(wc -c </tmp/serial-g2h)
got_h2g=$(grep -m1 -o 'SERIAL h2g bytes=16777216 md5=[0-9a-f]*' "$LOG" | sed 's/.*md5=//')
go_ms=$(grep -m1 'SERIAL-GO' "$LOG" | cut -d' ' -f1)
done_ms=$(grep -m1 'SERIAL h2g' "$LOG" | cut -d' ' -f1)
if [ -n "$want_g2h" ] && [ "$got_g2h" = "$want_g2h" ] && [ "$got_h2g" = "$want_h2g" ] &&
   grep -q 'L2TEST name=serial-16m rc=0' "$LOG"; then
  pass "g2h=16MiB,h2g=16MiB,md5=ok,transfer_ms=$(echo "$done_ms $go_ms" | awk '{printf "%d", $1 - $2}')"
else
  fail "g2h_bytes=$bytes_g2h,g2h_md5=$got_g2h,want=$want_g2h,h2g_md5=${got_h2g:-none},want=$want_h2g"
fi
rm -f /tmp/serial-h2g /tmp/serial-g2h
