# Where a VMM's start goes before the guest runs, run in L1: for each kernel (PVH vmlinux, bzImage)
# one L2 boot under vmm's microvm and one under QEMU's (-M microvm,rtc=on, the same argv), each VMM
# under `strace -tt -f` (file opens, reads, mmaps, ioctls, thread creation). Prints "STLOAD KIND
# KERNEL ..." lines: the number of KVM_RUN calls, launch -> userspace and the guest's uptime, then
# the trace up to the third KVM_RUN (libraries' own mmaps left out, and the KVM_CAP_NESTED_STATE
# lines, which tests/nested/run.sh would echo as its own). Needs strace carried in:
#   tests/nested/run.sh --vmm build/vmm/vmm --bin "$(command -v strace)" \
#     --scenario-dir tests/bench/boot/l1 boot-strace@vmm
trace='execve,openat,pread64,read,ioctl,mmap,clone3,clone,madvise'
printf '#!/bin/sh\nexec /opt/vmm/bin/strace -tt -f -e trace=%s -o /tmp/st.txt /opt/vmm/bin/vmm "$@"\n' "$trace" >/opt/vmm/bin/vmm-strace
printf '#!/bin/sh\nexec /opt/vmm/bin/strace -tt -f -e trace=%s -o /tmp/st.txt qemu-system-x86_64 "$@"\n' "$trace" >/opt/vmm/bin/qemu-strace
chmod +x /opt/vmm/bin/vmm-strace /opt/vmm/bin/qemu-strace
bad=0
for kernel in pvh bzImage; do
  l2_guest "$kernel"
  # vmm-microvm:NAME runs /opt/vmm/bin/NAME with -M microvm,rtc=on (tests/nested/l1/lib.sh)
  for VMM in vmm-microvm:vmm-strace vmm-microvm:qemu-strace; do
    rm -f /tmp/st.txt
    KILL_AFTER=1 TIMEOUT=120 l2_run
    [ "$RUN_MARKERS" -ge 1 ] || bad=$((bad + 1))
    echo "STLOAD $VMM $kernel kvm_runs=$(grep -c KVM_RUN /tmp/st.txt) ready_ms=$RUN_MARKER_MS uptime=$(field uptime "$READY")"
    grep -v ENOENT /tmp/st.txt | grep -v 'NESTED_STATE\|MAP_DENYWRITE\|mmap(NULL, [0-9]*, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)' |
      awk '/KVM_RUN/ { n++ } n <= 3' | cut -c1-160 | sed "s/^/STLOAD $VMM $kernel /"
  done
done
VMM=vmm-microvm
[ "$bad" = 0 ] && pass "traced" || fail "failed_boots=$bad"
