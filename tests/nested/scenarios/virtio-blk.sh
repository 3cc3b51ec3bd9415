# virtio-blk on a qcow2 and a raw disk made in L1 by the real qemu-img (carried in with
# --bin qemu-img) and a read-only raw disk: the guest sees each size, writes a 4 MiB pattern and
# reads it back (l2/tests/blk.sh); the host then finds the same bytes in both images, and
# qemu-img check finds the qcow2 clean.
command -v qemu-img >/dev/null || { fail "qemu-img-missing(run with --bin qemu-img)"; return; }
qemu-img create -q -f qcow2 /tmp/d.qcow2 64M
dd if=/dev/zero of=/tmp/d.raw bs=1M count=32 2>/dev/null
dd if=/dev/zero of=/tmp/ro.raw bs=1M count=8 2>/dev/null
KERNEL=$L2_BZIMAGE SMP=1 MEM=256 APPEND="l2.test=blk" TIMEOUT=80 l2_run \
  -drive file=/tmp/d.qcow2,format=qcow2,if=virtio,id=disk0 -drive file=/tmp/d.raw,format=raw,if=virtio,cache=none \
  -drive file=/tmp/ro.raw,format=raw,if=virtio,readonly=on
want=$(grep -m1 -o 'BLK md5=[0-9a-f]*' "$LOG" | cut -d= -f2)
raw=$(head -c 4194304 /tmp/d.raw | md5sum | cut -d' ' -f1)
qemu-img convert -f qcow2 -O raw /tmp/d.qcow2 /tmp/q.raw
qcow=$(head -c 4194304 /tmp/q.raw | md5sum | cut -d' ' -f1)
qemu-img check -q /tmp/d.qcow2 && clean=yes || clean=no
rm -f /tmp/d.qcow2 /tmp/d.raw /tmp/ro.raw /tmp/q.raw
if grep -q "L2TEST name=blk rc=0" "$LOG" && [ -n "$want" ] && [ "$raw" = "$want" ] && [ "$qcow" = "$want" ] && [ $clean = yes ]; then
  pass "md5=$want,check=clean,ro=refused"
else
  fail "guest=$(grep -c 'readback' "$LOG")readbacks,raw=$raw,qcow2=$qcow,want=${want:-none},clean=$clean"
fi
