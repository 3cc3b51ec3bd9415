# virtio-rng: the guest's driver binds and /dev/hwrng yields 4 KiB (l2/tests/hwrng.sh).
rng=$(virtio_dev virtio-rng)  # microvm's virtio devices sit on virtio-mmio
KERNEL=$L2_BZIMAGE SMP=1 MEM=256 APPEND="l2.test=hwrng" TIMEOUT=60 l2_run -device $rng
bytes=$(grep -m1 -o 'HWRNG bytes=[0-9]*' "$LOG" | cut -d= -f2)
grep -q "L2TEST name=hwrng rc=0" "$LOG" && pass "bytes=$bytes" || fail "hwrng(bytes=${bytes:-none})"
