#!/usr/bin/env bash
# The nested tier: boots L1 (Debian's cloud kernel under QEMU TCG with an emulated SVM CPU, KVM
# loaded) once and runs the named scenarios in it, in order, against each L2 VMM given.
#
#   tests/nested/run.sh [--vmm qemu-microvm|qemu-pc|PATH]... [options] SCENARIO[@KIND]...|all
#
# Every SCENARIO runs against every --vmm; SCENARIO@KIND (KIND: qemu-microvm, qemu-pc, vmm) runs
# against that one only. Runs happen in the order given, VMM by VMM, in one L1 boot.
#
#   --vmm KIND      L2 VMM (repeatable; default qemu-microvm). PATH is a vmm binary (e.g.
#                   build/vmm/vmm), carried into L1 with its libraries and run with -M
#                   $NESTED_VMM_MACHINE (default pc).
#   --scenario-dir D  more scenario scripts (NAME.sh) to ship into L1 (e.g. the boot benchmark)
#   --env VAR=VALUE   a variable for the scenarios in L1 (repeatable)
#   --bin PATH      another program for the scenarios (e.g. vmmd, vmctl), carried into L1 as
#                   /opt/vmm/bin/NAME with its libraries (repeatable)
#   --file PATH=DEST  a data file for the scenarios (repeatable), at DEST in L1's root (e.g. another
#                   L2 kernel for the boot benchmark: --file build/bzImage=/l2/min/bzImage)
#   --disk NAME=PATH  a disk image for the scenarios (repeatable), attached to L1 as a virtio
#                   disk (/dev/vda, vdb... in order; `disk_dev NAME` in l1/lib.sh) through a
#                   throw-away qcow2 overlay 512 MiB larger than the image, so that nothing L2
#                   writes reaches PATH and a qcow2 image read from the device has room to grow
#   --log FILE      keep L1's whole console there (default: $VMMD_CACHE/nested/last.log)
#   --timeout S     bound on the whole L1 run (default: 60 + 120 per scenario run)
#   -v, --verbose   also print every L2 console line (NESTED-LOG ...)
#   --list          list the scenarios and exit
#
# Prints L1's result lines, "NESTED scenario=NAME vmm=KIND result=pass|fail detail=...", and
# exits 0 only if every scenario run passed (or failed in a way the scenario documents as a known
# failure of that VMM kind: result=xfail). Scenarios live in tests/nested/scenarios/NAME.sh (see
# tests/nested/l1/lib.sh for what they can use). Everything built goes under $VMMD_CACHE.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
source "$top/tests/guest/kit/lib.sh"

vmms=() bins=() files=() disks=() scenarios=() scen_dirs=("$here/scenarios") envs=() log="" timeout=""
while [ $# -gt 0 ]; do
  case "$1" in
    --vmm) vmms+=("$2"); shift 2 ;;
    --scenario-dir) scen_dirs+=("$(cd "$2" && pwd)"); shift 2 ;;
    --env) envs+=("$2"); shift 2 ;;
    --bin) bins+=("$2"); shift 2 ;;
    --file) files+=("$2"); shift 2 ;;
    --disk) disks+=("$2"); shift 2 ;;
    --log) log=$2; shift 2 ;;
    --timeout) timeout=$2; shift 2 ;;
    -v|--verbose) envs+=(NESTED_VERBOSE=1); shift ;;
    --list) for d in "${scen_dirs[@]}"; do ls "$d" | sed -n 's/\.sh$//p'; done; exit 0 ;;
    -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "run.sh: unknown option $1" >&2; exit 2 ;;
    *) scenarios+=("$1"); shift ;;
  esac
done
[ ${#vmms[@]} -gt 0 ] || vmms=(qemu-microvm)
if [ ${#scenarios[@]} -eq 0 ] || [ "${scenarios[0]}" = all ]; then
  mapfile -t scenarios < <(ls "$here/scenarios" | sed -n 's/\.sh$//p')  # every scenario
  # ... but the firmware-* ones only with their disks (tests/nested/firmware.sh attaches them)
  [ ${#disks[@]} -gt 0 ] || mapfile -t scenarios < <(printf '%s\n' "${scenarios[@]}" | grep -v '^firmware-')
fi
[ -c /dev/null ] && [ -x "$(command -v qemu-system-x86_64)" ] || kit_die "qemu-system-x86_64 is missing (scripts/install-deps.sh)"

mkdir -p "$VMMD_CACHE/nested"
log=${log:-$VMMD_CACHE/nested/last.log}
KIT_QUIET=1 "$top/tests/guest/kit/build.sh" >/dev/null
source "$VMMD_CACHE/kit/$(kit_kernel_package | sed 's/^linux-image-//')/env"

# Cached files are written under a name of this run's own and renamed into place: two nested
# entries may run at once (ctest -j2) and both build a missing one.
# l1run: the static helper that runs and times L2 in L1.
l1run="$VMMD_CACHE/nested/l1run-$(kit_hash "$here/l1/l1run.c" "$here/l1/connect_unix.h")"
if [ ! -x "$l1run" ]; then
  gcc -static -O2 -Wall -Wextra -Werror -o "$l1run.$$.tmp" "$here/l1/l1run.c" && mv "$l1run.$$.tmp" "$l1run"
fi
# unixcat: a unix-socket client for the scenarios' QMP conversations (busybox nc has none).
unixcat="$VMMD_CACHE/nested/unixcat-$(kit_hash "$here/l1/unixcat.c" "$here/l1/connect_unix.h")"
if [ ! -x "$unixcat" ]; then
  gcc -static -O2 -Wall -Wextra -Werror -o "$unixcat.$$.tmp" "$here/l1/unixcat.c" && mv "$unixcat.$$.tmp" "$unixcat"
fi

# L1 base (cached): busybox, kvm modules, the network modules, the host's QEMU with its libraries
# and firmware.
L1_NET_MODULES="bridge veth nf_tables nft_chain_nat nft_masq nft_nat nft_ct nft_reject_inet nft_fib_inet nft_limit"
qemu_bin=$(command -v qemu-system-x86_64)
key=$(printf '%s\n' "$KIT_KVER" "$(sha256sum "$(command -v busybox)" "$qemu_bin" "$here/run.sh" "$top/tests/guest/kit/lib.sh")" | sha256sum | cut -c1-16)
base="$VMMD_CACHE/nested/l1-base-$key.cpio"
if [ ! -f "$base" ]; then
  kit_log "building L1 base initramfs"
  rm -f "$VMMD_CACHE"/nested/l1-base-*.cpio
  stage=$(mktemp -d)
  kit_busybox "$stage"
  for m in virt/lib/irqbypass arch/x86/kvm/kvm arch/x86/kvm/kvm-amd drivers/net/tun drivers/virtio/virtio_ring \
           drivers/virtio/virtio drivers/virtio/virtio_pci_modern_dev drivers/virtio/virtio_pci_legacy_dev \
           drivers/virtio/virtio_pci drivers/block/virtio_blk; do
    install -D -m 0644 "$KIT_ROOT/lib/modules/$KIT_KVER/kernel/$m.ko" "$stage/l1/modules/${m##*/}.ko"
  done
  # Networking for the network scenarios and benchmark (bridges, veth pairs into namespaces,
  # nftables NAT as vmmd sets it up): with their dependencies under /lib/modules, depmod'ed, so
  # L1's modprobe loads them (`l1_net_modules` in l1/lib.sh) and the kernel's own requests
  # (rtnl-link-bridge, nft-expr-*) find busybox's modprobe at /sbin/modprobe.
  for ko in $(modprobe -d "$KIT_ROOT" -S "$KIT_KVER" --show-depends -a $L1_NET_MODULES | awk '$1 == "insmod" {print $2}' | sort -u); do
    install -D -m 0644 "$ko" "$stage/${ko#"$KIT_ROOT/"}"
  done
  cp "$KIT_ROOT/lib/modules/$KIT_KVER/modules.order" "$KIT_ROOT/lib/modules/$KIT_KVER/modules.builtin"* "$stage/lib/modules/$KIT_KVER/"
  depmod -b "$stage" "$KIT_KVER"
  ln -s ../bin/busybox "$stage/sbin/modprobe"
  kit_copy_elf "$stage" "$qemu_bin" /usr/bin/qemu-system-x86_64
  for f in bios-256k.bin bios.bin bios-microvm.bin qboot.rom kvmvapic.bin linuxboot.bin linuxboot_dma.bin \
           pvh.bin multiboot.bin multiboot_dma.bin; do
    for d in /usr/share/qemu /usr/share/seabios; do
      [ -e "$d/$f" ] && install -D -m 0644 "$(readlink -f "$d/$f")" "$stage$d/$f"
    done
  done
  python3 "$top/tests/guest/kit/mkcpio.py" "$base.$$.tmp" "$stage" --node /dev/console:600:c:5:1 --node /dev/null:666:c:1:3
  mv "$base.$$.tmp" "$base"
  rm -rf "$stage"
fi

# L2 kernels and initramfs (cached per kit build).
l2="$VMMD_CACHE/nested/l2-$(cat "$KIT_DIR/initramfs.key").cpio"
if [ ! -f "$l2" ]; then
  rm -f "$VMMD_CACHE"/nested/l2-*.cpio
  python3 "$top/tests/guest/kit/mkcpio.py" "$l2.$$.tmp" --file /l2/bzImage="$KIT_BZIMAGE" \
    --file /l2/vmlinux="$KIT_VMLINUX" --file /l2/initramfs.cpio="$KIT_INITRAMFS"
  mv "$l2.$$.tmp" "$l2"
fi

# The fresh part (rebuilt every run, small): /init, scenarios, the plan, l1run, vmm binaries.
work=$(mktemp -d)
l1_pid=""
# A run stopped from outside (ctest's timeout) takes its L1 with it.
trap '[ -z "$l1_pid" ] || kill "$l1_pid" 2>/dev/null || true; rm -rf "$work"' EXIT
trap 'exit 143' TERM INT
stage="$work/stage"
mkdir -p "$stage/nested/scenarios" "$stage/bin"
install -m 0755 "$here/l1/init" "$stage/init"
install -m 0644 "$here/l1/lib.sh" "$stage/nested/lib.sh"
install -m 0755 "$l1run" "$stage/bin/l1run"
install -m 0755 "$unixcat" "$stage/bin/unixcat"
for d in "${scen_dirs[@]}"; do cp "$d"/*.sh "$stage/nested/scenarios/" 2>/dev/null || true; done
: >"$stage/nested/env"
for e in "${envs[@]}"; do printf '%s=%q\n' "${e%%=*}" "${e#*=}" >>"$stage/nested/env"; done
[ -n "${NESTED_VMM_MACHINE:-}" ] && printf 'NESTED_VMM_MACHINE=%q\n' "$NESTED_VMM_MACHINE" >>"$stage/nested/env"
runs=0
for v in "${vmms[@]}"; do
  case "$v" in
    qemu-microvm|qemu-pc) kind=$v ;;
    *) [ -x "$v" ] || kit_die "--vmm $v: not an executable"
       kit_copy_elf "$stage" "$(readlink -f "$v")" /opt/vmm/bin/vmm
       kind=vmm ;;
  esac
  for s in "${scenarios[@]}"; do
    case "$s" in
      *@"$kind") s=${s%@*} ;;
      *@*) continue ;;
    esac
    echo "$kind $s" >>"$stage/nested/plan"; runs=$((runs + 1))
  done
done
[ "$runs" -gt 0 ] || kit_die "nothing to run (check the @KIND suffixes against --vmm)"
for b in "${bins[@]}"; do
  [ -x "$b" ] || kit_die "--bin $b: not an executable"
  kit_copy_elf "$stage" "$(readlink -f "$b")" "/opt/vmm/bin/$(basename "$b")"
done
for f in "${files[@]}"; do
  src=${f%%=*} dest=${f#*=}
  [ -f "$src" ] && [ "$src" != "$f" ] && [ "${dest#/}" != "$dest" ] || kit_die "--file $f: want an existing PATH=/DEST"
  install -D -m 0644 "$src" "$stage$dest"
done
cp "$stage/nested/plan" "$work/plan.full"
# Disks: L1 sees each through its own overlay (L2's writes stay in $work).
disk_args=() letters=abcdefghijklmnop
: >"$stage/nested/disks"
for i in "${!disks[@]}"; do
  name=${disks[$i]%%=*} image=${disks[$i]#*=}
  [ -f "$image" ] || kit_die "--disk ${disks[$i]}: no such file"
  [ "$i" -lt ${#letters} ] || kit_die "--disk: at most ${#letters} disks"
  image=$(readlink -f "$image")
  qemu-img create -q -f qcow2 -F raw -b "$image" "$work/disk$i.qcow2" $(( $(stat -c %s "$image") + 512 * 1024 * 1024 ))
  disk_args+=(-drive "file=$work/disk$i.qcow2,format=qcow2,if=virtio,cache=unsafe")
  echo "$name vd${letters:$i:1}" >>"$stage/nested/disks"
done

timeout=${timeout:-$((60 + 120 * runs))}
# L1 prints "NESTED l1 ready" some 5-40 s after QEMU starts; a boot without it by this time is
# stopped at once, with a clear error, instead of running into the whole run's timeout.
boot_limit=${NESTED_L1_BOOT_LIMIT:-240}
# Once ready, L1's /init prints "L1 alive" every 15 s whatever the scenario does. A console
# silent for this long means L1 itself is stuck: seen once, QEMU TCG spinning at 100 % with
# L1's kernel printing nothing (not even a lockup report) during an L2 boot under QEMU microvm.
stall_limit=${NESTED_L1_STALL_LIMIT:-120}
# A stuck L1 is the emulator's fault, not the L2 VMM's: the runs without a result get one fresh
# L1 (loudly reported); a second stuck L1 fails the whole run.
restarts=${NESTED_L1_RESTARTS:-1}

# Boots L1 with the plan in $stage. The console goes through a FIFO (QEMU's stdio serial stalls
# the guest when stdout is a regular file) to $log without CRs, and its NESTED lines go to stdout
# as they come. Sets qrc to QEMU's exit status, to "hung" when no ready marker came within
# boot_limit, or to "stalled" when a ready L1 then printed nothing for stall_limit.
boot_l1() {
  python3 "$top/tests/guest/kit/mkcpio.py" "$work/fresh.cpio" "$stage"
  cat "$base" "$l2" "$work/fresh.cpio" >"$work/initrd.cpio"
  : >"$log"
  rm -f "$work/console"
  mkfifo "$work/console"
  sed -u 's/\r//g' <"$work/console" >"$log" &
  local writer=$!
  # No ERMS/FSRM in L1's CPU: TCG runs `rep movsb`/`rep stosb` one byte per loop iteration, and
  # with those flags L1's kernel clears every fresh page and copies to and from user space that
  # way (so does glibc's memcpy, and L2's kernel, which inherits the flags). Without them they
  # use rep movsq/stosq or vector loops: measured, L1's kernel time per L2 boot fell from
  # 0.9-5.6 s to 0.35-1.1 s and whole boots from 3-9 s to 2.3-4.3 s (tests/bench/boot/README.md).
  # NESTED_L1_ICOUNT (e.g. shift=0): L1 on QEMU's instruction counter, the boot benchmark's clock
  # (tests/bench/boot/clock.sh); the tests run in real time.
  timeout --foreground -k 5 "$timeout" qemu-system-x86_64 -accel tcg ${NESTED_L1_ICOUNT:+-icount "$NESTED_L1_ICOUNT"} -cpu "${NESTED_L1_CPU:-max,erms=off,fsrm=off}" -M pc -m "${NESTED_L1_MEM:-1024}" -smp 1 \
    -nographic -no-reboot -nodefaults -serial stdio "${disk_args[@]}" \
    -kernel "$KIT_BZIMAGE" -initrd "$work/initrd.cpio" -append "console=ttyS0 panic=-1 quiet loglevel=4" \
    </dev/null >"$work/console" 2>&1 &
  l1_pid=$!
  local qpid=$l1_pid waited=0 size=0 last_size=-1 silent=0
  tail -f -n +1 --pid="$qpid" "$log" | grep --line-buffered -ao 'NESTED.*' &
  local follower=$!
  qrc=""
  while kill -0 "$qpid" 2>/dev/null; do
    if ! grep -aq 'NESTED l1 ready' "$log"; then
      if [ "$waited" -ge "$boot_limit" ]; then qrc=hung; kill "$qpid" 2>/dev/null; break; fi
    else
      size=$(stat -c %s "$log")
      if [ "$size" = "$last_size" ]; then silent=$((silent + 1)); else silent=0 last_size=$size; fi
      if [ "$silent" -ge "$stall_limit" ]; then qrc=stalled; kill "$qpid" 2>/dev/null; break; fi
    fi
    sleep 1
    waited=$((waited + 1))
  done
  wait "$qpid"
  local status=$?
  [ -n "$qrc" ] || qrc=$status
  wait "$writer" "$follower"
}

# The plan lines that have no result in the logs given.
unreported() {
  local kind s
  while read -r kind s; do
    cat "$@" 2>/dev/null | grep -aq "NESTED scenario=$s vmm=$kind result=" || echo "$kind $s"
  done <"$work/plan.full"
}

rm -f "$log".stuck-*
set +e
earlier_logs=()
boot=1
cp "$stage/nested/env" "$work/env.base"
while :; do
  { cat "$work/env.base"; echo "NESTED_L1_BOOT=$boot"; } >"$stage/nested/env"  # which boot of L1 this is
  boot_l1
  case "$qrc" in
    hung) echo "NESTED error=l1-boot-hung: no 'NESTED l1 ready' within ${boot_limit}s (log: $log)" ;;
    stalled) echo "NESTED error=l1-stalled: L1's console was silent for ${stall_limit}s during" \
                  "$(unreported "${earlier_logs[@]}" "$log" | head -n1 | awk '{print $2 "@" $1}') (log: $log)" ;;
    *) break ;;
  esac
  [ "$boot" -le "$restarts" ] || break
  mv "$log" "$log.stuck-$boot"
  earlier_logs+=("$log.stuck-$boot")
  unreported "${earlier_logs[@]}" >"$stage/nested/plan"
  echo "NESTED warning=l1-restarted: boot $((boot + 1)) of L1 for the $(grep -c . "$stage/nested/plan") runs" \
       "without a result (stuck boot's log: $log.stuck-$boot)"
  boot=$((boot + 1))
done
set -e

count() { cat "${earlier_logs[@]}" "$log" | grep -ac "NESTED scenario=.* result=$1" || true; }
passed=$(count pass) failed=$(count fail) xfailed=$(count xfail)
if [ "$qrc" = 124 ] || [ "$qrc" = 137 ]; then echo "NESTED error=l1-timeout after ${timeout}s (log: $log)"; fi
if ! grep -aq 'NESTED done' "$log"; then echo "NESTED error=l1-did-not-finish (qemu status $qrc, log: $log)"; exit 1; fi
if [ $((passed + xfailed)) -ne "$runs" ] || [ "$failed" -ne 0 ]; then
  echo "NESTED summary passed=$passed failed=$failed xfailed=$xfailed planned=$runs (log: $log)"; exit 1
fi
echo "NESTED summary passed=$passed failed=0 xfailed=$xfailed planned=$runs${earlier_logs[*]:+ l1_restarts=${#earlier_logs[@]}}"
