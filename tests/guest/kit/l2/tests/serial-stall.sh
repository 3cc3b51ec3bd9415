#!/bin/sh
# virtio-serial back-pressure: once the host end of port test.0 says hello, write 16 MiB of
# zeros to it. The host reads nothing for a while: our writer must block meanwhile (the VMM holds
# the guest back instead of buffering), so "STALL done" comes after the host resumes.
. /tests/lib/virtio-port.sh
find_port test.0 || { echo "STALL no port named test.0"; exit 1; }
port=$PORT
exec 3<>"$port"
echo "STALL-WAIT $port"
read -r hello <&3
echo "STALL writing after '$hello'"
head -c 16777216 /dev/zero >&3
echo "STALL done"
exec 3>&-
