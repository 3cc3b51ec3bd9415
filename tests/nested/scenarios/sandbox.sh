# The VMM confined by seccomp (-sandbox on, QEMU's option: every VMM kind runs it): the
# virtio-net scenario (boot to userspace, ping, 2 MiB each way over the tap) with a raw disk
# attached, which the guest kernel reads through the I/O pool at boot. A violation would kill
# the VMM with a "seccomp" line in the log, and the run fails.
dd if=/dev/zero of=/tmp/sandbox.raw bs=1M count=8 2>/dev/null
NET_EXTRA="-sandbox on -drive file=/tmp/sandbox.raw,format=raw,if=virtio"
. /nested/scenarios/virtio-net.sh
rm -f /tmp/sandbox.raw
