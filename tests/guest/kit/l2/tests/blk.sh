#!/bin/sh
# virtio-blk: every disk is seen with its size; a known pattern written to vda (qcow2) and vdb
# (raw) reads back the same after the page cache is dropped; vdc (read-only) refuses writes.
modprobe -a virtio_pci virtio_mmio virtio_blk 2>/dev/null
for d in /sys/block/vd*; do echo "BLK disk=${d##*/} sectors=$(cat $d/size) ro=$(cat $d/ro)"; done
dd if=/dev/urandom of=/tmp/pattern bs=64k count=64 2>/dev/null
want=$(md5sum </tmp/pattern | cut -d' ' -f1)
rc=0
for disk in vda vdb; do
  dd if=/tmp/pattern of=/dev/$disk bs=64k conv=fsync 2>/dev/null || { echo "BLK disk=$disk write=failed"; rc=1; }
  echo 3 >/proc/sys/vm/drop_caches
  got=$(dd if=/dev/$disk bs=64k count=64 2>/dev/null | md5sum | cut -d' ' -f1)
  echo "BLK disk=$disk pattern=$want readback=$got"
  [ "$got" = "$want" ] || rc=1
done
if dd if=/tmp/pattern of=/dev/vdc bs=4k count=1 conv=fsync 2>/dev/null; then echo "BLK disk=vdc ro_write=accepted"; rc=1; else echo "BLK disk=vdc ro_write=refused"; fi
echo "BLK md5=$want"
exit $rc
