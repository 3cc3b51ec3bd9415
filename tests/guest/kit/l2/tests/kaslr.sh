#!/bin/sh
# Where the kernel runs in virtual memory: _text from /proc/kallsyms (root sees real addresses),
# for the boot-kaslr scenario to compare with the place the VMM says it chose.
text=$(grep -m1 ' _text$' /proc/kallsyms | cut -d' ' -f1)
echo "L2KASLR text=$text"
[ -n "$text" ]
