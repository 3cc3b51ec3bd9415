# Live migration of a running Linux guest between vmm processes in one L1 (issue 17): the kit's
# guest runs l2/tests/migrate.sh (a 16 MiB tmpfs copy checked by md5 every round, one console
# line per round with its boot id and uptime, and a TCP stream of numbered lines to a busybox nc
# in L1). Three vmm processes, each with the console on its stdout and its own tap on one bridge
# (migbr0, 10.0.2.1/24; the guest is 10.0.2.15): A boots the guest; B is started with
# `-incoming unix:` and A migrates to it; C is started with `-incoming tcp:` and B migrates to
# it. Checks: query-migrate on each source "completed" with RAM statistics and a downtime, each
# source then in "postmigrate"; every round line on the three consoles carries one boot id, the
# rounds and the uptime go on across each move, and no round reports a mismatch; the TCP stream
# that the one accepted connection carries keeps growing after each move with no gap in its
# numbers. Needs VMM=vmm and iproute2's ip (--bin; the bridge and its ports).
IP=/opt/vmm/bin/ip
if [ "${VMM%%-*}" != vmm ] || [ ! -x "$IP" ]; then
  fail "needs-vmm-and-bin-ip(vmm=$VMM)"
  return 0 2>/dev/null || exit 0
fi
W=/tmp/migrate-linux
rm -rf "$W" && mkdir -p "$W"
nic=$(virtio_dev virtio-net)
l1_net_modules >"$W/setup.log" 2>&1
$IP link set lo up  # the tcp: migration goes over 127.0.0.1
# A fixed bridge address (see vmmd-migrate.sh): taps come and go here.
$IP link add migbr0 address 02:00:00:00:02:01 type bridge && $IP addr add 10.0.2.1/24 dev migbr0 && $IP link set migbr0 up
(sleep 400 | nc -l -p 7000 >"$W/tcp") &
receiver=$!

# vmm_start NAME TAP [ARGS...]: the guest's VMM NAME in the background, QMP on $W/NAME.qmp, its
# NIC on the tap TAP, put on migbr0 once the VMM has made it. Console: see console().
vmm_start() {
  name=$1 tap=$2; shift 2
  (
    i=0
    while [ $i -lt 300 ] && [ ! -e "/sys/class/net/$tap" ]; do sleep 0.1; i=$((i + 1)); done
    $IP link set "$tap" master migbr0 && $IP link set "$tap" up
  ) >>"$W/setup.log" 2>&1 &
  (
    SCENARIO=$SCENARIO-$name
    KERNEL=$L2_BZIMAGE SMP=1 MEM=192 APPEND="l2.test=migrate vmmd.net=10.0.2.15/24" TIMEOUT=240 l2_run \
      -qmp "unix:$W/$name.qmp,server=on,wait=off" -netdev "tap,id=net0,ifname=$tap,script=no,downscript=no" \
      -device "$nic,netdev=net0,mac=52:54:00:12:34:78" "$@"
    echo "exit=$RUN_EXIT timeout=$RUN_TIMEOUT" >"$W/$name.exit"
  ) &
}
console() { cat "/tmp/l2-$SCENARIO-$1-$VMM.log" 2>/dev/null; }
qmp() { name=$1; shift; qmp_talk "$W/$name.qmp" "$@"; }
rounds() { console "$1" | grep -c 'MIGMEM round=.* ok '; }
# wait_rounds NAME N SECONDS: until NAME's console has N more verified rounds than now.
wait_rounds() {
  target=$(($(rounds "$1") + $2)) n=$(($3 * 2))
  while [ "$n" -gt 0 ]; do [ "$(rounds "$1")" -ge "$target" ] && return 0; sleep 0.5; n=$((n - 1)); done
  return 1
}
# migrate SRC URI LABEL: SRC's VMM migrates to URI; the outcome (qmp_migrate) in $W/LABEL.
migrate() { qmp_migrate "$W/$1.qmp" "$2" >"$W/$3"; }
: >"$W/detail"
step() { printf ',%s' "$1" >>"$W/detail"; }
tcp_lines() { wc -l <"$W/tcp"; }
# tcp_gapless N: each of the stream's first N lines is "tcp I", I its line number from 0.
tcp_gapless() { head -n "$1" "$W/tcp" | awk '$0 != "tcp " NR - 1 { bad = 1 } END { exit bad }'; }
finish() {
  for v in a b c; do [ -S "$W/$v.qmp" ] && qmp $v '{"execute":"quit"}' >/dev/null 2>&1; done
  wait_for 30 test -e "$W/a.exit" -a -e "$W/c.exit"
  kill $receiver 2>/dev/null
  detail=$(cut -c2- "$W/detail")
  if [ "$1" = pass ]; then
    pass "$detail"
  else
    for v in a b c; do console $v | tail -n 8 | sed "s|^|NESTED-LOG $SCENARIO $VMM: $v: |"; done
    tail -n 5 "$W/setup.log" | sed "s|^|NESTED-LOG $SCENARIO $VMM: setup: |"
    fail "${detail:-none},failed-at=$2"
  fi
}

vmm_start a miga0
wait_rounds a 3 120 || { finish fail a-rounds; return 0 2>/dev/null || exit 0; }
vmm_start b migb0 -incoming "unix:$W/ab.mig"
wait_for 60 test -S "$W/ab.mig" -a -S "$W/b.qmp" || { finish fail b-incoming; return 0 2>/dev/null || exit 0; }
tcp_a=$(tcp_lines)
migrate a "unix:$W/ab.mig" mig-unix
step "unix:$(tr ' ' ',' <"$W/mig-unix")"
grep -q 'status=completed .*state=postmigrate' "$W/mig-unix" || { finish fail unix-migrate; return 0 2>/dev/null || exit 0; }
wait_rounds b 3 60 || { finish fail b-rounds; return 0 2>/dev/null || exit 0; }
tcp_b=$(tcp_lines)

vmm_start c migc0 -incoming tcp:127.0.0.1:4446
# Its QMP socket comes before its listener (as with QEMU): wait for 127.0.0.1:4446 (0x115E) in
# state LISTEN (0A) too, else the migrate can come first and be refused.
c_listening() { grep -q '^ *[0-9]*: 0100007F:115E 00000000:0000 0A ' /proc/net/tcp; }
wait_for 60 test -S "$W/c.qmp" && wait_for 60 c_listening || { finish fail c-incoming; return 0 2>/dev/null || exit 0; }
sleep 1
migrate b tcp:127.0.0.1:4446 mig-tcp
step "tcp:$(tr ' ' ',' <"$W/mig-tcp")"
grep -q 'status=completed .*state=postmigrate' "$W/mig-tcp" || { finish fail tcp-migrate; return 0 2>/dev/null || exit 0; }
wait_rounds c 3 60 || { finish fail c-rounds; return 0 2>/dev/null || exit 0; }
tcp_c=$(tcp_lines)

# The guest's own view across the three consoles. A line the move cut in two (its start on one
# console, the rest on the next) is left out.
round_lines() { console "$1" | grep -E 'MIGMEM round=[0-9]+ (ok|MISMATCH) bad=[0-9]+ boot=[0-9a-f-]{36} uptime=[0-9.]+$'; }
boots=$(for v in a b c; do round_lines $v; done | sed 's/.*boot=\([0-9a-f-]*\).*/\1/' | sort -u)
[ "$(echo "$boots" | wc -l)" = 1 ] && [ -n "$boots" ] && step one-boot-id || { finish fail "boot-ids=$(echo $boots | tr ' ' '/')"; return 0 2>/dev/null || exit 0; }
! for v in a b c; do console $v; done | grep -q MISMATCH && step no-mismatch || { finish fail mismatch; return 0 2>/dev/null || exit 0; }
# last_of/first_of NAME FIELD: FIELD of NAME's last/first round line
last_of() { round_lines "$1" | tail -n1 | grep -o "$2=[0-9.]*" | cut -d= -f2; }
first_of() { round_lines "$1" | head -n1 | grep -o "$2=[0-9.]*" | cut -d= -f2; }
continues() { awk -v a="$(last_of "$1" "$3")" -v b="$(first_of "$2" "$3")" 'BEGIN { exit !(a != "" && b != "" && b > a) }'; }
for f in round uptime; do
  continues a b $f && continues b c $f && step "$f-continues" || { finish fail "$f:a=$(last_of a $f),b=$(first_of b $f)..$(last_of b $f),c=$(first_of c $f)"; return 0 2>/dev/null || exit 0; }
done
step "rounds=$(last_of c round),uptime=$(first_of a uptime)..$(last_of c uptime)"
[ "$tcp_a" -gt 0 ] && [ "$tcp_b" -gt "$tcp_a" ] && [ "$tcp_c" -gt "$tcp_b" ] && tcp_gapless "$tcp_c" &&
  step "tcp-lines=$tcp_a/$tcp_b/$tcp_c" || { finish fail "tcp-lines=$tcp_a/$tcp_b/$tcp_c"; return 0 2>/dev/null || exit 0; }
finish pass
