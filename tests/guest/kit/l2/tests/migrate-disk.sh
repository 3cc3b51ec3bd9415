#!/bin/sh
# The guest of the migrate-linux-faults scenario (tests/nested): migrate.sh's workload (a memory
# round with boot id and uptime on the console every ~0.5 s) plus disk I/O that goes on through
# the migrations. 512 blocks of 16 KiB, slices of an 8 MiB pool of random bytes in tmpfs, are
# written in order to /dev/vda (block I at 16 KiB * I), each by its own dd with conv=fsync so
# that the write and a flush reach the VMM at once, one every ~0.1 s. After every 32 blocks the
# whole range written so far is read back from the disk (page cache dropped) and compared with
# the pool, and every 5 s the same once all are written:
#   MIGDISK blocks=N verify=ok|BAD boot=ID [done]
# The data is a pure function of the block number and the pool, so a guest restored from an
# older state that writes a block again writes what was there.
modprobe -a virtio_pci virtio_mmio virtio_blk 2>/dev/null
i=0
while [ $i -lt 50 ] && [ ! -b /dev/vda ]; do sleep 0.1; i=$((i + 1)); done
(
  read -r boot </proc/sys/kernel/random/boot_id
  blocks=512
  dd if=/dev/urandom of=/tmp/pool bs=16k count=$blocks 2>/dev/null
  verify() {
    echo 3 >/proc/sys/vm/drop_caches
    have=$(dd if=/dev/vda bs=16k count="$1" 2>/dev/null | md5sum | cut -d' ' -f1)
    want=$(dd if=/tmp/pool bs=16k count="$1" 2>/dev/null | md5sum | cut -d' ' -f1)
    if [ "$have" = "$want" ]; then r=ok; else r=BAD; fi
    echo "MIGDISK blocks=$1 verify=$r boot=$boot${2:+ $2}"
  }
  n=0
  while [ $n -lt $blocks ]; do
    dd if=/tmp/pool of=/dev/vda bs=16k skip=$n seek=$n count=1 conv=fsync,notrunc 2>/dev/null ||
      echo "MIGDISK write-failed block=$n boot=$boot"
    n=$((n + 1))
    [ $((n % 32)) -ne 0 ] || verify $n
    sleep 0.1
  done
  while :; do sleep 5; verify $blocks done; done
) &
exec /tests/migrate.sh
