#!/bin/sh
# Writes 256 numbered lines of 64 bytes (16 KiB) to the console, then their md5sum, so that the
# host side can check that every byte arrived: CONSOLE-BEGIN / lines / CONSOLE-END md5=<sum>.
gen() {
  i=0
  while [ $i -lt 256 ]; do
    printf 'flood %04d abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRS\n' $i
    i=$((i + 1))
  done
}
echo CONSOLE-BEGIN
gen
echo "CONSOLE-END md5=$(gen | md5sum | cut -d' ' -f1)"
