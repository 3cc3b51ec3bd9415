# L1-side helpers for scenarios (busybox ash). A scenario is /nested/scenarios/NAME.sh, sourced
# in a subshell with VMM (the kind) and SCENARIO set; it calls l2_run one or more times and
# reports with pass/fail exactly once.
#
# L2 VMM kinds (all get the same QEMU-compatible argv, only the binary and -M differ):
#   qemu-microvm  qemu-system-x86_64 -M microvm,rtc=on -accel kvm
#   qemu-pc       qemu-system-x86_64 -M pc -accel kvm
#   vmm           /opt/vmm/bin/vmm -M $NESTED_VMM_MACHINE (default pc) -accel kvm
#   vmm-pc, vmm-microvm  /opt/vmm/bin/vmm -M pc / -M microvm,rtc=on (QEMU microvm's argv), for
#                 benchmarks that run both machine types in one L1 boot
#   KIND:NAME     a vmm kind run from /opt/vmm/bin/NAME instead (a binary carried with run.sh
#                 --bin, e.g. an older build to compare with in the same L1 boot)
L2_BZIMAGE=/l2/bzImage
L2_VMLINUX=/l2/vmlinux
L2_INITRD=/l2/initramfs.cpio
L2_BASE_APPEND="console=ttyS0 panic=-1 quiet"

# l2_guest bzImage|pvh: sets KERNEL to the guest kernel for that boot protocol and L2_INITRD to
# its initramfs: the kit's Debian kernel, or the one tests/bench/boot --guest minimal carried
# (BENCH_BZIMAGE, BENCH_VMLINUX) with its own small initramfs (BENCH_INITRD).
l2_guest() {
  if [ "$1" = pvh ]; then KERNEL=${BENCH_VMLINUX:-$L2_VMLINUX}; else KERNEL=${BENCH_BZIMAGE:-$L2_BZIMAGE}; fi
  L2_INITRD=${BENCH_INITRD:-/l2/initramfs.cpio}
}

# l2_vmm: sets L2_BIN and L2_MACHINE for the kind in $VMM.
l2_vmm() {
  case "${VMM%%:*}" in
    qemu-microvm) L2_BIN=qemu-system-x86_64; L2_MACHINE=microvm,rtc=on ;;
    qemu-pc) L2_BIN=qemu-system-x86_64; L2_MACHINE=pc ;;
    vmm) L2_BIN=/opt/vmm/bin/vmm; L2_MACHINE=${NESTED_VMM_MACHINE:-pc} ;;
    vmm-pc) L2_BIN=/opt/vmm/bin/vmm; L2_MACHINE=pc ;;
    vmm-microvm) L2_BIN=/opt/vmm/bin/vmm; L2_MACHINE=microvm,rtc=on ;;
    *) echo "unknown VMM kind $VMM"; return 1 ;;
  esac
  case "$VMM" in
    vmm*:*) L2_BIN=/opt/vmm/bin/${VMM#*:} ;;
    *:*) echo "VMM kind $VMM: only vmm kinds take another binary"; return 1 ;;
  esac
}

# l2_run [VMM ARGS...]: boots L2 once with
#   KERNEL (default bzImage)  MEM (256)  SMP (1)  APPEND (extra kernel args)  REBOOT (no-reboot|reboot)
#   L2_CPU (-cpu, default host)
#   TIMEOUT (seconds, 60)  KILL_AFTER (kill after this many ready markers; 0 = never)
#   SOCK TRIGGER SOCK_TEXT: at the first console line containing TRIGGER, connect to the unix
#     socket SOCK (a -qmp or -chardev socket in the VMM ARGS), send SOCK_TEXT; replies are logged
#     as "<ms> SOCK <line>". SOCK_SEND=FILE streams FILE instead of SOCK_TEXT, SOCK_RECV=FILE
#     keeps the replies raw in FILE (bulk transfers both ways at once), SOCK_STALL=S reads
#     nothing for S seconds after connecting (logs the VMM's RSS as SOCK-STALL/SOCK-RESUME).
#   BOOT_DISK BOOT_FORMAT: boot through the VMM's firmware from the disk run.sh attached as
#     --disk BOOT_DISK=... (raw or qcow2) instead of the kit's kernel (no -kernel, -initrd, -append)
#   MARKER (default L2READY): the console line RUN_MARKERS counts and KILL_AFTER applies to
#   L2_WRAP: a command (and its arguments) that runs the VMM, e.g. "tapfd TAP BRIDGE 3 --" to hand
#     it a tap as fd 3 (tests/bench/network)
# The console goes to $LOG (lines prefixed with ms since launch); sets RUN_EXIT RUN_MS
# RUN_MARKER_MS RUN_MARKERS RUN_TIMEOUT RUN_KILLED RUN_ABORTED (see l1run.c) and READY (first marker line).
l2_run() {
  l2_vmm || return 1
  LOG=/tmp/l2-$SCENARIO-$VMM.log
  if [ -n "${BOOT_DISK:-}" ]; then
    dev=$(disk_dev "$BOOT_DISK") || return 1
    set -- -drive "file=$dev,format=${BOOT_FORMAT:-raw},if=virtio" "$@"
  else
    set -- -kernel "${KERNEL:-$L2_BZIMAGE}" -initrd "$L2_INITRD" -append "$L2_BASE_APPEND ${APPEND:-}" "$@"
  fi
  set -- -M "$L2_MACHINE" -accel kvm -cpu "${L2_CPU:-host}" -m "${MEM:-256}" -smp "${SMP:-1}" \
    -nographic -nodefaults -serial stdio "$@"
  [ "${REBOOT:-no-reboot}" = reboot ] || set -- "$@" -no-reboot
  if [ -n "${SOCK:-}" ]; then
    rm -f "$SOCK"
    eval "$(l1run -t "${TIMEOUT:-60}" -m "${MARKER:-L2READY}" -k "${KILL_AFTER:-0}" -x 'emulation failure' -o "$LOG" \
      -s "$SOCK" -T "$TRIGGER" -w "${SOCK_TEXT:-}" ${SOCK_SEND:+-S "$SOCK_SEND"} ${SOCK_RECV:+-R "$SOCK_RECV"} ${SOCK_STALL:+-D "$SOCK_STALL"} \
      -- ${L2_WRAP:-} "$L2_BIN" "$@")"
  else
    eval "$(l1run -t "${TIMEOUT:-60}" -m "${MARKER:-L2READY}" -k "${KILL_AFTER:-0}" -x 'emulation failure' -o "$LOG" \
      -- ${L2_WRAP:-} "$L2_BIN" "$@")"
  fi
  READY=$(grep -m1 'L2READY ' "$LOG" | sed 's/.*L2READY /L2READY /')
  [ -z "${NESTED_VERBOSE:-}" ] || sed "s/^/NESTED-LOG $SCENARIO $VMM: /" "$LOG"
}

# disk_dev NAME: the L1 device of the image run.sh attached as --disk NAME=PATH (/dev/vdb).
disk_dev() {
  d=$(sed -n "s/^$1 //p" /nested/disks 2>/dev/null)
  [ -n "$d" ] && [ -b "/dev/$d" ] || { echo "no disk named $1 (tests/nested/run.sh --disk $1=IMAGE)" >&2; return 1; }
  echo "/dev/$d"
}

# virtio_dev MODEL: the -device name of virtio MODEL (virtio-net, virtio-rng, virtio-serial...)
# on this kind's machine: MODEL-device on microvm (no PCI: virtio-mmio, for QEMU and vmm alike),
# MODEL-pci elsewhere.
virtio_dev() {
  l2_vmm >/dev/null || return 1
  case "$L2_MACHINE" in
    microvm*) echo "$1-device" ;;
    *) echo "$1-pci" ;;
  esac
}
virtio_serial_dev() { virtio_dev virtio-serial; }

# tap_up_when_created IFACE ADDRESS/PREFIX: in the background, waits (up to 30 s) for the VMM to
# create the tap IFACE, then gives it the address and brings it up.
tap_up_when_created() {
  (
    i=0
    while [ $i -lt 300 ] && ! ip link show "$1" >/dev/null 2>&1; do sleep 0.1; i=$((i + 1)); done
    ip addr add "$2" dev "$1" && ip link set "$1" up
  ) &
}

# l1_net_modules: loads what bridges, veth pairs and nftables NAT need (installed by run.sh with
# their dependencies: bridge, veth, nf_tables, nft_chain_nat, nft_masq, nft_nat, nft_ct,
# nft_reject_inet, nft_fib_inet, nft_limit). Forwarding stays as it is (off): whoever sets up NAT
# turns it on.
l1_net_modules() {
  modprobe -a bridge veth nf_tables nft_chain_nat nft_masq nft_nat nft_ct nft_reject_inet nft_fib_inet nft_limit
}

# l1_outside_netns IP: a network namespace "outside" joined to L1 by a veth pair, L1's end
# outveth0 10.99.0.1/24, the namespace's 10.99.0.2/24 (no other route: a guest behind NAT is
# answered only through the masquerade). IP is iproute2's ip (busybox's has no netns; carried
# with --bin). Servers run there with `$IP netns exec outside ...`.
l1_outside_netns() {
  mkdir -p /var/run/netns
  $1 netns add outside && $1 link add outveth0 type veth peer name outveth1 netns outside &&
    $1 addr add 10.99.0.1/24 dev outveth0 && $1 link set outveth0 up &&
    $1 -n outside addr add 10.99.0.2/24 dev outveth1 && $1 -n outside link set outveth1 up && $1 -n outside link set lo up
}

# wait_for SECONDS COMMAND...: retries COMMAND (output discarded) every 0.5 s until it succeeds.
wait_for() {
  n=$(($1 * 2)); shift
  while [ "$n" -gt 0 ]; do "$@" >/dev/null 2>&1 && return 0; sleep 0.5; n=$((n - 1)); done
  return 1
}

# field NAME LINE: the value of NAME=value in LINE
field() { echo "$2" | tr ' ' '\n' | sed -n "s/^$1=//p" | head -n1; }
# word TEXT [N]: TEXT as one word of a result's detail (no spaces, commas or '='), N characters at most
word() { echo "$1" | tr ' ,=' '_;:' | cut -c1-"${2:-90}"; }

_report() {
  echo "NESTED scenario=$SCENARIO vmm=$VMM result=$1 detail=$2"
  echo "$SCENARIO $VMM" >>"/tmp/nested.$1"
}
pass() { _report pass "$1"; }
fail() {
  _report fail "$1"
  [ -z "${NESTED_VERBOSE:-}" ] && [ -f "${LOG:-}" ] && tail -n 25 "$LOG" | sed "s/^/NESTED-LOG $SCENARIO $VMM: /"
}
# xfail REASON: a known failure of this VMM kind (documented in the scenario); does not fail the run.
xfail() {
  echo "NESTED scenario=$SCENARIO vmm=$VMM result=xfail detail=$1"
  echo "$SCENARIO $VMM" >>/tmp/nested.xfail
}

# check_ready CPUS MEM_MIB: the marker says CPUS cpus and a MemTotal that fits MEM_MIB of RAM.
# Prints a failure reason, or nothing.
check_ready() {
  [ -n "$READY" ] || { echo "no-ready-marker(exit=$RUN_EXIT,timeout=$RUN_TIMEOUT)"; return; }
  c=$(field cpus "$READY"); m=$(field memtotal_kb "$READY")
  [ "$c" = "$1" ] || { echo "cpus=$c,want=$1"; return; }
  # MemTotal is RAM less what the kernel keeps for itself: between 70% and 100% of -m.
  [ "$m" -le $(($2 * 1024)) ] && [ "$m" -ge $(($2 * 1024 * 7 / 10)) ] ||
    echo "memtotal_kb=$m,want~$(($2 * 1024))"
}

run_scenario() {
  kind=$1 scenario=$2
  if [ ! -f "/nested/scenarios/$scenario.sh" ]; then
    echo "NESTED scenario=$scenario vmm=$kind result=fail detail=no-such-scenario"
    echo "$scenario $kind" >>/tmp/nested.fail
    return
  fi
  before=$(cat /tmp/nested.pass /tmp/nested.fail /tmp/nested.xfail 2>/dev/null | wc -l)
  (VMM=$kind SCENARIO=$scenario; . "/nested/scenarios/$scenario.sh")
  after=$(cat /tmp/nested.pass /tmp/nested.fail /tmp/nested.xfail 2>/dev/null | wc -l)
  if [ "$after" -eq "$before" ]; then
    echo "NESTED scenario=$scenario vmm=$kind result=fail detail=no-result-reported"
    echo "$scenario $kind" >>/tmp/nested.fail
  fi
}

# Firmware boot from a disk (the firmware-* scenarios; images from tests/guest/disks, attached
# with run.sh --disk): BOOT_DISK and BOOT_FORMAT set by the scenario. FIRMWARE_TIMEOUT bounds one
# boot (default 400 L1 seconds: systemd in L2 under an emulated L1 took 150 to its login prompt on
# a busy host). The login prompt itself ("vmmd-disk login: ") ends no line, so the Debian disk's
# mark is the getty's issue line printed just before it, "Debian GNU/Linux 12 vmmd-disk ttyS0".
FIRMWARE_BANNER='SeaBIOS (version'

# plain_log: $LOG without the ANSI sequences of SeaBIOS's serial console, which moves the cursor
# (ESC[05;10H) whenever its timer flushes the screen, even in the middle of a boot loader's line
# ("vmmd-sysli<ESC>[05;10H<ESC>[05;11Hnux: booting"), so a mark is looked for in the plain text.
plain_log() { tr -d '\033' <"$LOG" | sed 's/\[[0-9;]*[A-Za-z]//g'; }

# firmware_syslinux_check: the SeaBIOS banner on the serial console, SYSLINUX's line, the kit's
# userspace from the disk (L2READY, then acpid and qemu-ga: L2UP); QMP system_powerdown → the
# kit's acpid powers off → the VMM exits 0.
firmware_syslinux_check() {
  TIMEOUT=${FIRMWARE_TIMEOUT:-400} SOCK=/tmp/qmp.sock TRIGGER=L2UP \
  SOCK_TEXT='{"execute":"qmp_capabilities"} {"execute":"system_powerdown"}' \
    l2_run -qmp unix:/tmp/qmp.sock,server=on,wait=off
  banner=$(grep -c "$FIRMWARE_BANNER" "$LOG") loader=$(plain_log | grep -c 'vmmd-syslinux: booting the guest kit')
  if [ "$banner" -ge 1 ] && [ "$loader" -ge 1 ] && [ -n "$READY" ] && grep -q 'L2: power button' "$LOG" &&
     [ "$RUN_EXIT" = 0 ] && [ "$RUN_TIMEOUT" = 0 ]; then
    pass "banner_ms=$(first_ms "$FIRMWARE_BANNER"),syslinux_ms=$(first_ms vmmd-syslinux:),ready_ms=$RUN_MARKER_MS,exit=0,exit_ms=$RUN_MS"
  else
    fail "banner=$banner,syslinux=$loader,ready=${READY:+yes},exit=$RUN_EXIT,timeout=$RUN_TIMEOUT"
  fi
}

# firmware_debian_check reboot|poweroff: SeaBIOS, GRUB's menu and "Booting `vmmd test disk",
# systemd to the login prompt (its issue line); there the real qemu-ga (virtio-serial port
# org.qemu.guest_agent.0) answers guest-get-osinfo (id debian), then guest-shutdown either
# reboots the guest, which comes back through the firmware and GRUB to a second login prompt
# (then the VMM is stopped), or powers it off (the VMM exits 0).
firmware_debian_check() {
  if [ "$1" = reboot ]; then
    boots=2 reboot=reboot text='{"execute":"guest-shutdown","arguments":{"mode":"reboot"}}'
  else
    boots=1 reboot=no-reboot text='{"execute":"guest-shutdown"}'
  fi
  TIMEOUT=$((boots * ${FIRMWARE_TIMEOUT:-400})) MEM=384 REBOOT=$reboot MARKER='vmmd-disk ttyS0' KILL_AFTER=$((boots == 2 ? 2 : 0)) \
  SOCK=/tmp/qga.sock TRIGGER='vmmd-disk ttyS0' SOCK_TEXT="{\"execute\":\"guest-get-osinfo\"} $text" \
    l2_run -chardev socket,id=qga0,path=/tmp/qga.sock,server=on,wait=off -device "$(virtio_serial_dev)" \
      -device virtserialport,chardev=qga0,name=org.qemu.guest_agent.0
  banner=$(grep -c "$FIRMWARE_BANNER" "$LOG") grub=$(grep -c 'Booting `vmmd test disk' "$LOG")
  osid=$(grep 'SOCK ' "$LOG" | grep -o '"id": "[a-z]*"' | head -n1 | sed 's/.*: "//; s/"//')
  ended=yes
  [ "$boots" = 2 ] || [ "$RUN_EXIT" = 0 ] || ended=no  # powered off: the VMM exits 0
  if [ "$banner" -ge "$boots" ] && [ "$grub" -ge "$boots" ] && [ "$RUN_MARKERS" -ge "$boots" ] && [ "$osid" = debian ] &&
     [ "$ended" = yes ] && [ "$RUN_TIMEOUT" = 0 ]; then
    pass "banner_ms=$(first_ms "$FIRMWARE_BANNER"),grub_ms=$(first_ms 'GNU GRUB'),linux_ms=$(first_ms 'Linux version'),login_ms=$RUN_MARKER_MS,os=$osid,boots=$boots,last_login_ms=$(grep 'vmmd-disk ttyS0' "$LOG" | tail -n1 | sed 's/ .*//'),end_ms=$RUN_MS"
  else
    fail "banner=$banner,grub=$grub,logins=$RUN_MARKERS,os=${osid:-none},exit=$RUN_EXIT,timeout=$RUN_TIMEOUT"
  fi
}

# first_ms TEXT: the ms since launch of the first console line containing TEXT (-1 if none).
first_ms() {
  ms=$(plain_log | grep -F -m1 -- "$1" | sed 's/ .*//')
  echo "${ms:--1}"
}

# vmmd_start DIR: a fresh vmmd in L1 (state and run dirs under DIR, workers /opt/vmm/bin/vmm, its
# log DIR/vmmd.log); exports VMMD_SOCKET for vmctl, sets VMMD_PID, returns once the socket exists
# (or after 10 s). For the scenarios that drive vmmd (vmm kind only, --bin vmmd --bin vmctl).
vmmd_start() {
  rm -rf "$1" && mkdir -p "$1/state" "$1/run"
  export VMMD_SOCKET=$1/run/vmmd.sock
  /opt/vmm/bin/vmmd --state-dir "$1/state" --run-dir "$1/run" --vmm /opt/vmm/bin/vmm --foreground 2>"$1/vmmd.log" &
  VMMD_PID=$!
  i=0; while [ ! -S "$VMMD_SOCKET" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
}

# needs_vmm_bins TOOL...: true when the kind is vmm and every TOOL was carried to /opt/vmm/bin
# (--bin); else reports the failure (needs-vmm-and-bin-TOOL) and is false: the scenario returns.
needs_vmm_bins() {
  for t in "$@"; do
    if [ "$VMM" != vmm ] || [ ! -x "/opt/vmm/bin/$t" ]; then
      fail "needs-vmm-and-bin-$t(vmm=$VMM)"
      return 1
    fi
  done
}

# vmctl_state NAME: the VM's state from `vmctl --json info` (errors to $VMCTL_ERR, default stderr).
vmctl_state() {
  /opt/vmm/bin/vmctl --json info "$1" 2>>"${VMCTL_ERR:-/dev/stderr}" | grep -o '"state": *"[a-z-]*"' | head -n1 |
    sed 's/.*"\([a-z-]*\)"$/\1/'
}

# QMP from the shell (unixcat: busybox nc has no unix sockets).
# qmp_talk SOCKET COMMAND...: one conversation with the monitor at SOCKET, capabilities negotiated
# first; prints the greeting, the replies and any events, one JSON object a line.
qmp_talk() {
  sock=$1; shift
  { echo '{"execute":"qmp_capabilities"}'; for c in "$@"; do echo "$c"; done; } | unixcat "$sock"
}
# json_value NAME TEXT: the first value of the JSON member NAME in TEXT (a number or plain string).
json_value() { echo "$2" | grep -o "\"$1\": *\"*[^,}\"]*" | head -n1 | sed 's/.*: *"*//'; }
# qmp_migrate SOCKET URI: `migrate` to URI through the monitor at SOCKET, then query-migrate every
# 0.5 s until an end state (at most 120 s); prints what QEMU's query-migrate says and the run state
# the source is left in:
#   status=S total_ms=T downtime_ms=D setup_ms=U ram_bytes=B iterations=I state=R
qmp_migrate() {
  qmp_talk "$1" "{\"execute\":\"migrate\",\"arguments\":{\"uri\":\"$2\"}}" >/dev/null
  n=240 info=
  while [ "$n" -gt 0 ]; do
    info=$(qmp_talk "$1" '{"execute":"query-migrate"}' | grep '"status"' | tail -n1)
    case $(json_value status "$info") in completed|failed|cancelled) break ;; esac
    sleep 0.5; n=$((n - 1))
  done
  state=$(json_value status "$(qmp_talk "$1" '{"execute":"query-status"}' | grep '"running"' | tail -n1)")
  echo "status=$(json_value status "$info") total_ms=$(json_value total-time "$info")" \
    "downtime_ms=$(json_value downtime "$info") setup_ms=$(json_value setup-time "$info")" \
    "ram_bytes=$(json_value transferred "$info") iterations=$(json_value dirty-sync-count "$info") state=$state"
}
