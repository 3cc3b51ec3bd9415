#!/usr/bin/env bash
# The guest part of ./scripts/demo.sh: runs a real Linux guest under vmmd the way an operator
# would, everything in a temporary dir (vmmd's state, sockets and logs; the disk; the definition):
# a qcow2 data disk made with vmm-img, a tap for the NIC (root only), a JSON definition of a
# "machine": "microvm" VM with the guest kit's kernel and initramfs and "agent": true, then vmctl define / start / list / console /
# exec / agent / shutdown (ACPI power button) / list. Cleans up on exit, also on failure; exits
# non-zero when a step failed. demo.sh runs it on this host, or inside an L1 VM (scripts/l1/run.sh)
# when this host's /dev/kvm cannot boot Linux; its output is the same either way.
#
#   scripts/demo-steps.sh BUILD_DIR KERNEL INITRAMFS     (KERNEL: a bzImage or a PVH vmlinux)
set -euo pipefail
[ $# -eq 3 ] || { echo "usage: scripts/demo-steps.sh BUILD_DIR KERNEL INITRAMFS" >&2; exit 2; }
abs() { case "$1" in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac; }  # vmmd wants absolute paths
build=$(abs "$1") kernel=$(abs "$2") initramfs=$(abs "$3")
for f in "$build/daemon/vmmd" "$build/cli/vmctl" "$build/vmm/vmm" "$build/storage/vmm-img" "$kernel" "$initramfs"; do
  [ -r "$f" ] || { echo "demo: FAILED: $f is missing or not readable" >&2; exit 1; }
done

tmp=$(mktemp -d /tmp/vmmd-demo.XXXXXX)
tap=vmmddemo0
tap_made="" vmmd="" console="" shower=""
export VMMD_SOCKET=$tmp/run/vmmd.sock

say() { printf '\n== %s\n' "$*"; }
fail() { echo "demo: FAILED: $*" >&2; exit 1; }
# ctl ARGS...: shows the command as a user would type it, runs it, stops the demo if it fails.
ctl() {
  echo "\$ vmctl $(quote "$@")"
  "$build/cli/vmctl" "$@" || fail "vmctl $1 exited with status $?"
}
# quote ARGS...: the words as a shell would need them (JSON in single quotes).
quote() {
  local out="" w
  for w in "$@"; do
    case "$w" in
      *[\ \"\{\}\$\'\;\&\|\<\>\(\)\*]*) out+=" '$w'" ;;
      *) out+=" $w" ;;
    esac
  done
  echo "${out# }"
}
# guest_lines FILE: a console transcript, CRs dropped, each line marked as the guest's.
guest_lines() { sed -u 's/\r$//; s/^/  | /' "$@"; }

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  [ -z "$console" ] || kill "$console" 2>/dev/null || true
  [ -z "$shower" ] || kill "$shower" 2>/dev/null || true
  if [ -n "$vmmd" ]; then
    # Workers run detached from vmmd: a guest still running after a failure is destroyed first.
    "$build/cli/vmctl" destroy demo >/dev/null 2>&1 || true
    if [ "$rc" -ne 0 ]; then
      for f in "$tmp/vmmd.log" "$tmp/run/vms/demo/worker.log" "$tmp/run/vms/demo/console.log"; do
        [ -s "$f" ] || continue
        echo "-- last lines of ${f#"$tmp/"}:" >&2
        tail -n 15 "$f" | sed 's/\r$//; s/^/   /' >&2
      done
    fi
    kill "$vmmd" 2>/dev/null || true
  fi
  wait 2>/dev/null || true
  [ -z "$tap_made" ] || ip link del "$tap" 2>/dev/null || true
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say "vmmd: the daemon, with its state, sockets and logs in $tmp (removed at the end)"
echo "\$ vmmd --state-dir $tmp/state --run-dir $tmp/run --vmm $build/vmm/vmm --foreground &"
"$build/daemon/vmmd" --state-dir "$tmp/state" --run-dir "$tmp/run" --vmm "$build/vmm/vmm" --foreground \
  2>"$tmp/vmmd.log" &
vmmd=$!
deadline=$((SECONDS + 10))
until [ -S "$VMMD_SOCKET" ] || [ "$SECONDS" -ge "$deadline" ] || ! kill -0 "$vmmd" 2>/dev/null; do sleep 0.1; done
[ -S "$VMMD_SOCKET" ] || fail "vmmd did not create its socket $VMMD_SOCKET within 10 s"

say "A 1 GiB qcow2 data disk"
echo "\$ vmm-img create -f qcow2 $tmp/data.qcow2 1G"
"$build/storage/vmm-img" create -f qcow2 "$tmp/data.qcow2" 1G || fail "vmm-img create exited with status $?"

say "A tap interface for the guest's NIC"
nic=""
if [ "$(id -u)" -ne 0 ]; then
  echo "(not root: creating a tap needs CAP_NET_ADMIN, so the guest gets no NIC)"
elif ip link show "$tap" >/dev/null 2>&1; then
  echo "(using the existing $tap)"
  nic=$'\n'" \"nics\": [{\"ifname\": \"$tap\"}],"
else
  echo "\$ ip tuntap add dev $tap mode tap && ip link set $tap up"
  if err=$(ip tuntap add dev "$tap" mode tap 2>&1); then
    tap_made=1
    ip link set "$tap" up
    nic=$'\n'" \"nics\": [{\"ifname\": \"$tap\"}],"
  else
    echo "(cannot create the tap: $err; the guest gets no NIC)"
  fi
fi

say "The VM's definition: a microvm (virtio-mmio, no PCI: the fastest start) with the guest kit's kernel and initramfs, 2 vCPUs, 256 MiB, the disk,${nic:+ the NIC,} the guest agent"
# No panic=-1 (the nested scenarios' QEMU has -no-reboot; vmm resets in place): a guest that
# panics stops there, with the panic on the console, instead of rebooting in a loop. On a microvm
# the kernel says "PCI: Fatal: No config space access function found": there is no PCI, and the
# virtio devices are virtio-mmio ones (pci=off does not quiet it).
cat >"$tmp/demo.json" <<JSON
{"schema": 1, "name": "demo", "machine": "microvm", "vcpus": 2, "memory": 256,
 "kernel": "$kernel",
 "initrd": "$initramfs",
 "cmdline": "console=ttyS0 quiet",
 "disks": [{"path": "$tmp/data.qcow2", "format": "qcow2"}],$nic
 "agent": true}
JSON
echo "\$ cat $tmp/demo.json"
cat "$tmp/demo.json"
ctl define "$tmp/demo.json"
ctl start demo
ctl list

say "The guest's serial console, until its init reports its services up (L2UP)"
echo "\$ vmctl console demo"
"$build/cli/vmctl" console demo </dev/null >"$tmp/console.txt" 2>"$tmp/console.err" &
console=$!
# Shows the transcript as it grows; ends by itself once the console is stopped.
tail -s 0.2 --pid="$console" -n +1 -f "$tmp/console.txt" | guest_lines &
shower=$!
deadline=$((SECONDS + 90))
until grep -q L2UP "$tmp/console.txt" || [ "$SECONDS" -ge "$deadline" ] || ! kill -0 "$console" 2>/dev/null; do
  sleep 0.1
done
grep -q L2UP "$tmp/console.txt" ||
  fail "the guest did not report L2UP within 90 s$(sed 's/^/; vmctl console: /' "$tmp/console.err")"
sleep 0.3  # the rest of the line
kill "$console" 2>/dev/null || true
wait "$console" 2>/dev/null || true
wait "$shower" 2>/dev/null || true
console="" shower=""
echo "(console detached)"

say "The guest agent (qemu-ga in the guest, on the virtio-serial port org.qemu.guest_agent.0)"
echo "\$ vmctl agent demo '{\"execute\":\"guest-ping\"}'    # retried until the agent answers"
ok="" deadline=$((SECONDS + 60))
while [ "$SECONDS" -lt "$deadline" ]; do
  if out=$("$build/cli/vmctl" agent --timeout 2 demo '{"execute":"guest-ping"}' 2>&1); then ok=1; break; fi
  sleep 1
done
[ -n "$ok" ] || fail "the guest agent did not answer within 60 s ($out)"
echo "$out"
ctl exec demo -- uname -a
echo "\$ vmctl exec demo -- cat /proc/partitions"
partitions=$("$build/cli/vmctl" exec demo -- cat /proc/partitions) || fail "vmctl exec exited with status $?"
echo "$partitions"
grep -qw vda <<<"$partitions" || fail "the qcow2 data disk (vda) is not in the guest's /proc/partitions"
echo "(vda is the qcow2 data disk: $(awk '$4 == "vda" {print $3}' <<<"$partitions") blocks of 1 KiB)"
ctl agent demo '{"execute":"guest-get-osinfo"}'

say "Shutting down: vmmd presses the ACPI power button; the guest's acpid powers it off"
ctl shutdown demo --timeout 60
# What the guest printed after L2UP: acpid's power-button action and the kernel powering off.
sed -n '/L2UP/,$p' "$tmp/run/vms/demo/console.log" 2>/dev/null | tail -n +2 | guest_lines
ctl list
state=$("$build/cli/vmctl" --json info demo | sed -n 's/.*"state": *"\([a-z-]*\)".*/\1/p' | head -n1)
[ "$state" = shut-off ] || fail "the VM is '$state' after the shutdown, not shut-off"
