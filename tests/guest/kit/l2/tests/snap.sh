#!/bin/sh
# Counter snapshot point for the boot benchmark (tests/bench/boot): says L2SNAP right after
# userspace started (L1 asks the VMM's QMP for query-stats there), then idles 1 s so that the
# reply is out before the guest powers off.
echo "L2SNAP"
sleep 1
