# A bzImage whose kernel vmm decompresses itself (vmm/boot/bzimage_extract.h) runs where vmm put
# it: three boots of the kit's bzImage, each printing the kernel's _text from /proc/kallsyms
# (l2.test=kaslr), with vmm's debug log on (VMM_LOG=debug), which names the physical place and
# the virtual offset it chose.
#   1. KASLR: _text is 0xffffffff81000000 (where Linux links it) plus the offset vmm logged.
#   2. nokaslr on the command line: vmm logs physical 0x1000000, offset 0; _text is the link address.
#   3. VMM_KERNEL_EXTRACT=0: vmm leaves the decompressing to the guest, logs nothing of it, and the
#      kernel still boots (the guest's decompressor picks its own place).
# The first boot's debug log also carries vmm's start-up timeline, in order (starting, machine
# built, VM created, images loaded, vCPUs started). vmm only: QEMU always runs the guest's
# decompressor.
W=/tmp/boot-kaslr
rm -rf "$W" && mkdir -p "$W"
detail=
# boot_once NAME APPEND: one boot with l2.test=kaslr; leaves vmm's log line in $W/NAME.log and
# the guest's _text in $W/NAME.text
boot_once() {
  KERNEL=$L2_BZIMAGE APPEND="l2.test=kaslr $2" l2_run
  cp "$LOG" "$W/$1.console"
  grep -m1 'decompressed by the worker' "$LOG" | tr -d '\r' >"$W/$1.log"
  tr -d '\r' <"$LOG" | sed -n 's/.*L2KASLR text=\([0-9a-f]*\).*/\1/p' | head -n1 >"$W/$1.text"
}
hex_of() { sed -n "s/.*$1 0x\([0-9a-f]*\).*/\1/p" "$2"; }

export VMM_LOG=debug
boot_once kaslr ""
offset=$(hex_of "virtual offset" "$W/kaslr.log")
text=$(cat "$W/kaslr.text")
want=$(printf '%x' $((0xffffffff81000000 + 0x${offset:-0})))
if [ -z "$offset" ] || ! grep -q '(KASLR)' "$W/kaslr.log"; then
  fail "kaslr:no-log:$(tail -n3 "$W/kaslr.console" | tr ' \n' '_/' | cut -c1-200)"
elif [ "$text" != "$want" ]; then
  fail "kaslr:text=$text,want=$want,offset=$offset"
elif [ "$(grep -a -o -e 'vmm: starting' -e 'vmm: machine built' -e 'power-on: VM created in' \
  -e 'power-on: kernel and initrd loaded into guest RAM in' -e 'power-on: vCPUs started' "$W/kaslr.console" | tr '\n' '|')" != \
  'vmm: starting|vmm: machine built|power-on: VM created in|power-on: kernel and initrd loaded into guest RAM in|power-on: vCPUs started|' ]; then
  fail "kaslr:timeline:$(grep -a 'vmm: ' "$W/kaslr.console" | tr ' \n' '_/' | cut -c1-300)"
else
  detail="kaslr:offset=0x$offset,physical=0x$(hex_of at "$W/kaslr.log"),text=$text"
  boot_once nokaslr nokaslr
  text=$(cat "$W/nokaslr.text")
  if [ "$(hex_of at "$W/nokaslr.log")" != 1000000 ] || [ "$(hex_of "virtual offset" "$W/nokaslr.log")" != 0 ] ||
    [ "$text" != ffffffff81000000 ]; then
    fail "$detail,nokaslr:text=$text,log=$(tr ' ' '_' <"$W/nokaslr.log" | cut -c1-160)"
  else
    detail="$detail,nokaslr:text=$text"
    export VMM_KERNEL_EXTRACT=0
    boot_once guest ""
    unset VMM_KERNEL_EXTRACT
    text=$(cat "$W/guest.text")
    if [ -s "$W/guest.log" ] || [ -z "$text" ]; then
      fail "$detail,guest-decompressor:text=$text,log=$(tr ' ' '_' <"$W/guest.log" | cut -c1-160)"
    else
      pass "$detail,guest-decompressor:text=$text"
    fi
  fi
fi
unset VMM_LOG
