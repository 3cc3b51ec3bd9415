#!/bin/bash
# Runs inside L1 (the Debian 12 system tests/packaging/run.sh boots), as pkgtest.service after
# multi-user.target, once per boot. Boot 1 installs the package and checks the daemon, then
# reboots; boot 2 checks autostart, remove and purge, then powers off. Each check prints one line
#   @@PKGTEST step=NAME result=pass|fail [what was seen]@@
# on the console; the host script (run.sh) collects them. Every wait is bounded.
set -uo pipefail
export PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C.UTF-8
dir=/opt/pkgtest          # the .deb, the L2 guest's kernel and initramfs, this script
state=/var/lib/pkgtest    # what boot 1 leaves for boot 2 (not under /var/lib/vmmd: purge removes that)
vm=l2
mkdir -p "$state"
# Every line of the test's own output carries "T| " on the console, so that the host can tell it
# from systemd's and the kernel's lines there.
exec > >(sed -u 's/^/T| /') 2>&1

say() { echo "pkgtest: $*"; }
mark() { echo "@@PKGTEST $*@@"; }
# pass|fail NAME DETAIL: one step's result line.
pass() { mark "step=$1 result=pass${2:+ $2}"; }
fail() { mark "step=$1 result=fail${2:+ $2}"; failed=1; }
failed=0
# wait_for SECONDS COMMAND...: retries COMMAND every second until it succeeds or time runs out.
wait_for() {
  local limit=$1; shift
  local deadline=$((SECONDS + limit))
  local start=$SECONDS said=$SECONDS
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    # A sign of life for the host's watchdog, which stops an L1 that stays silent: once a minute
    # (a try of COMMAND may take seconds, so not on an exact second).
    if [ $((SECONDS - said)) -ge 60 ]; then said=$SECONDS; say "still waiting for '$*' ($((SECONDS - start))s)"; fi
    sleep 1
  done
}
field() {  # field NAME KEY: a top-level field of `vmctl --json info NAME`
  timeout 30 vmctl --json info "$1" 2>/dev/null | tr -d '\n' |
    sed -n "s/.*\"$2\": *\"\{0,1\}\([^\",}]*\)\"\{0,1\}.*/\1/p"
}
agent_ping() { timeout 10 vmctl agent --timeout 5 "$vm" '{"execute":"guest-ping"}'; }
guest_boot_id() { timeout 60 vmctl exec --timeout 50 "$vm" -- cat /proc/sys/kernel/random/boot_id 2>/dev/null | tr -d '\r\n '; }
save() { echo "$1=$2" >>"$state/values"; }
load() { sed -n "s/^$1=//p" "$state/values" 2>/dev/null | tail -n1; }
unit_state() { systemctl is-active "$1" 2>/dev/null; }
# The guest is up when its agent answers (qemu-ga runs once the kit's init has set everything up).
guest_up() { wait_for "${1:-600}" agent_ping; }
# attached PID: vmmd answers for the VM, which runs in worker PID, and the guest agent answers.
attached() {
  local pid=$1 st now
  st=$(field "$vm" state) now=$(field "$vm" pid)
  [ "$st" = running ] && [ "$now" = "$pid" ] && kill -0 "$pid" 2>/dev/null && wait_for 120 agent_ping
}

boot1() {
  say "boot 1: kernel $(uname -r), $(nproc) CPUs, systemd $(systemctl --version | head -n1)"
  if [ -c /dev/kvm ]; then pass kvm "/dev/kvm present"; else fail kvm "no /dev/kvm in L1"; fi

  # --- install ---------------------------------------------------------------------------------
  local deb t0
  deb=$(ls "$dir"/vmmd_*.deb | head -n1)
  t0=$SECONDS
  # As the issue words it; L1 has no network, so every dependency must already be there.
  if (cd "$dir" && timeout 300 apt-get install -y -q -o Dpkg::Progress-Fancy=0 "./${deb##*/}" </dev/null); then
    pass install "apt-get install ./${deb##*/} in $((SECONDS - t0))s"
  else
    fail install "apt-get install ./${deb##*/} failed"; return
  fi
  local sock_en svc_en owner
  sock_en=$(systemctl is-enabled vmmd.socket 2>&1) svc_en=$(systemctl is-enabled vmmd.service 2>&1)
  owner=$(stat -c '%U:%G %a' /run/vmmd 2>&1)
  if [ "$sock_en" = enabled ] && [ "$(unit_state vmmd.socket)" = active ] && getent group vmmd >/dev/null &&
     [ "$owner" = "root:vmmd 750" ] && [ -d /var/lib/vmmd ]; then
    pass installed-units "vmmd.socket enabled+active, vmmd.service $svc_en/$(unit_state vmmd.service), group vmmd, /run/vmmd $owner"
  else
    fail installed-units "vmmd.socket $sock_en/$(unit_state vmmd.socket), vmmd.service $svc_en, group $(getent group vmmd), /run/vmmd $owner, /var/lib/vmmd $(ls -ld /var/lib/vmmd 2>&1)"
  fi

  # --- socket activation -----------------------------------------------------------------------
  # The package may have started vmmd already; stop it so that the socket has to start it.
  systemctl stop vmmd.service
  if [ "$(unit_state vmmd.service)" != inactive ]; then fail socket-activation-root "vmmd.service is $(unit_state vmmd.service) after stop"
  elif out=$(timeout 60 vmctl list 2>&1) && [ "$(unit_state vmmd.service)" = active ]; then
    pass socket-activation-root "vmctl list as root started vmmd.service (pid $(systemctl show -P MainPID vmmd.service))"
  else
    fail socket-activation-root "vmctl list: $out; vmmd.service $(unit_state vmmd.service)"
  fi
  useradd -m -G vmmd alice; useradd -m bob
  systemctl stop vmmd.service
  if out=$(timeout 60 runuser -u alice -- vmctl list 2>&1) && [ "$(unit_state vmmd.service)" = active ]; then
    pass socket-activation-group "vmctl list as alice (group vmmd) started vmmd.service"
  else
    fail socket-activation-group "vmctl list as alice: $out; vmmd.service $(unit_state vmmd.service)"
  fi
  out=$(timeout 60 runuser -u bob -- vmctl list 2>&1); rc=$?
  if [ "$rc" -eq 3 ] || { [ "$rc" -ne 0 ] && grep -qi 'permission denied' <<<"$out"; }; then
    pass non-member-refused "vmctl list as bob (not in vmmd): exit $rc: $(head -n1 <<<"$out")"
  else
    fail non-member-refused "vmctl list as bob: exit $rc: $out"
  fi

  # --- an autostart VM -------------------------------------------------------------------------
  # With per-VM limits where vmmd's unit cgroup (Delegate=yes) has the cpu and memory controllers.
  local limits="" unit_cg
  unit_cg=/sys/fs/cgroup$(systemctl show -P ControlGroup vmmd.service)
  if grep -qw cpu "$unit_cg/cgroup.controllers" 2>/dev/null && grep -qw memory "$unit_cg/cgroup.controllers" 2>/dev/null; then
    limits=', "limits": {"cpu_percent": 150, "memory_overhead_mib": 256}'
    save limits yes
  else
    say "no cpu+memory controllers in $unit_cg ($(cat "$unit_cg/cgroup.controllers" 2>&1)): the VM has no limits"
  fi
  cat >"$state/$vm.json" <<JSON
{"schema": 1, "name": "$vm", "vcpus": 1, "memory": 192,
 "kernel": "$dir/bzImage", "initrd": "$dir/initramfs.cpio", "cmdline": "console=ttyS0 quiet",
 "agent": true, "autostart": true$limits}
JSON
  chmod 0644 "$state/$vm.json"
  t0=$SECONDS
  say "alice defines and starts $vm${limits:+ with limits}"
  if out=$(timeout 60 runuser -u alice -- vmctl define "$state/$vm.json" 2>&1) &&
     out=$(timeout 120 runuser -u alice -- vmctl start "$vm" 2>&1) && guest_up 300; then
    pass vm-start "autostart VM defined and started by alice; guest agent answered after $((SECONDS - t0))s"
  else
    fail vm-start "$out; state $(field "$vm" state); console: $(tail -c 300 /run/vmmd/vms/$vm/console.log 2>&1 | tr '\r\n' '  ')"
    return
  fi
  local pid boot
  pid=$(field "$vm" pid) boot=$(guest_boot_id)
  save worker_pid "$pid"; save guest_boot "$boot"
  say "worker pid $pid, guest boot id $boot"

  # --- restart and stop leave the guest running; vmmd re-attaches ---------------------------------
  local vmmd_before vmmd_after
  vmmd_before=$(systemctl show -P MainPID vmmd.service)
  if timeout 60 systemctl restart vmmd && wait_for 60 vmctl list && vmmd_after=$(systemctl show -P MainPID vmmd.service) &&
     [ "$vmmd_after" != "$vmmd_before" ] && attached "$pid" && [ "$(guest_boot_id)" = "$boot" ]; then
    pass restart-reattach "vmmd $vmmd_before -> $vmmd_after; worker $pid still running, same guest boot, agent answers"
  else
    fail restart-reattach "vmmd $vmmd_before -> ${vmmd_after:-?}; state $(field "$vm" state) pid $(field "$vm" pid) (was $pid)"
  fi
  timeout 60 systemctl stop vmmd.service
  local svc sock alive
  svc=$(unit_state vmmd.service) sock=$(unit_state vmmd.socket)
  kill -0 "$pid" 2>/dev/null && alive=yes || alive=no
  if [ "$svc" = inactive ] && [ "$sock" = active ] && [ "$alive" = yes ] && timeout 60 vmctl list >/dev/null 2>&1 &&
     [ "$(unit_state vmmd.service)" = active ] && attached "$pid" && [ "$(guest_boot_id)" = "$boot" ]; then
    pass stop-reattach "after stop: vmmd.service inactive, socket active, worker $pid alive; vmctl list re-activated vmmd, which re-attached"
  else
    fail stop-reattach "after stop: service $svc, socket $sock, worker alive $alive; then service $(unit_state vmmd.service), state $(field "$vm" state) pid $(field "$vm" pid)"
  fi

  # --- SIGKILL of vmmd alone: systemd restarts it (Restart=on-failure) and it re-attaches -----------
  kill_restart "$pid" "$boot"

  # --- the journal ---------------------------------------------------------------------------------
  # An error of vmmd's own: a VM whose kernel is not a kernel fails to start.
  printf '{"schema": 1, "name": "broken", "memory": 64, "kernel": "/etc/hostname"}\n' >"$state/broken.json"
  timeout 60 vmctl define "$state/broken.json" >/dev/null 2>&1
  timeout 60 vmctl start broken >/dev/null 2>&1
  sleep 2
  timeout 60 vmctl undefine broken >/dev/null 2>&1
  journalctl -u vmmd.service -o json --no-pager >"$state/journal.json" 2>/dev/null
  # vmmd's last lines as the journal keeps them: PRIORITY, then MESSAGE.
  grep '"SYSLOG_IDENTIFIER":"vmmd"' "$state/journal.json" | tail -n 25 | while IFS= read -r entry; do
    echo "journal: PRIORITY=$(sed -n 's/.*"PRIORITY":"\([0-7]\)".*/\1/p' <<<"$entry") $(sed -n 's/.*"MESSAGE":"\(\([^"\\]\|\\.\)*\)".*/\1/p' <<<"$entry")"
  done
  local verdict
  verdict=$(journal_verdict "$state/journal.json")
  case "$verdict" in
    pass*) pass journal "${verdict#pass }" ;;
    *) fail journal "${verdict#fail }" ;;
  esac

  echo 1 >"$state/phase"
  mark "phase=1 done failed=$failed"
}

# in_vm_cgroup PID: the worker's cgroup is vmmd's vm-<name>, with the definition's limits when it
# has them (cpu.max 150 %, memory.max 192 + 256 MiB). Prints what it saw.
in_vm_cgroup() {
  local pid=$1 cg dir cpu mem
  cg=$(sed -n 's/^0:://p' "/proc/$pid/cgroup" 2>/dev/null)
  dir=/sys/fs/cgroup$cg
  cpu=$(cat "$dir/cpu.max" 2>/dev/null) mem=$(cat "$dir/memory.max" 2>/dev/null)
  echo "worker cgroup $cg, cpu.max '${cpu:-none}', memory.max '${mem:-none}'"
  [ "${cg##*/}" = "vm-$vm" ] || return 1
  [ "$(load limits)" = yes ] || return 0
  [ "$cpu" = "150000 100000" ] && [ "$mem" = $(( (192 + 256) << 20 )) ]
}

# kill_restart PID BOOT: `systemctl kill -s KILL --kill-who=main vmmd` leaves cpu and memory enabled
# in the unit's cgroup.subtree_control (vmmd had no chance to disable them); ExecStopPost= (vmmd
# --release-cgroups, in the unit's .control child) must disable them, or systemd cannot start the
# next vmmd there (EBUSY). The new vmmd re-attaches to worker PID and re-applies its limits.
kill_restart() {
  local pid=$1 boot=$2 before after="" unit_cg subtree cg_before cg_after released
  before=$(systemctl show -P MainPID vmmd.service)
  unit_cg=/sys/fs/cgroup$(systemctl show -P ControlGroup vmmd.service)
  subtree=$(cat "$unit_cg/cgroup.subtree_control" 2>&1)
  cg_before=$(in_vm_cgroup "$pid")
  say "before the kill: vmmd $before, $unit_cg/cgroup.subtree_control '$subtree', $cg_before"
  new_main() { after=$(systemctl show -P MainPID vmmd.service); [ "$after" != 0 ] && [ "$after" != "$before" ] && [ "$(unit_state vmmd.service)" = active ]; }
  systemctl kill -s KILL --kill-who=main vmmd.service
  if wait_for 90 new_main && wait_for 60 vmctl list && attached "$pid" && [ "$(guest_boot_id)" = "$boot" ] &&
     cg_after=$(in_vm_cgroup "$pid"); then
    released=$(journalctl -u vmmd.service --no-pager -o cat | grep 'released the cgroup controllers' | tail -n1)
    pass kill-restart "SIGKILL of vmmd $before (subtree_control '$subtree'); systemd restarted it as $after ($(systemctl show -P NRestarts vmmd.service) restarts), which re-attached to worker $pid (same guest boot, agent answers); $cg_after; ExecStopPost: '${released:-no line}'"
  else
    fail kill-restart "SIGKILL of vmmd $before (subtree_control '$subtree'): service $(unit_state vmmd.service), main pid ${after:-?}, state $(field "$vm" state) pid $(field "$vm" pid) (was $pid); ${cg_after:-$(in_vm_cgroup "$pid")}; $(journalctl -u vmmd.service --no-pager -n 8 -o cat | tr '\n' ' ')"
  fi
}

# journal_verdict FILE: "pass DETAIL" when vmmd's lines in the journal (JSON, one entry a line)
# carry levels: an informational line at PRIORITY 6, the failed start at PRIORITY 3 (error), and
# no message still starting with the "<N>" prefix that journald should have taken as the level.
journal_verdict() {
  local f=$1 lines info_line err_line prefixed
  lines=$(grep -c '"SYSLOG_IDENTIFIER":"vmmd"' "$f")
  info_line=$(grep '"SYSLOG_IDENTIFIER":"vmmd"' "$f" | grep '"MESSAGE":"[^"]*defined (uuid' | head -n1)
  # The most severe of the lines about the failed start (vmmd reports it more than once).
  err_line=$(grep '"SYSLOG_IDENTIFIER":"vmmd"' "$f" | grep '"MESSAGE":"[^"]*broken[^"]*start failed' |
             sed -n 's/.*"PRIORITY":"\([0-7]\)".*/\1 &/p' | sort -n | head -n1 | cut -d' ' -f2-)
  prefixed=$(grep '"SYSLOG_IDENTIFIER":"vmmd"' "$f" | grep -c '"MESSAGE":"<[0-7]>')
  local ip ep
  ip=$(sed -n 's/.*"PRIORITY":"\([0-7]\)".*/\1/p' <<<"$info_line")
  ep=$(sed -n 's/.*"PRIORITY":"\([0-7]\)".*/\1/p' <<<"$err_line")
  local msg="$lines vmmd lines; 'defined' at PRIORITY ${ip:-none}, 'broken: start failed' at PRIORITY ${ep:-none (no such line)}, $prefixed with a raw <N> prefix"
  if [ "$lines" -gt 0 ] && [ "$ip" = 6 ] && [ "$ep" = 3 ] && [ "$prefixed" -eq 0 ]; then echo "pass $msg"; else echo "fail $msg"; fi
}

boot2() {
  say "boot 2: kernel $(uname -r)"
  local pid boot t0=$SECONDS
  pid=$(load worker_pid) boot=$(load guest_boot)
  # No client has connected yet: vmmd.service is enabled for boot, and starts the autostart VM.
  local newpid
  if wait_for 300 pgrep -x vmm && guest_up 300; then
    newpid=$(field "$vm" pid)
    local nb; nb=$(guest_boot_id)
    if [ "$(field "$vm" state)" = running ] && [ -n "$nb" ] && [ "$nb" != "$boot" ]; then
      pass reboot-autostart "after the reboot the VM runs again (worker $newpid, new guest boot $nb) $((SECONDS - t0))s into the test"
    else
      fail reboot-autostart "state $(field "$vm" state), guest boot '$nb' (before the reboot '$boot')"
    fi
  else
    fail reboot-autostart "no worker or no guest agent after the reboot: vmmd.service $(unit_state vmmd.service); $(journalctl -u vmmd -b --no-pager | tail -n 5 | tr '\n' ' ')"
  fi
  newpid=$(field "$vm" pid)

  # --- remove keeps the state, purge removes it ----------------------------------------------------
  if timeout 300 apt-get remove -y -q -o Dpkg::Progress-Fancy=0 vmmd </dev/null; then
    local svc sock
    svc=$(unit_state vmmd.service) sock=$(unit_state vmmd.socket)
    if [ "$svc" != active ] && [ "$sock" != active ] && [ -s /var/lib/vmmd/vmmd.db -o -n "$(ls -A /var/lib/vmmd 2>/dev/null)" ] &&
       [ ! -e /usr/sbin/vmmd ]; then
      pass remove "vmmd.service $svc, vmmd.socket $sock, /var/lib/vmmd kept ($(ls /var/lib/vmmd | tr '\n' ' '))"
    else
      fail remove "vmmd.service $svc, vmmd.socket $sock, /var/lib/vmmd: $(ls -la /var/lib/vmmd 2>&1 | tr '\n' ' ')"
    fi
  else
    fail remove "apt-get remove failed"
  fi
  if [ -n "$newpid" ] && kill -0 "$newpid" 2>/dev/null; then
    say "note: the guest's worker $newpid outlives apt-get remove (KillMode=process); killing it"
    kill "$newpid"
  fi
  if timeout 300 apt-get purge -y -q -o Dpkg::Progress-Fancy=0 vmmd </dev/null && [ ! -e /var/lib/vmmd ] && ! dpkg -s vmmd >/dev/null 2>&1; then
    pass purge "/var/lib/vmmd gone, package purged; group vmmd $(getent group vmmd >/dev/null && echo kept || echo removed)"
  else
    fail purge "after purge: $(ls -ld /var/lib/vmmd 2>&1), dpkg: $(dpkg -l vmmd 2>&1 | tail -n1)"
  fi
  echo 2 >"$state/phase"
  mark "phase=2 done failed=$failed"
  sync
  systemctl --no-block poweroff
}

case "$(cat "$state/phase" 2>/dev/null)" in
  "")
    boot1
    sync
    if [ "$(cat "$state/phase" 2>/dev/null)" = 1 ]; then
      say "rebooting"
      systemctl --no-block reboot
    else
      mark "phase=1 aborted"  # a step the rest depends on failed: no second boot
      systemctl --no-block poweroff
    fi ;;
  1) boot2 ;;
  *) say "already done; powering off"; systemctl --no-block poweroff ;;
esac
