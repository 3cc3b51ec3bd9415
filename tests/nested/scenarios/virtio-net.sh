# virtio-net on a tap in L1 (made by the VMM, configured here once it appears): ping and a 2 MiB
# TCP transfer each way with matching md5s (l2/tests/net.sh). Everything stays inside L1.
# NET_EXTRA: more VMM options (the sandbox scenario's); a seccomp report in the log fails the run.
nic=$(virtio_dev virtio-net)
dd if=/dev/urandom of=/tmp/down bs=64k count=32 2>/dev/null
down=$(md5sum </tmp/down | cut -d' ' -f1)
rm -f /tmp/up
tap_up_when_created tap0 10.0.2.1/24
# busybox's small nc quits when its stdin ends: the receiving end gets a stdin that stays open.
(sleep 90 | nc -l -p 7000 >/tmp/up) &
receiver=$!
nc -l -p 7001 </tmp/down >/dev/null &
sender=$!
KERNEL=$L2_BZIMAGE SMP=1 MEM=256 APPEND="l2.test=net" TIMEOUT=80 l2_run \
  -netdev tap,id=net0,ifname=tap0,script=no,downscript=no -device $nic,netdev=net0,mac=52:54:00:12:34:77 ${NET_EXTRA:-}
kill $receiver $sender 2>/dev/null
up_guest=$(grep -m1 -o 'NET up_md5=[0-9a-f]*' "$LOG" | cut -d= -f2)
down_guest=$(grep -m1 -o 'NET down_md5=[0-9a-f]*' "$LOG" | cut -d= -f2)
up_host=$(md5sum </tmp/up 2>/dev/null | cut -d' ' -f1)
mac=$(grep -m1 -o 'NET mac=[0-9a-f:]*' "$LOG" | cut -d= -f2)
if grep -q "NET ping=ok" "$LOG" && ! grep -q "seccomp" "$LOG" && [ -n "$up_guest" ] && [ "$up_guest" = "$up_host" ] && [ "$down_guest" = "$down" ] && [ "$mac" = 52:54:00:12:34:77 ]; then
  pass "ping=ok,up=$up_host,down=$down,mac=$mac"
else
  fail "ping=$(grep -c 'ping=ok' "$LOG"),up=${up_guest:-none}/${up_host:-none},down=${down_guest:-none}/$down,mac=${mac:-none}"
fi
