#!/usr/bin/env bash
# The packaging test (nested tier): boots a Debian 12 system with systemd as PID 1 and KVM as L1
# (QEMU TCG, -cpu max: kvm_amd loads in L1), installs vmmd's .deb there with apt-get and checks
# what an operator relies on, across a reboot. tests/packaging/README.md lists the steps.
#
#   tests/packaging/run.sh [--deb PATH] [--timeout S] [--log FILE] [--keep DIR]
#
#   --deb PATH    the package to test (default: build one with scripts/build-deb.sh, nocheck)
#   --timeout S   bound on the L1 run, both boots (default 1800; a passing run takes ~3 min); an L1
#                 silent on its console for PKGTEST_STALL_LIMIT seconds (default 300) is stopped too
#   --log FILE    keep L1's whole console (host-timestamped) there
#   --keep DIR    keep the disk image, kernel and console in DIR (for a look afterwards)
#
# Prints each step's result and a table; exits 0 only when every step passed in both boots, 77
# when it cannot run here (not root, a tool missing).
# Needs root (the root file system is unpacked with its owners), qemu-system-x86_64, mkfs.ext4
# and, on the first run, debootstrap and deb.debian.org (tests/packaging/rootfs.sh; cached).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
source "$top/tests/guest/kit/lib.sh"

deb="" timeout=1800 log="" keep=""
while [ $# -gt 0 ]; do
  case "$1" in
    --deb) deb=$2; shift 2 ;;
    --timeout) timeout=$2; shift 2 ;;
    --log) log=$2; shift 2 ;;
    --keep) keep=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "packaging/run.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
# 77: cannot run here (CTest's SKIP_RETURN_CODE), as opposed to a failure; under CI=true a test
# that cannot run fails instead (as every test here: tests/support/vmmd_testlib/kvm_gate.py).
cannot_run() {
  if [ "${CI:-}" = true ]; then echo "packaging: FAILED (CI=true): cannot run: $*" >&2; exit 1; fi
  echo "packaging: skipped: $*" >&2; exit 77
}
[ "$(id -u)" -eq 0 ] || cannot_run "needs root (the root file system keeps its owners)"
for tool in qemu-system-x86_64 mkfs.ext4 debootstrap; do
  command -v "$tool" >/dev/null || cannot_run "$tool is missing (scripts/install-deps.sh)"
done
stall_limit=${PKGTEST_STALL_LIMIT:-300}
now() { date +%s; }
timing() { printf 'packaging: time: %-22s %5ss\n' "$1" "$2"; }

work=$(mktemp -d "${TMPDIR:-/var/tmp}/vmmd-pkgtest.XXXXXX")
qpid="" reader=""
cleanup() {
  [ -z "$qpid" ] || kill "$qpid" 2>/dev/null || true
  [ -z "$reader" ] || kill "$reader" 2>/dev/null || true
  if [ -n "$keep" ]; then
    mkdir -p "$keep" && cp --sparse=always "$work"/{disk.img,vmlinuz,initrd.img,console.log} "$keep"/ 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 143' TERM INT

if [ -z "$deb" ]; then
  t=$(now)
  # nocheck: the package's build-time tests are the unit tests that the project's own trees run
  # (scripts/test.sh runs them); building and running them again here doubled this step. noopt and
  # nostrip: this test checks the packaging (files, units, maintainer scripts, the daemon under
  # systemd), which optimisation and stripping do not change; the project's trees test the
  # optimised code. DEB_BUILD_OPTIONS from the caller wins (a release build: leave both out).
  build_options=${DEB_BUILD_OPTIONS:-nocheck noopt nostrip parallel=$(nproc)}
  echo "packaging: building the .deb (scripts/build-deb.sh, DEB_BUILD_OPTIONS=$build_options)"
  DEB_BUILD_OPTIONS=$build_options "$top/scripts/build-deb.sh" "$work/deb" >"$work/build-deb.log" 2>&1 ||
    { tail -n 30 "$work/build-deb.log" >&2; kit_die "scripts/build-deb.sh failed"; }
  deb=$(ls "$work"/deb/vmmd_*.deb | head -n1)
  timing ".deb build" $(( $(now) - t ))
fi
[ -f "$deb" ] || kit_die "no package at $deb"
deb=$(cd "$(dirname "$deb")" && pwd)/$(basename "$deb")

t=$(now)
tarball=$("$here/rootfs.sh")
timing "root fs (cached?)" $(( $(now) - t ))
kit=$(KIT_QUIET=1 "$top/tests/guest/kit/build.sh")
source "$kit/env"

# The image: the cached root file system, the package, the L2 guest and the test as a unit.
t=$(now)
root=$work/root
mkdir "$root"
tar -C "$root" --numeric-owner -xpf "$tarball"
install -d "$root/opt/pkgtest"
install -m 0644 "$deb" "$root/opt/pkgtest/"
install -m 0644 "$KIT_BZIMAGE" "$root/opt/pkgtest/bzImage"
install -m 0644 "$KIT_INITRAMFS" "$root/opt/pkgtest/initramfs.cpio"
install -m 0755 "$here/l1/pkgtest.sh" "$root/opt/pkgtest/pkgtest.sh"
install -m 0644 "$here/l1/pkgtest.service" "$root/etc/systemd/system/pkgtest.service"
ln -sf /etc/systemd/system/pkgtest.service "$root/etc/systemd/system/multi-user.target.wants/pkgtest.service"
# The console is the test's: no login prompt on it.
ln -sf /dev/null "$root/etc/systemd/system/serial-getty@ttyS0.service"
cp "$(ls "$root"/boot/vmlinuz-* | sort -V | tail -n1)" "$work/vmlinuz"
cp "$(ls "$root"/boot/initrd.img-* | sort -V | tail -n1)" "$work/initrd.img"
size_mb=$(( $(du -sm "$root" | cut -f1) + 1536 ))
truncate -s "${size_mb}M" "$work/disk.img"
mkfs.ext4 -q -F -L pkgtest -d "$root" "$work/disk.img" "${size_mb}M" || kit_die "mkfs.ext4 -d failed"
rm -rf "$root"
timing "image (${size_mb} MiB)" $(( $(now) - t ))

# L1: no network, the disk as virtio-blk, the console on the first serial port. QEMU restarts the
# machine on the reboot between the two boots (no -no-reboot) and exits at the final power-off.
touch "$work/console.log"
start=$(now)
qemu-system-x86_64 -accel tcg -cpu max -M pc -m "${PKGTEST_L1_MEM:-2048}" -smp "${PKGTEST_L1_SMP:-2}" \
  -display none -nodefaults -no-user-config -monitor none -serial "file:$work/console.log" \
  -drive "file=$work/disk.img,format=raw,if=virtio,cache=unsafe" \
  -kernel "$work/vmlinuz" -initrd "$work/initrd.img" \
  -append "root=/dev/vda rw console=ttyS0 loglevel=3 net.ifnames=0 systemd.show_status=1" \
  </dev/null >"$work/qemu.log" 2>&1 &
qpid=$!
# Each console line with the host's time (L1's clock drifts under TCG); the test's lines shown.
tail -n +1 -F --pid="$qpid" "$work/console.log" 2>/dev/null | while IFS= read -r line; do
  line=${line%$'\r'}
  printf '%s %s\n' "$(date +%s)" "$line" >>"$work/stamped.log"
  case "$line" in "T| @@PKGTEST"*|"T| pkgtest:"*) echo "  L1${line#T}" ;; esac
done &
reader=$!

status=""
while kill -0 "$qpid" 2>/dev/null; do
  n=$(now)
  if [ $((n - start)) -ge "$timeout" ]; then status="timed out after ${timeout}s"; break; fi
  last=$(stat -c %Y "$work/console.log")
  if [ $((n - last)) -ge "$stall_limit" ]; then status="L1 silent for ${stall_limit}s"; break; fi
  sleep 2
done
[ -n "$status" ] && echo "packaging: stopping L1: $status" >&2
kill "$qpid" 2>/dev/null || true
wait "$qpid" 2>/dev/null || true
qpid=""
end=$(now)
sleep 1; kill "$reader" 2>/dev/null || true; wait "$reader" 2>/dev/null || true; reader=""
[ -z "$log" ] || cp "$work/stamped.log" "$log"
[ ! -s "$work/qemu.log" ] || sed 's/^/packaging: qemu: /' "$work/qemu.log" >&2

# Timings from the host's stamps on the console lines.
stamp() { { grep -m1 -F -- "$1" "$work/stamped.log" || true; } | cut -d' ' -f1; }
b1=$(stamp 'pkgtest: boot 1') p1=$(stamp 'phase=1 done') b2=$(stamp 'pkgtest: boot 2') p2=$(stamp 'phase=2 done')
[ -z "$b1" ] || timing "boot 1 (to the test)" $((b1 - start))
[ -z "$p1" ] || timing "phase 1" $((p1 - b1))
[ -z "$b2" ] || timing "reboot (to the test)" $((b2 - p1))
[ -z "$p2" ] || timing "phase 2" $((p2 - b2))
timing "L1 in all" $((end - start))

# The verdict: every expected step passed, both boots finished.
steps=(kvm install installed-units socket-activation-root socket-activation-group non-member-refused vm-start
       restart-reattach stop-reattach kill-restart journal reboot-autostart remove purge)
failed=0
echo "packaging: results"
for s in "${steps[@]}"; do
  line=$({ grep -ao "@@PKGTEST step=$s result=[a-z]*[^@]*@@" "$work/console.log" || true; } | tail -n1)
  result=$(sed -n 's/.* result=\([a-z]*\).*/\1/p' <<<"$line")
  detail=$(sed -n 's/.* result=[a-z]* \{0,1\}\(.*\)@@$/\1/p' <<<"$line")
  [ -n "$result" ] || result="not run"
  [ "$result" = pass ] || failed=1
  printf '  %-24s %-7s %s\n' "$s" "$result" "$detail"
done
grep -aq '@@PKGTEST phase=2 done' "$work/console.log" || { failed=1; echo "packaging: the second boot did not finish"; }
if [ "$failed" -ne 0 ]; then
  # What the test printed while each failed step ran (since the previous step's line).
  echo "packaging: FAILED; the test's output for each failed step:" >&2
  grep -a '^T| ' "$work/console.log" | sed 's/\r$//; s/^T|/  |/' |
    awk '/@@PKGTEST step=/ { if ($0 ~ / result=fail/) { for (i = 0; i < n; i++) print buf[i]; print; print "" } n = 0; next }
         { buf[n++] = $0; if (n > 30) { for (i = 1; i < n; i++) buf[i - 1] = buf[i]; n-- } }' >&2 || true
  echo "packaging: the test's last lines:" >&2
  grep -a '^T| ' "$work/console.log" | tail -n 5 | sed 's/\r$//; s/^T|/  |/' >&2 || true
  echo "packaging: the console's last lines:" >&2
  grep -av '^T| ' "$work/console.log" | tail -n 15 | sed 's/\r$//; s/^/  | /' >&2 || true
  exit 1
fi
echo "packaging: all steps passed"
