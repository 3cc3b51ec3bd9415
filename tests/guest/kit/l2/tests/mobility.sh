#!/bin/sh
# The guest of the nested vmmd-migrate scenario (tests/nested): the migrate workload
# (migrate.sh: md5-checked tmpfs copies, one console line per round with boot id and uptime, a
# TCP stream to 10.0.2.1:7000) with the real qemu-ga beside it, so that vmmd's agent commands
# (vmctl exec) reach the guest on whichever vmmd runs it, and virtio_blk for the scenario's data
# disk (mounted through the agent). 8 MiB per round (MIGMEM_MB) to keep each of the scenario's
# ten moves short.
. /tests/lib/virtio-port.sh
modprobe virtio_blk 2>/dev/null
if find_port org.qemu.guest_agent.0; then
  mkdir -p /run/qga
  qemu-ga -m virtio-serial -p "$PORT" -t /run/qga -l /run/qga/qemu-ga.log &
else
  echo "MOBILITY no agent port"
fi
MIGMEM_MB=8 exec /tests/migrate.sh
