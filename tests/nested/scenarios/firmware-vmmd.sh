# vmmd boots the Debian disk (tests/guest/disks, qcow2) from a definition without a kernel: its
# "boot" makes the vmm worker start through SeaBIOS from the disk; `vmctl info` says so, `vmctl
# console` shows SeaBIOS's banner, GRUB and the login prompt's issue line, the real qemu-ga answers
# `vmctl agent ... guest-get-osinfo`, and `vmctl shutdown` (ACPI, systemd-logind) leaves it
# shut-off. Needs run.sh --disk debian-qcow2=... and --bin vmmd --bin vmctl; vmm kind only
# (tests/nested/firmware.sh runs it as firmware-vmmd@vmm).
if [ "$VMM" != vmm ]; then
  fail "vmmd-drives-only-vmm"
  return
fi
B=/opt/vmm/bin D=/tmp/firmware-vmmd
LOG=$D/console.txt
vmmd_start "$D"
VMCTL_ERR=$D/vmctl.err

dev=$(disk_dev debian-qcow2)
cat >"$D/deb.json" <<JSON
{"schema": 1, "name": "deb", "memory": 384, "agent": true,
 "disks": [{"id": "root", "path": "$dev", "format": "qcow2"}], "boot": {"firmware": "bios", "order": ["root"]}}
JSON
steps=""
step() { steps="$steps,$1"; }
"$B/vmctl" define "$D/deb.json" >/dev/null 2>>"$D/vmctl.err" && step defined
"$B/vmctl" info deb 2>>"$D/vmctl.err" | grep -q 'firmware bios from root' && step info-boot
"$B/vmctl" start deb >/dev/null 2>>"$D/vmctl.err" && step started
"$B/vmctl" console deb </dev/null >"$LOG" 2>"$D/console.err" &
console_pid=$!
# Until the login prompt's issue line, or the console ends (the worker is gone).
i=0
while ! grep -q 'vmmd-disk ttyS0' "$LOG" 2>/dev/null && [ $i -lt "${FIRMWARE_TIMEOUT:-400}" ] &&
      kill -0 "$console_pid" 2>/dev/null; do
  sleep 1; i=$((i + 1))
done
grep -q "$FIRMWARE_BANNER" "$LOG" && step banner
grep -q 'Booting `vmmd test disk' "$LOG" && step grub
grep -q 'vmmd-disk ttyS0' "$LOG" && step login
"$B/vmctl" agent deb '{"execute":"guest-get-osinfo"}' 2>>"$D/vmctl.err" | grep -q '"id": *"debian"' && step agent
"$B/vmctl" shutdown deb --timeout 120 >/dev/null 2>>"$D/vmctl.err" && step shutdown
state=$(vmctl_state deb)
[ "$state" = shut-off ] && step shut-off
kill "$console_pid" 2>/dev/null
kill "$VMMD_PID" 2>/dev/null; wait "$VMMD_PID" 2>/dev/null
want=",defined,info-boot,started,banner,grub,login,agent,shutdown,shut-off"
if [ "$steps" = "$want" ]; then
  pass "steps=${steps#,}"
else
  fail "steps=${steps#,},state=$state"
  sed 's/^/NESTED-LOG vmmd: /' "$D/vmmd.log" | tail -n 15
  sed 's/^/NESTED-LOG vmctl: /' "$D/vmctl.err" "$D/console.err" | tail -n 10
  tail -n 20 "$LOG" | sed 's/^/NESTED-LOG console: /'
fi
