#!/bin/sh
# virtio-serial bulk: 16 MiB each way at the same time through the port named test.0. The host
# side (L1's l1run -S/-R) connects at SERIAL-GO and streams its file while it keeps what we send;
# each side prints or computes md5s so that L1 compares both directions.
size=16777216
. /tests/lib/virtio-port.sh
find_port test.0 || { echo "SERIAL no port named test.0"; exit 1; }
port=$PORT
head -c $size /dev/urandom >/tmp/g2h
echo "SERIAL g2h bytes=$(wc -c </tmp/g2h) md5=$(md5sum </tmp/g2h | cut -d' ' -f1)"
exec 3<>"$port"
echo "SERIAL-GO $port"
head -c $size <&3 >/tmp/h2g &
reader=$!
# The host is connected once its first bytes arrived; only then send (a port without a host
# end discards what the guest writes).
i=0
while [ ! -s /tmp/h2g ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i + 1)); done
cat /tmp/g2h >&3
wait $reader
echo "SERIAL h2g bytes=$(wc -c </tmp/h2g) md5=$(md5sum </tmp/h2g | cut -d' ' -f1)"
exec 3>&-
