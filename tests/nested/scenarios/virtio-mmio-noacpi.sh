# virtio-mmio without ACPI (-machine acpi=off on a microvm kind): the VMM names the transport on
# the kernel command line (virtio_mmio.device=512@0xfeb00000:5, as QEMU's microvm does), the
# guest's virtio_mmio driver finds the virtio-rng device there and /dev/hwrng yields 4 KiB. A guest
# without ACPI cannot power off, so QMP quit ends the run once the test has reported.
l2_vmm || return
case "$L2_MACHINE" in
  microvm*) ;;
  *) fail "needs-a-microvm-machine(machine=$L2_MACHINE)"; return ;;
esac
SOCK=/tmp/qmp.sock TRIGGER="L2TEST name=hwrng" \
SOCK_TEXT='{"execute":"qmp_capabilities"} {"execute":"quit"}' \
KERNEL=$L2_BZIMAGE SMP=1 MEM=256 APPEND="l2.test=hwrng" TIMEOUT=60 \
  l2_run -machine acpi=off -device "$(virtio_dev virtio-rng)" -qmp unix:/tmp/qmp.sock,server=on,wait=off
bytes=$(grep -m1 -o 'HWRNG bytes=[0-9]*' "$LOG" | cut -d= -f2)
if grep -q "L2TEST name=hwrng rc=0" "$LOG" && [ "$RUN_TIMEOUT" = 0 ]; then
  pass "bytes=$bytes,exit_ms=$RUN_MS"
else
  fail "hwrng(bytes=${bytes:-none},timeout=$RUN_TIMEOUT)"
fi
