# The real qemu-ga in the guest answers over virtio-serial (port org.qemu.guest_agent.0, found
# by /init through /sys/class/virtio-ports): guest-ping, guest-get-osinfo (reads the kit's
# /etc/os-release), then guest-shutdown powers the guest off and the VMM exits 0.
TIMEOUT=60 SOCK=/tmp/qga.sock TRIGGER=L2UP \
SOCK_TEXT='{"execute":"guest-ping"} {"execute":"guest-get-osinfo"} {"execute":"guest-shutdown"}' \
  l2_run -chardev socket,id=qga0,path=/tmp/qga.sock,server=on,wait=off -device "$(virtio_serial_dev)" \
    -device virtserialport,chardev=qga0,name=org.qemu.guest_agent.0
ping=$(grep -c 'SOCK {"return": {}}' "$LOG")
osid=$(grep -o '"id": "[a-z]*"' "$LOG" | head -n1 | sed 's/.*: "//; s/"//')
if [ "$ping" -ge 1 ] && [ "$osid" = debian ] && grep -q 'L2: shutdown (poweroff)' "$LOG" &&
   [ "$RUN_EXIT" = 0 ] && [ "$RUN_TIMEOUT" = 0 ]; then
  pass "ping=ok,os=$osid,exit=0,exit_ms=$RUN_MS"
else
  fail "ping=$ping,os=$osid,exit=$RUN_EXIT,timeout=$RUN_TIMEOUT"
fi
