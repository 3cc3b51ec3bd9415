#!/bin/sh
# virtio-serial back-pressure: once the host end of port test.0 says hello, write 16 MiB of
# zeros to it. The host reads nothing for a while: our writer must block meanwhile (the VMM holds
# the guest back instead of buffering), so "STALL done" comes after the host resumes.
modprobe -a virtio_pci virtio_mmio virtio_console 2>/dev/null
port= i=0
while [ -z "$port" ] && [ $i -lt 50 ]; do
  for p in /sys/class/virtio-ports/*; do
    [ "$(cat "$p/name" 2>/dev/null)" = test.0 ] && port=/dev/${p##*/}
  done
  [ -n "$port" ] || { sleep 0.1; i=$((i + 1)); }
done
[ -n "$port" ] || { echo "STALL no port named test.0"; exit 1; }
exec 3<>"$port"
echo "STALL-WAIT $port"
read -r hello <&3
echo "STALL writing after '$hello'"
head -c 16777216 /dev/zero >&3
echo "STALL done"
exec 3>&-
