#!/bin/sh
# virtio-rng: the device is found (PCI or virtio-mmio), the driver binds, /dev/hwrng yields 4 KiB.
modprobe -a virtio_pci virtio_mmio virtio-rng 2>/dev/null
echo "HWRNG current=$(cat /sys/class/misc/hw_random/rng_current 2>/dev/null)"
n=$(head -c 4096 /dev/hwrng | wc -c)
echo "HWRNG bytes=$n distinct=$(head -c 4096 /dev/hwrng | od -An -tx1 -v | tr ' ' '\n' | sort -u | wc -l)"
[ "$n" = 4096 ]
