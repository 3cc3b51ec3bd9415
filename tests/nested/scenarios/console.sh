# The console works at full length: the guest writes 256 numbered 67-byte lines (~17 KiB) and
# their md5sum; every line arrives, in order, and the sum matches.
APPEND=l2.test=console-flood l2_run
sed 's/^[0-9.]* //' "$LOG" | sed -n '/^CONSOLE-BEGIN$/,/^CONSOLE-END /p' >/tmp/console.txt
lines=$(grep -c '^flood ' /tmp/console.txt)
got=$(grep '^flood ' /tmp/console.txt | md5sum | cut -d' ' -f1)
want=$(sed -n 's/^CONSOLE-END md5=//p' /tmp/console.txt)
rc=$(grep -m1 'L2TEST name=console-flood' "$LOG" | sed 's/.*rc=//')
if [ "$lines" = 256 ] && [ -n "$want" ] && [ "$got" = "$want" ] && [ "$rc" = 0 ] && [ "$RUN_EXIT" = 0 ]; then
  pass "lines=256,md5=$got"
else
  fail "lines=$lines,md5=$got,want=$want,rc=$rc,exit=$RUN_EXIT"
fi
