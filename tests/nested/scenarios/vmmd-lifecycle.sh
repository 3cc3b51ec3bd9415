# vmmd in L1 runs a real Linux guest through its own vmm worker: define, start, `vmctl console`
# shows the kernel's boot and the kit's ready marker, `vmctl shutdown` presses the ACPI power
# button, the guest's acpid powers it off, and vmmd records the VM as shut-off.
# Needs --bin vmmd --bin vmctl (carried to /opt/vmm/bin); only meaningful for the vmm kind.
if [ "$VMM" != vmm ]; then
  fail "vmmd-drives-only-vmm"
  return
fi
B=/opt/vmm/bin D=/tmp/vmmd-lifecycle
LOG=$D/console.txt
vmmd_start "$D"
VMCTL_ERR=$D/vmctl.err

# loglevel=6: without "quiet" so the console shows the kernel's banner and boot notices.
cat >"$D/l2.json" <<JSON
{"schema": 1, "name": "l2", "memory": 256, "vcpus": 2, "kernel": "$L2_BZIMAGE", "initrd": "$L2_INITRD",
 "cmdline": "console=ttyS0 panic=-1 loglevel=6"}
JSON
steps=""
step() { steps="$steps,$1"; }
uptime_ms() { read -r up _ </proc/uptime; echo $(( ${up%.*} * 1000 + 1${up#*.}0 - 1000 )); }
"$B/vmctl" define "$D/l2.json" >/dev/null 2>>"$D/vmctl.err" && step defined
"$B/vmctl" start l2 >/dev/null 2>>"$D/vmctl.err" && step started
"$B/vmctl" console l2 </dev/null >"$LOG" 2>"$D/console.err" &
console_pid=$!
i=0; while ! grep -q L2UP "$LOG" 2>/dev/null && [ $i -lt 900 ]; do sleep 0.1; i=$((i + 1)); done
grep -q 'Linux version' "$LOG" && step banner
grep -q 'L2READY' "$LOG" && step ready
state_running=$(vmctl_state l2)
[ "$state_running" = running ] && step running
start_ms=$(uptime_ms)
"$B/vmctl" shutdown l2 --timeout 60 >/dev/null 2>>"$D/vmctl.err" && step shutdown
end_ms=$(uptime_ms)
# The console ends by itself once the worker is gone.
i=0; while kill -0 "$console_pid" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
kill -0 "$console_pid" 2>/dev/null || step console-closed
grep -q 'L2: power button' "$LOG" && step acpi-button
state=$(vmctl_state l2)
[ "$state" = shut-off ] && step shut-off
kill "$console_pid" 2>/dev/null
kill "$VMMD_PID" 2>/dev/null; wait "$VMMD_PID" 2>/dev/null
want=",defined,started,banner,ready,running,shutdown,console-closed,acpi-button,shut-off"
if [ "$steps" = "$want" ]; then
  pass "steps=${steps#,},shutdown_ms=$((end_ms - start_ms))"
else
  fail "steps=${steps#,},state=$state"
  sed 's/^/NESTED-LOG vmmd: /' "$D/vmmd.log" | tail -n 15
  sed 's/^/NESTED-LOG vmctl: /' "$D/vmctl.err" "$D/console.err" | tail -n 10
fi
