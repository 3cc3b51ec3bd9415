# Device benchmark (a), in L1 (tests/bench/devices/nested.sh; not in the CTest scenario list):
# the guest writes and reads DEVBENCH_MIB MiB with O_DIRECT dd on a raw and a qcow2 disk and sends
# DEVBENCH_TCP_MIB MiB over TCP to L1 (l2/tests/devbench.sh). The images live in L1's RAM (its root is an
# initramfs), so the drives use the default cache mode: QEMU refuses cache=none there.
command -v qemu-img >/dev/null || { fail "qemu-img-missing(run with --bin qemu-img)"; return; }
mib=${DEVBENCH_MIB:-64}
tcp_mib=${DEVBENCH_TCP_MIB:-16}  # the nested tap path moves well under 1 MiB/s
qemu-img create -q -f qcow2 /tmp/b.qcow2 $((mib + 16))M
qemu-img create -q -f raw /tmp/b.raw $((mib + 16))M
nic=$(virtio_dev virtio-net)  # virtio-net-device on a microvm machine (QEMU's or vmm's)
case "$nic" in
  *-pci) nic=$nic,romfile= ;;  # L1 carries no option ROMs; vmm accepts and ignores romfile
esac
tap_up_when_created tap0 10.0.2.1/24
# busybox's small nc quits when its stdin ends: the receiving end gets a stdin that stays open.
(sleep 600 | nc -l -p 7002 >/dev/null) &
receiver=$!
KERNEL=$L2_BZIMAGE SMP=1 MEM=256 APPEND="l2.test=devbench l2.mib=$mib l2.tcp_mib=$tcp_mib" TIMEOUT=${DEVBENCH_TIMEOUT:-500} l2_run \
  -drive file=/tmp/b.raw,format=raw,if=virtio -drive file=/tmp/b.qcow2,format=qcow2,if=virtio \
  -netdev tap,id=net0,ifname=tap0,script=no,downscript=no -device $nic,netdev=net0
# Its children first: once the subshell is gone they belong to init and pkill -P misses them.
pkill -P $receiver 2>/dev/null
kill $receiver 2>/dev/null
qemu-img check -q /tmp/b.qcow2 && clean=yes || clean=no
rm -f /tmp/b.qcow2 /tmp/b.raw
# MiB/s per measurement: raw-write=12.3,... (what=vda is raw, vdb qcow2)
rates=$(grep -o 'DEVBENCH what=[a-z-]* mib=[0-9]* ms=[0-9]*' "$LOG" | awk '{
  split($2, w, "="); split($3, m, "="); split($4, t, "=");
  name = w[2]; sub(/^vda/, "raw", name); sub(/^vdb/, "qcow2", name);
  rate = (t[2] > 0) ? m[2] * 1000 / t[2] : 0
  printf "%s%s=%.1f", sep, name, rate; sep = ","
}')
if grep -q "L2TEST name=devbench rc=0" "$LOG" && ! grep -q "DEVBENCH.*failed" "$LOG" && [ $clean = yes ]; then
  pass "mib=$mib,tcp_mib=$tcp_mib,$rates"
else
  fail "mib=$mib,clean=$clean,$(grep -m1 'DEVBENCH.*failed' "$LOG" | tr ' ' _),$rates"
fi
