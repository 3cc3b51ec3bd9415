#!/usr/bin/env bash
# Runs a command inside an L1 virtual machine that has a working /dev/kvm, for hosts that have
# none (or one that cannot run the guests: see scripts/kvm-check). L1 is Debian's generic kernel
# under QEMU TCG with an emulated AMD CPU (SVM, NPT), kvm-amd loaded; it sees this machine's whole
# file system (the host's / over 9p, read-only, with a tmpfs overlay on top so that everything is
# writable in L1 and nothing written there reaches the host) and runs COMMAND as root, in the same
# working directory, with the same PATH. It is slow (an emulator runs the hypervisor): use it for
# tests and the demo, never for production guests.
#
#   scripts/l1/run.sh [--mem MB] [--smp N] [--timeout S] [--out DIR] [--env NAME]... -- COMMAND [ARG]...
#
#   --mem MB      L1 memory (default 4096)      --smp N     L1 vCPUs (default: the host's cores, up to 4)
#   --timeout S   bound on the whole run (default 3600)
#   --out DIR     a host folder that L1 sees read-write at /run/l1out (default: a temporary one);
#                 COMMAND can leave results there
#   --env NAME    pass this variable's value into L1 (repeatable; PATH HOME CI LANG VMMD_CACHE
#                 always are)
#
# COMMAND's output (stdout and stderr together) comes back on L1's serial console, as it is
# written. The exit status is COMMAND's; 125 when L1 failed to run it (its own error says why),
# 124 when --timeout ran out, 126 when L1 stopped making progress (no heartbeat for
# L1_STALL_LIMIT seconds, default 150; the heartbeat comes every 5 s from L1's PID 1 even at full
# load. Seen: an L1 under TCG that went idle for good, and, in about one KVM-test run in three,
# one whose two vCPUs spun at full speed for good with its console and heartbeat silent).
# The kernel and the small initramfs are cached under $VMMD_CACHE/l1.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
source "$top/tests/guest/kit/lib.sh"

mem=4096 smp=$(nproc) timeout=3600 out="" envs=(PATH HOME CI LANG VMMD_CACHE)
[ "$smp" -le 4 ] || smp=4
while [ $# -gt 0 ]; do
  case "$1" in
    --mem) mem=$2; shift 2 ;;
    --smp) smp=$2; shift 2 ;;
    --timeout) timeout=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --env) envs+=("$2"); shift 2 ;;
    --) shift; break ;;
    -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "l1/run.sh: unknown option $1 (COMMAND goes after --)" >&2; exit 2 ;;
  esac
done
[ $# -gt 0 ] || { echo "l1/run.sh: no COMMAND (usage: scripts/l1/run.sh [options] -- COMMAND [ARG]...)" >&2; exit 2; }
command -v qemu-system-x86_64 >/dev/null || kit_die "qemu-system-x86_64 is missing (scripts/install-deps.sh)"
stall_limit=${L1_STALL_LIMIT:-150}

# Debian's generic kernel (it has 9p and overlayfs; the cloud kernel the nested tier uses has no 9p).
kernel_package() {
  local pkg
  pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[0-9].*-amd64\)$/\1/p' | head -n1)
  if [ -z "$pkg" ]; then
    pkg=$(ls -1 "$VMMD_CACHE/debs/" 2>/dev/null | sed -n 's/^\(linux-image-[0-9][^_]*[0-9]-amd64\)_.*/\1/p' | sort -V | tail -n1)
  fi
  if [ -z "$pkg" ]; then
    kit_log "apt-get update (no package lists)"
    if [ "$(id -u)" -eq 0 ]; then apt-get update -qq >/dev/null 2>&1 || true; else sudo -n apt-get update -qq >/dev/null 2>&1 || true; fi
    pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[0-9].*-amd64\)$/\1/p' | head -n1)
  fi
  [ -n "$pkg" ] || kit_die "cannot resolve linux-image-amd64 (apt-get update?)"
  echo "$pkg"
}
pkg=$(kernel_package)
kver=${pkg#linux-image-}
cache="$VMMD_CACHE/l1/$kver"
if [ ! -f "$cache/vmlinuz" ]; then
  kit_log "unpacking $pkg for L1"
  deb=$(kit_fetch_deb "$pkg")
  rm -rf "$cache" && mkdir -p "$cache"
  dpkg -x "$deb" "$cache/root"
  depmod -b "$cache/root" "$kver"
  cp "$cache/root/boot/vmlinuz-$kver" "$cache/vmlinuz.tmp" && mv "$cache/vmlinuz.tmp" "$cache/vmlinuz"
fi
modules=(9p 9pnet_virtio virtio_pci overlay kvm_amd tun bridge veth)
key=$(printf '%s\n' "$kver" "${modules[*]}" "$(sha256sum "$(command -v busybox)" "$here/init")" | sha256sum | cut -c1-16)
initrd="$cache/initrd-$key.cpio"
if [ ! -f "$initrd" ]; then
  stage=$(mktemp -d)
  kit_busybox "$stage"
  mkdir -p "$stage/l1/modules"
  modprobe -d "$cache/root" -S "$kver" --show-depends -a "${modules[@]}" | awk '$1 == "insmod" {print $2}' |
    awk '!seen[$0]++' | while read -r ko; do
      install -m 0644 "$ko" "$stage/l1/modules/${ko##*/}"
      echo "${ko##*/}" >>"$stage/l1/modules/order"
    done
  install -m 0755 "$here/init" "$stage/init"
  # The rest of the kernel's modules load on demand (nf_tables for vmmd's networks, and whatever a
  # test's kernel feature pulls in): the kernel's modprobe runs the host's kmod on this tree.
  echo "$cache/root/lib/modules" >"$stage/l1/module-tree"
  rm -f "$cache"/initrd-*.cpio
  python3 "$top/tests/guest/kit/mkcpio.py" "$initrd.tmp" "$stage" --node /dev/console:600:c:5:1 --node /dev/null:666:c:1:3
  mv "$initrd.tmp" "$initrd"
  rm -rf "$stage"
fi

work=$(mktemp -d)
[ -n "$out" ] || out="$work/out"
mkdir -p "$out"
out=$(cd "$out" && pwd)
rm -f "$out/rc" "$out/ready" "$out/kallsyms" "$out/stall.txt" "$out/stall-registers.txt"
{
  for name in "${envs[@]}"; do
    [ -n "${!name+x}" ] && printf 'export %s=%q\n' "$name" "${!name}"
  done
  printf 'export L1_CWD=%q VMMD_IN_L1=1\n' "$PWD"
} >"$out/env"
printf '%q ' "$@" >"$out/cmd"; echo >>"$out/cmd"

qpid=""
trap '[ -z "$qpid" ] || kill "$qpid" 2>/dev/null || true; rm -rf "$work"' EXIT
trap 'exit 143' TERM INT
sec_model=none
mkfifo "$work/console"
# The console, kept whole in $out/console.log; COMMAND's output (between L1's markers) and L1's own
# errors go to stdout as they come.
sed -u 's/\r$//' <"$work/console" | tee "$out/console.log" |
  sed -u -n '/^L1: error/p; /@@L1-START@@/,/@@L1-EXIT/{/@@L1-/d; p}' &
reader=$!
# No ERMS/FSRM: TCG runs `rep movsb`/`rep stosb` one byte per iteration, the way L1's kernel
# would otherwise clear fresh pages and copy to and from user space (tests/nested/run.sh, and
# tests/bench/boot/README.md for the figures).
qemu-system-x86_64 -accel tcg -cpu max,erms=off,fsrm=off -M pc -m "$mem" -smp "$smp" -nographic -no-reboot -nodefaults \
  -serial stdio -serial "file:$work/heartbeat" -monitor "unix:$work/monitor,server=on,wait=off" \
  -kernel "$cache/vmlinuz" -initrd "$initrd" \
  -append "console=ttyS0 panic=-1 quiet loglevel=1 nokaslr" \
  -virtfs "local,path=/,mount_tag=host,security_model=$sec_model,readonly=on,multidevs=remap" \
  -virtfs "local,path=$out,mount_tag=l1out,security_model=$sec_model" \
  </dev/null >"$work/console" 2>&1 &
qpid=$!
start=$(date +%s) status=""
while kill -0 "$qpid" 2>/dev/null; do
  now=$(date +%s)
  if [ $((now - start)) -ge "$timeout" ]; then status=124; echo "l1/run.sh: stopping L1 after --timeout ${timeout}s" >&2; break; fi
  beat=$(stat -c %Y "$work/heartbeat" 2>/dev/null || true)  # the host's clock: L1's drifts under TCG
  [ -s "$work/heartbeat" ] || beat=""
  if [ -n "$beat" ] && [ $((now - beat)) -ge "$stall_limit" ] && [ ! -f "$out/rc" ]; then
    status=126
    echo "l1/run.sh: L1 stopped making progress (no heartbeat for ${stall_limit}s); stopping it" >&2
    echo "l1/run.sh: last heartbeat: $(tail -n1 "$work/heartbeat"); QEMU: $(ps -o pcpu=,stat= -p "$qpid")" >&2
    # Where its vCPUs spin (kernel functions, or L2), into the log and $out/stall.txt.
    timeout 30 python3 "$here/stall_report.py" "$work/monitor" "$out/kallsyms" 5 "$out/stall-registers.txt" 2>&1 |
      tee "$out/stall.txt" | sed 's/^/l1\/run.sh: /' >&2 || true
    break
  fi
  if [ -z "$beat" ] && [ $((now - start)) -ge "${L1_BOOT_LIMIT:-300}" ]; then
    status=125; echo "l1/run.sh: L1 did not come up within ${L1_BOOT_LIMIT:-300}s" >&2; break
  fi
  sleep 1
done
kill "$qpid" 2>/dev/null || true
wait "$qpid" 2>/dev/null || true
wait "$reader" 2>/dev/null || true
qpid=""
[ -n "$status" ] || status=$(cat "$out/rc" 2>/dev/null || echo 125)
[ "$status" = 126 ] || rm -f "$out/kallsyms"
exit "$status"
