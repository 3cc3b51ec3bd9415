#!/usr/bin/env python3
"""vmm refuses bad input with a clear message naming the problem and exit status 1.

    bad_input.py VMM PROBE_ELF
"""
import os
import subprocess
import sys
import tempfile

vmm, probe = sys.argv[1], sys.argv[2]
failures = 0


def check(args, want_status, want_text, name):
    global failures
    try:
        proc = subprocess.run([vmm] + args, capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        print(f"FAIL {name}: vmm hung")
        failures += 1
        return
    ok = proc.returncode == want_status and want_text in proc.stderr
    print(f"{'ok  ' if ok else 'FAIL'} {name}: status={proc.returncode} stderr={proc.stderr.strip()!r}")
    if not ok:
        print(f"     wanted status {want_status} and {want_text!r} in stderr")
        failures += 1


with tempfile.TemporaryDirectory() as tmp:
    text_file = os.path.join(tmp, "notes.txt")
    with open(text_file, "w") as f:
        f.write("not a kernel\n" * 100)
    empty = os.path.join(tmp, "empty")
    open(empty, "w").close()
    big_initrd = os.path.join(tmp, "initrd.img")
    with open(big_initrd, "wb") as f:
        f.truncate(100 << 20)  # sparse: 100 MiB that cannot fit in 64 MiB of RAM
    truncated_elf = os.path.join(tmp, "truncated.elf")
    with open(probe, "rb") as src, open(truncated_elf, "wb") as dst:
        dst.write(src.read(200))
    common = ["-nodefaults", "-display", "none"]

    check(common, 1, "-kernel FILE is required", "no kernel")
    check(common + ["-kernel", os.path.join(tmp, "missing")], 1, "No such file or directory", "missing kernel")
    check(common + ["-kernel", text_file], 1, "neither a bzImage", "neither bzImage nor PVH ELF")
    check(common + ["-kernel", empty], 1, "neither a bzImage", "empty kernel file")
    check(common + ["-kernel", truncated_elf], 1, "truncated.elf", "truncated ELF")
    check(common + ["-kernel", probe, "-m", "0"], 1, "-m: memory size 0 is too small", "-m 0")
    check(common + ["-kernel", probe, "-m", "lots"], 1, "not a size", "-m lots")
    check(common + ["-kernel", probe, "-smp", "0"], 1, "-smp: the CPU count must be at least 1", "-smp 0")
    check(common + ["-kernel", probe, "-smp", "9999"], 1, "-smp: at most", "-smp 9999")
    check(common + ["-kernel", probe, "-m", "64", "-initrd", big_initrd], 1, "does not fit", "initrd too big")
    check(common + ["-kernel", probe, "-initrd", os.path.join(tmp, "nope")], 1, "initrd", "missing initrd")
    check(common + ["-kernel", probe, "-frobnicate"], 1, "-frobnicate: invalid option", "unknown option")
    check(common + ["-kernel", probe, "-m"], 1, "-m: requires an argument", "missing argument")
    check(common + ["-kernel", probe, "-accel", "tcg"], 1, "'tcg' is not supported", "tcg accelerator")
    check(common + ["-kernel", probe, "-cpu", "host,+frobnicate"], 1, "'frobnicate' is unknown", "unknown CPU feature")
    check(common + ["-kernel", probe, "-serial", "chardev:nowhere"], 1, "chardev 'nowhere' not found", "dangling chardev")
    check(common + ["-kernel", probe, "-machine", "virt"], 1, "'virt' is not supported", "unknown machine")
    check(common + ["-kernel", probe, "-append", "x" * 70000], 1, "command line", "command line too long")
    check(common + ["-kernel", probe, "-device", "sb16"], 1, "-device sb16: device 'sb16' is not supported", "unsupported device")
    check(common + ["-kernel", probe, "-device", "virtio-blk-pci,drive"], 1, "needs a value", "device property without value")
    check(common + ["-kernel", probe, "-chardev", "socket,id=c0,path=/tmp/x.sock,server=off"], 1, "server=on", "client socket chardev")
    check(common + ["-kernel", probe, "-chardev", "socket,id=c0,path=/tmp/x.sock,server=on,speed=9"], 1, "invalid parameter 'speed'", "unknown chardev key")
    check(common + ["-kernel", probe, "-serial", "unix:" + text_file + ",server=on,wait=off"], 1, "is not a socket", "serial socket path is a file")

print(f"{failures} failed")
sys.exit(1 if failures else 0)
