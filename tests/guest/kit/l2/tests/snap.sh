#!/bin/sh
# Counter snapshot point for the boot benchmark (tests/bench/boot): says L2SNAP right after
# userspace started (L1 asks the VMM's QMP for query-stats there), then idles 1 s so that the
# reply is out before the guest powers off. The line carries the kernel's kvm-clock reading when
# its sched clock started: nanoseconds since the VMM created the VM (KVM starts the kvm-clock at
# KVM_CREATE_VM; the kernel prints it as "cycles"), which splits launch -> kernel into the VMM's
# start and what runs after VM creation (loading, firmware, decompressor, early kernel setup).
offset=$(dmesg | sed -n 's/.*kvm-clock: using sched offset of \([0-9]*\) cycles.*/\1/p' | head -n 1)
echo "L2SNAP sched_offset_ns=${offset:-none}"
sleep 1
