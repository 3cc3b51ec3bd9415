# Live migration's failure paths and disk I/O with one running Linux guest (issue 17): the kit's
# guest runs l2/tests/migrate-disk.sh (migrate.sh's memory rounds, one console line each with
# boot id and uptime, plus 512 numbered 16 KiB blocks written with fsync to a qcow2 virtio-blk
# disk, one every ~0.1 s, the written range read back and compared every 32 blocks:
# "MIGDISK blocks=N verify=ok"). One guest boot; each step starts the vmm processes it needs,
# named after their console logs (/tmp/l2-$SCENARIO-NAME-$VMM.log):
#   disk  A boots the guest; B (-incoming unix:) takes it while the disk is written: completed,
#         A in postmigrate; on B the rounds go on and the disk checks pass over blocks written
#         before, during and after the move (the source drains its requests and hands the image
#         over; B takes the locks and reads the qcow2 metadata afresh)
#   cancel max-bandwidth 2 MB/s, B -> C, migrate_cancel while active: B "cancelled" and running,
#         its rounds go on; C exits 1 with its reason, never ran the guest
#   kill  B -> D at 2 MB/s, D's vmm SIGKILLed while active: B "failed" with a reason, running
#   mismatch  B -> E (-m 256): "failed", E names the RAM sizes; B -> F without the disk: F names
#         the device (virtio-blk, id blk0); B runs on. Then B -> G (same configuration) completes
#   corrupt  G -> exec:cat > FILE: completed, G postmigrate; `cont` runs it again (disks taken
#         back); 8 bytes in its middle changed on the way (-incoming "exec:head ...; printf ...;
#         tail ..."): H exits 1
#         with a checksum error, never runs the guest; G quits and I restores the untouched
#         file: the guest runs on with the same boot id from the round it was saved at
# Throughout: one boot id on every console, no MISMATCH round, no failed disk check or write;
# at the end (no VMM left) `qemu-img check` finds the image clean. Needs VMM=vmm and qemu-img
# (--bin). ~2 minutes of L1 time (130 s on an idle host), guests of 192 MiB.
if [ "${VMM%%-*}" != vmm ] || ! command -v qemu-img >/dev/null; then
  fail "needs-vmm-and-bin-qemu-img(vmm=$VMM)"
  return 0 2>/dev/null || exit 0
fi
W=/tmp/migrate-faults
rm -rf "$W" && mkdir -p "$W"
t0=$(cut -d' ' -f1 /proc/uptime)
: >"$W/started"
qemu-img create -q -f qcow2 "$W/disk.qcow2" 64M
blk=$(virtio_dev virtio-blk)
SLOW=2000000  # bytes/s: a 192 MiB guest takes a minute or more, so the migration is still active

# vmm_start NAME MEM DISK(yes|no) [ARGS...]: the guest's VMM NAME in the background (QMP on
# $W/NAME.qmp), the qcow2 disk attached as drive d0 / device blk0 unless DISK is no; when it
# exits, $W/NAME.exit holds "exit=STATUS".
vmm_start() {
  name=$1 mem=$2 disk=$3; shift 3
  echo "$name" >>"$W/started"
  [ "$disk" = no ] || set -- -drive "file=$W/disk.qcow2,format=qcow2,if=none,id=d0" -device "$blk,drive=d0,id=blk0" "$@"
  (
    SCENARIO=$SCENARIO-$name
    KERNEL=$L2_BZIMAGE SMP=1 MEM=$mem APPEND="l2.test=migrate-disk" TIMEOUT=400 l2_run \
      -qmp "unix:$W/$name.qmp,server=on,wait=off" "$@"
    echo "exit=$RUN_EXIT" >"$W/$name.exit"
  ) &
}
console() { cat "/tmp/l2-$SCENARIO-$1-$VMM.log" 2>/dev/null; }
qmp() { name=$1; shift; qmp_talk "$W/$name.qmp" "$@"; }
# incoming NAME: waits for NAME's QMP socket and its unix: listener $W/NAME.mig.
incoming() { wait_for 60 test -S "$W/$1.qmp" -a -S "$W/$1.mig"; }
rounds() { console "$1" | grep -c 'MIGMEM round=.* ok '; }
# wait_rounds NAME N SECONDS: until NAME's console has N more verified rounds than now.
wait_rounds() {
  target=$(($(rounds "$1") + $2)) n=$(($3 * 2))
  while [ "$n" -gt 0 ]; do [ "$(rounds "$1")" -ge "$target" ] && return 0; sleep 0.5; n=$((n - 1)); done
  return 1
}
# disk_blocks NAME: the block count of NAME's last passed disk check (0 if none).
disk_blocks() { console "$1" | sed -n 's/.*MIGDISK blocks=\([0-9]*\) verify=ok .*/\1/p' | tail -n1 | grep . || echo 0; }
disk_at_least() { [ "$(disk_blocks "$1")" -ge "$2" ]; }
# migration NAME: NAME's query-migrate as "STATUS|ERROR-DESC|TRANSFERRED"; run_state NAME.
migration() {
  info=$(qmp "$1" '{"execute":"query-migrate"}' | grep '"return"' | tail -n1)
  echo "$(json_value status "$info")|$(echo "$info" | sed -n 's/.*"error-desc": *"\([^"]*\)".*/\1/p')|$(json_value transferred "$info")"
}
run_state() { json_value status "$(qmp "$1" '{"execute":"query-status"}' | grep '"running"' | tail -n1)"; }
# until_migration NAME SECONDS STATUS...: polls query-migrate until one of STATUS; $M the last.
until_migration() {
  name=$1 n=$(($2 * 2)); shift 2
  while [ "$n" -gt 0 ]; do
    M=$(migration "$name")
    for s in "$@"; do [ "${M%%|*}" = "$s" ] && return 0; done
    sleep 0.5; n=$((n - 1))
  done
  return 1
}
# active_with_bytes NAME: NAME's migration is active and has sent over 1 MB.
active_with_bytes() { M=$(migration "$1"); [ "${M%%|*}" = active ] && [ "${M##*|}" -gt 1000000 ] 2>/dev/null; }
bandwidth() { qmp "$1" "{\"execute\":\"migrate-set-parameters\",\"arguments\":{\"max-bandwidth\":$2}}" >/dev/null; }
exit_of() { sed -n 's/^exit=//p' "$W/$1.exit" 2>/dev/null; }
# said NAME TEXT: NAME's console (the vmm's stderr included) has TEXT.
said() { console "$1" | grep -qF -- "$2"; }
: >"$W/detail"
# step TEXT: one more part of the detail, and a progress line on L1's console (kept in run.sh's log).
step() {
  printf ',%s' "$1" >>"$W/detail"
  echo "NESTED-LOG $SCENARIO $VMM: at $(cut -d' ' -f1 /proc/uptime)s: $1"
}
all_exited() { for v in $(cat "$W/started"); do [ -e "$W/$v.exit" ] || return 1; done; }
finish() {
  for v in $(cat "$W/started"); do [ -e "$W/$v.exit" ] || qmp $v '{"execute":"quit"}' >/dev/null 2>&1; done
  wait_for 30 all_exited
  rm -f "$W/state"  # ~150 MB of L1's RAM
  detail=$(cut -c2- "$W/detail")
  if [ "$1" = pass ]; then
    pass "$detail,l1_s=$(awk -v t="$t0" '{ printf "%d", $1 - t }' /proc/uptime)"
  else
    for v in $(cat "$W/started"); do console $v | tail -n 6 | sed "s|^|NESTED-LOG $SCENARIO $VMM: $v: |"; done
    fail "${detail:-none},failed-at=$2"
  fi
}
stop_at() { finish fail "$1"; }

# ---- disk: A -> B while the guest writes its disk -------------------------------------------
vmm_start a 192 yes
wait_rounds a 3 150 && wait_for 90 disk_at_least a 32 || { stop_at a-boot; return 0 2>/dev/null || exit 0; }
vmm_start b 192 yes -incoming "unix:$W/b.mig"
incoming b || { stop_at b-incoming; return 0 2>/dev/null || exit 0; }
before=$(disk_blocks a)
qmp_migrate "$W/a.qmp" "unix:$W/b.mig" >"$W/mig-ab"
grep -q 'status=completed .*state=postmigrate' "$W/mig-ab" || { stop_at "disk-migrate:$(word "$(cat "$W/mig-ab")")"; return 0 2>/dev/null || exit 0; }
moved=$(disk_blocks a)
# A check on B past the last one on A: the range read back spans blocks written before, during
# and after the move.
disk_target=$((moved + 32 > 512 ? 512 : moved + 32))
wait_rounds b 3 60 && wait_for 90 disk_at_least b $disk_target || { stop_at "disk-on-b:a=$moved,b=$(disk_blocks b)"; return 0 2>/dev/null || exit 0; }
qmp a '{"execute":"quit"}' >/dev/null
step "disk:blocks=$before/$moved/$(disk_blocks b),$(tr ' ' ',' <"$W/mig-ab" | sed 's/,state=.*//')"

# ---- cancel: B -> C at 2 MB/s, migrate_cancel while active ----------------------------------
vmm_start c 192 yes -incoming "unix:$W/c.mig"
incoming c || { stop_at c-incoming; return 0 2>/dev/null || exit 0; }
bandwidth b $SLOW
qmp b "{\"execute\":\"migrate\",\"arguments\":{\"uri\":\"unix:$W/c.mig\"}}" >/dev/null
wait_for 60 active_with_bytes b || { stop_at "cancel-not-active:$(word "$M")"; return 0 2>/dev/null || exit 0; }
qmp b '{"execute":"migrate_cancel"}' >/dev/null
until_migration b 30 cancelled failed completed
[ "${M%%|*}" = cancelled ] && [ "$(run_state b)" = running ] || { stop_at "cancel:$(word "$M"),state=$(run_state b)"; return 0 2>/dev/null || exit 0; }
wait_for 30 test -e "$W/c.exit" && [ "$(exit_of c)" = 1 ] && said c 'load of migration failed' && ! said c MIGMEM ||
  { stop_at "cancel-destination:exit=$(exit_of c)"; return 0 2>/dev/null || exit 0; }
wait_rounds b 3 60 || { stop_at cancel-rounds; return 0 2>/dev/null || exit 0; }
step "cancel:cancelled,running,c-exit=1:$(word "$(console c | grep -m1 'load of migration failed' | sed 's/^[0-9.]* //')" 70)"

# ---- kill: B -> D at 2 MB/s, D's vmm killed while active ------------------------------------
vmm_start d 192 yes -incoming "unix:$W/d.mig"
incoming d || { stop_at d-incoming; return 0 2>/dev/null || exit 0; }
qmp b "{\"execute\":\"migrate\",\"arguments\":{\"uri\":\"unix:$W/d.mig\"}}" >/dev/null
wait_for 60 active_with_bytes b || { stop_at "kill-not-active:$(word "$M")"; return 0 2>/dev/null || exit 0; }
victim=
for p in /proc/[0-9]*; do
  case "$(tr '\0' ' ' <"$p/cmdline" 2>/dev/null)" in /opt/vmm/bin/vmm*"$W/d.qmp"*) victim=${p#/proc/} ;; esac
done
[ -n "$victim" ] && kill -KILL "$victim" || { stop_at kill-no-pid; return 0 2>/dev/null || exit 0; }
until_migration b 60 failed cancelled completed
[ "${M%%|*}" = failed ] && [ -n "$(echo "$M" | cut -d'|' -f2)" ] && [ "$(run_state b)" = running ] ||
  { stop_at "kill:$(word "$M"),state=$(run_state b)"; return 0 2>/dev/null || exit 0; }
wait_for 30 test -e "$W/d.exit" && [ "$(exit_of d)" = 137 ] || { stop_at "kill-exit:$(exit_of d)"; return 0 2>/dev/null || exit 0; }
wait_rounds b 3 60 || { stop_at kill-rounds; return 0 2>/dev/null || exit 0; }
step "kill:failed:$(word "$(echo "$M" | cut -d'|' -f2)" 60),running"

# ---- mismatch: B -> E (-m 256), B -> F (no disk); then B -> G completes -----------------------
bandwidth b 1073741824
# refused_by NAME MIB DISK LABEL ERROR: B's migration to a new vmm NAME (MIB of RAM, DISK yes|no)
# fails, B runs on, NAME exits 1 saying ERROR.
refused_by() {
  vmm_start "$1" "$2" "$3" -incoming "unix:$W/$1.mig"
  incoming "$1" || { stop_at "$1-incoming"; return 1; }
  qmp_migrate "$W/b.qmp" "unix:$W/$1.mig" >"$W/mig-b$1"
  grep -q 'status=failed .*state=running' "$W/mig-b$1" && wait_for 30 test -e "$W/$1.exit" && [ "$(exit_of "$1")" = 1 ] && said "$1" "$5" ||
    { stop_at "mismatch-$4:$(word "$(cat "$W/mig-b$1")"),$1-exit=$(exit_of "$1")"; return 1; }
}
refused_by e 256 yes ram 'RAM size differs: the source has 192 MiB, the destination 256 MiB' || { return 0 2>/dev/null || exit 0; }
refused_by f 192 no device "device #0 $blk (id blk0): the destination has none" || { return 0 2>/dev/null || exit 0; }
wait_rounds b 3 60 || { stop_at mismatch-rounds; return 0 2>/dev/null || exit 0; }
step "mismatch:ram-named,device-named,running"
vmm_start g 192 yes -incoming "unix:$W/g.mig"
incoming g || { stop_at g-incoming; return 0 2>/dev/null || exit 0; }
qmp_migrate "$W/b.qmp" "unix:$W/g.mig" >"$W/mig-bg"
grep -q 'status=completed .*state=postmigrate' "$W/mig-bg" || { stop_at "after-faults:$(word "$(cat "$W/mig-bg")")"; return 0 2>/dev/null || exit 0; }
on_g=$(disk_blocks b)
wait_rounds g 2 60 && wait_for 60 disk_at_least g "$on_g" || { stop_at "g-rounds:disk=$(disk_blocks g)"; return 0 2>/dev/null || exit 0; }
qmp b '{"execute":"quit"}' >/dev/null
step "again:completed"

# ---- corrupt: G -> file, cont; a changed copy is refused; the file restores the guest ---------
saved_round=$(console g | sed -n 's/.*MIGMEM round=\([0-9]*\) ok .*/\1/p' | tail -n1)
qmp_migrate "$W/g.qmp" "exec:cat > $W/state" >"$W/mig-file"
grep -q 'status=completed .*state=postmigrate' "$W/mig-file" || { stop_at "to-file:$(word "$(cat "$W/mig-file")")"; return 0 2>/dev/null || exit 0; }
size=$(wc -c <"$W/state")
qmp g '{"execute":"cont"}' >"$W/cont"
[ "$(run_state g)" = running ] && wait_rounds g 3 60 || { stop_at "cont:$(word "$(grep -o '"desc[^}]*' "$W/cont")")"; return 0 2>/dev/null || exit 0; }
# The changed copy is made on the fly (L1's /tmp is RAM: no room for a second copy).
half=$((size / 2))
vmm_start h 192 yes -incoming "exec:head -c $half $W/state; printf CORRUPT!; tail -c +$((half + 9)) $W/state"
wait_for 60 test -e "$W/h.exit" && [ "$(exit_of h)" = 1 ] && said h 'checksum mismatch' && ! said h MIGMEM ||
  { stop_at "corrupt:exit=$(exit_of h),$(word "$(console h | grep -m1 -i 'migration' | sed 's/^[0-9.]* //')")"; return 0 2>/dev/null || exit 0; }
corrupt_error=$(console h | grep -m1 'checksum mismatch' | sed 's/.*\(checksum mismatch[^,]*\).*/\1/')
qmp g '{"execute":"quit"}' >/dev/null
wait_for 30 test -e "$W/g.exit" || { stop_at g-quit; return 0 2>/dev/null || exit 0; }
vmm_start i 192 yes -incoming "exec:cat $W/state"
wait_rounds i 3 90 && wait_for 60 disk_at_least i 1 || { stop_at "restore:exit=$(exit_of i)"; return 0 2>/dev/null || exit 0; }
first_i=$(console i | sed -n 's/.*MIGMEM round=\([0-9]*\) ok .*/\1/p' | head -n1)
[ "$first_i" -ge "$saved_round" ] 2>/dev/null || { stop_at "restore-round:saved=$saved_round,first=$first_i"; return 0 2>/dev/null || exit 0; }
qmp i '{"execute":"quit"}' >/dev/null
wait_for 30 test -e "$W/i.exit" || { stop_at i-quit; return 0 2>/dev/null || exit 0; }
step "corrupt:bytes=$size,$(word "$corrupt_error" 60),restored-from-round=$saved_round/$first_i"

# ---- the guest's own view over every console, and the image ----------------------------------
wait_for 30 all_exited || { stop_at vmm-left; return 0 2>/dev/null || exit 0; }
# Whole lines only: a console cut mid-line by a quit (its worker's last words follow on the same
# line) would give a shortened boot id.
boots=$(for v in a b g i; do console $v; done | grep -E 'MIGMEM round=[0-9]+ (ok|MISMATCH) bad=[0-9]+ boot=[0-9a-f-]{36} uptime=[0-9.]+$' |
  grep -o 'boot=[0-9a-f-]*' | sort -u)
[ "$(echo "$boots" | wc -l)" = 1 ] && [ -n "$boots" ] && step one-boot-id || { stop_at "boot-ids=$(echo $boots | tr ' ' '/')"; return 0 2>/dev/null || exit 0; }
! for v in a b g i; do console $v; done | grep -qE 'MISMATCH|verify=BAD|write-failed' && step no-mismatch-no-bad-block ||
  { stop_at mismatch-or-bad-block; return 0 2>/dev/null || exit 0; }
step "disk-checks=$(for v in a b g i; do console $v; done | grep -c 'verify=ok')"
qemu-img check -q "$W/disk.qcow2" >"$W/check" 2>&1 && step image-clean || { stop_at "image:$(word "$(head -n2 "$W/check")")"; return 0 2>/dev/null || exit 0; }
finish pass
