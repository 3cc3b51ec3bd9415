# The guest agent end to end through vmmd: vmmd (carried in with --bin) starts the L2 kit under
# vmm with "agent": true (virtio-serial port org.qemu.guest_agent.0 on the worker's qga socket;
# the kit's /init starts the real qemu-ga on it), then vmctl (also --bin):
#   agent: guest-ping, guest-get-osinfo; vm-info's agent state becomes "connected"
#   exec: stdout, stderr and the exit code of a guest command
#   cp: a 5 MiB file into the guest and back out, unchanged (vmctl checks size and sha256sum)
#   qemu-ga killed and started again inside the guest: vmmd resynchronises, commands work again
#   shutdown --mode agent: guest-shutdown powers the guest off; the VM's state becomes shut-off
# Needs VMM=vmm (vmmd only drives vmm workers) and /opt/vmm/bin/{vmmd,vmctl}.
if [ "$VMM" != vmm ] || [ ! -x /opt/vmm/bin/vmmd ] || [ ! -x /opt/vmm/bin/vmctl ]; then
  fail "needs --vmm PATH-to-vmm and --bin vmmd --bin vmctl (vmm=$VMM)"
  return 0 2>/dev/null || exit 0
fi
W=/tmp/vmmd-agent
rm -rf "$W" && mkdir -p "$W"
LOG=$W/vmmd.log
vmmd --state-dir "$W/state" --run-dir "$W/run" --vmm /opt/vmm/bin/vmm --foreground >"$LOG" 2>&1 &
vmmd_pid=$!
export VMMD_SOCKET=$W/run/vmmd.sock
ctl() { vmctl "$@"; }
# agent_state: vm-info's "agent" value
agent_state() { ctl --json info g1 2>/dev/null | sed -n 's/.*"agent": "\([a-z]*\)".*/\1/p'; }
finish() {
  ctl destroy g1 >/dev/null 2>&1
  kill "$vmmd_pid" 2>/dev/null; wait "$vmmd_pid" 2>/dev/null
  if [ "$1" = pass ]; then pass "$2"; else
    for f in "$W/run/vms/g1/worker.log" "$W/run/vms/g1/console.log"; do
      [ -f "$f" ] && tail -n 15 "$f" | sed "s|^|NESTED-LOG $SCENARIO $VMM: ${f##*/}: |"
    done
    fail "$2"
  fi
}

wait_for 20 ctl list || { finish fail "vmmd-did-not-start"; return 0 2>/dev/null || exit 0; }
cat >"$W/g1.json" <<EOF
{"schema": 1, "name": "g1", "memory": 256, "vcpus": 1, "kernel": "$L2_BZIMAGE", "initrd": "$L2_INITRD",
 "cmdline": "$L2_BASE_APPEND", "agent": true}
EOF
ctl define "$W/g1.json" >/dev/null && ctl start g1 >/dev/null || { finish fail "define-or-start"; return 0 2>/dev/null || exit 0; }

: >"$W/detail"
step() { printf ',%s' "$1" >>"$W/detail"; }  # check_all runs in a subshell
check_all() {
  # 1. the guest's qemu-ga opens the port: vm-info says connected; guest-ping answers
  wait_for 120 ctl agent g1 '{"execute": "guest-ping"}' || { echo "ping"; return; }
  [ "$(ctl agent g1 '{"execute": "guest-ping"}')" = "{}" ] || { echo "ping-reply"; return; }
  [ "$(agent_state)" = connected ] || { echo "state=$(agent_state)"; return; }
  step ping=ok
  os=$(ctl agent g1 '{"execute": "guest-get-osinfo"}' | sed -n 's/.*"id": "\([a-z]*\)".*/\1/p')
  [ "$os" = debian ] || { echo "osinfo=$os"; return; }
  step os=$os
  # 2. exec
  ctl exec g1 -- sh -c 'echo to-out; echo to-err >&2; exit 3' >"$W/out" 2>"$W/err"
  rc=$?
  [ "$rc" = 3 ] && [ "$(cat "$W/out")" = to-out ] && [ "$(cat "$W/err")" = to-err ] ||
    { echo "exec-rc=$rc,out=$(cat "$W/out"),err=$(head -c 80 "$W/err" | tr ' \n' '_;')"; return; }
  step exec=ok
  # 3. 5 MiB in and out
  dd if=/dev/urandom of="$W/big" bs=1024 count=5120 2>/dev/null
  t0=$(date +%s)
  ctl cp "$W/big" g1:/tmp/big >"$W/cp-in" 2>&1 || { echo "cp-in:$(tr ' \n' '_;' <"$W/cp-in")"; return; }
  grep -q "sha256" "$W/cp-in" || { echo "cp-in-unverified"; return; }
  ctl cp g1:/tmp/big "$W/big.back" >"$W/cp-out" 2>&1 || { echo "cp-out:$(tr ' \n' '_;' <"$W/cp-out")"; return; }
  cmp -s "$W/big" "$W/big.back" || { echo "cp-differs"; return; }
  step "cp=5MiB-in-out-$(($(date +%s) - t0))s"
  # 4. restart qemu-ga inside the guest (a script copied in, run detached by guest-exec)
  cat >"$W/restart-qga.sh" <<'EOS'
for p in /sys/class/virtio-ports/*; do
  [ "$(cat "$p/name")" = org.qemu.guest_agent.0 ] && dev=/dev/${p##*/}
done
( sleep 1; kill $(pidof qemu-ga); sleep 3
  qemu-ga -m virtio-serial -p "$dev" -t /run/qga -l /run/qga/qemu-ga.log ) </dev/null >/dev/null 2>&1 &
EOS
  before=$(ctl exec g1 -- pidof qemu-ga)
  ctl cp "$W/restart-qga.sh" g1:/tmp/restart-qga.sh >/dev/null 2>&1 || { echo "cp-script"; return; }
  ctl exec g1 -- setsid sh /tmp/restart-qga.sh >/dev/null 2>&1 || { echo "restart-script"; return; }
  # While it is down: vmctl reports no agent (exit 5) within its timeout, never hangs.
  down=0 n=0
  while [ "$n" -lt 20 ]; do
    ctl agent --timeout 1 g1 '{"execute": "guest-ping"}' >/dev/null 2>"$W/down-err"
    rc=$?
    if [ "$rc" = 5 ]; then down=1; break; fi
    sleep 0.2; n=$((n + 1))
  done
  [ "$down" = 1 ] && grep -q "guest agent is not connected" "$W/down-err" || { echo "agent-never-down(rc=$rc)"; return; }
  wait_for 60 ctl agent g1 '{"execute": "guest-ping"}' || { echo "no-resync-after-restart"; return; }
  after=$(ctl exec g1 -- pidof qemu-ga)
  [ -n "$after" ] && [ "$after" != "$before" ] || { echo "qga-pid-unchanged($before,$after)"; return; }
  step "restart=ok($before->$after)"
  # 5. power off through the agent
  ctl shutdown g1 --mode agent --timeout 60 >"$W/sd" 2>&1 || { echo "shutdown:$(tr ' \n' '_;' <"$W/sd")"; return; }
  state=$(ctl --json info g1 | sed -n 's/.*"state": "\([a-z-]*\)".*/\1/p')
  [ "$state" = shut-off ] || { echo "state-after-shutdown=$state"; return; }
  grep -q 'L2: shutdown (poweroff)' "$W/run/vms/g1/console.log" 2>/dev/null || { echo "no-guest-poweroff-line"; return; }
  step shutdown=agent
}
why=$(check_all)
detail=$(cat "$W/detail")
if [ -z "$why" ]; then finish pass "${detail#,}"; else finish fail "$why${detail:+ (done:${detail#,})}"; fi
