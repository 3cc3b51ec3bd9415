#!/usr/bin/env python3
"""vmm without -kernel boots through Debian's SeaBIOS from a virtio-blk disk, as QEMU's pc does.

    firmware_boot.py VMM QEMU_IMG

The disks hold a boot sector assembled here (a real MBR boot sector: BIOS int 10h teletype
output, which SeaBIOS's serial console puts on COM1). It counts its boots in CMOS byte 0x40 (the
NVRAM survives a reset) and prints "disk B boot N"; on the first boot it resets the machine
through the i8042 (0xFE), so the second line proves a reboot runs the firmware again.

  1. Two raw disks, the second chosen by bootindex=1: the firmware banner, "Booting from Hard
     Disk...", "disk B boot 1", a second banner, "disk B boot 2"; never disk A.
  2. A qcow2 image given as a positional argument (QEMU's `qemu-system-x86_64 disk.qcow2`,
     a virtio disk here) with -smp 2: it boots, twice.
"""
import os
import select
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from vmmd_testlib.kvm_gate import require_kvm  # noqa: E402
from vmmd_testlib.tempdir import temp_dir  # noqa: E402

vmm, qemu_img = sys.argv[1], sys.argv[2]
if (status := require_kvm()) is not None:
    sys.exit(status)
# Real mode under the nested tier's emulated SVM is slow: allow for it.
TIMEOUT = 600 if os.environ.get("VMMD_IN_L1") else 90


def assemble(program, origin=0x7C00):
    """A tiny two-pass assembler: bytes, ("label", name), ("rel8"|"rel16"|"abs16", name)."""
    sizes = {"rel8": 1, "rel16": 2, "abs16": 2}
    labels, at = {}, 0
    for item in program:
        if isinstance(item, tuple) and item[0] == "label":
            labels[item[1]] = at
        else:
            at += sizes[item[0]] if isinstance(item, tuple) else len(item)
    out = bytearray()
    for item in program:
        if isinstance(item, tuple) and item[0] == "label":
            continue
        if isinstance(item, tuple):
            kind, name = item
            end = len(out) + sizes[kind]
            value = {"rel8": labels[name] - end, "rel16": labels[name] - end, "abs16": origin + labels[name]}[kind]
            out += value.to_bytes(sizes[kind], "little", signed=kind != "abs16")
        else:
            out += item
    assert len(out) <= 446, "boot sector code too long"
    return bytes(out) + bytes(510 - len(out)) + b"\x55\xaa"


def boot_sector(name, reboot_first):
    program = [
        b"\x31\xc0", b"\x8e\xd8", b"\x8e\xd0", b"\xbc\x00\x7c",  # xor ax,ax; mov ds,ax; mov ss,ax; mov sp,0x7c00
        b"\xb0\x40", b"\xe6\x70", b"\xe4\x71", b"\xfe\xc0",      # al = CMOS[0x40] + 1
        b"\x88\xc3", b"\xb0\x40", b"\xe6\x70", b"\x88\xd8", b"\xe6\x71",  # bl = al; CMOS[0x40] = al
        b"\xbe", ("abs16", "message"), b"\xe8", ("rel16", "print"),
        b"\x88\xd8", b"\x04\x30", b"\xb4\x0e", b"\xb7\x00", b"\xcd\x10",  # the boot count as a digit
        b"\xbe", ("abs16", "newline"), b"\xe8", ("rel16", "print"),
    ]
    if reboot_first:
        program += [b"\x80\xfb\x01", b"\x75", ("rel8", "halt"),  # cmp bl,1; jne halt
                    # Wait 20 timer ticks with interrupts on (SeaBIOS's serial console writes
                    # the last characters from its timer interrupt): mov cx,20; sti; hlt; loop.
                    b"\xb9\x14\x00", b"\xfb", ("label", "wait"), b"\xf4", b"\xe2", ("rel8", "wait"),
                    b"\xb0\xfe", b"\xe6\x64"]                    # i8042: pulse the reset line
    program += [
        # sti; hlt; jmp halt: interrupts stay on, for the serial console's timer.
        ("label", "halt"), b"\xfb", b"\xf4", b"\xeb", ("rel8", "halt"),
        ("label", "print"), b"\xac", b"\x84\xc0", b"\x74", ("rel8", "done"),  # lodsb; test al,al; jz done
        b"\xb4\x0e", b"\x53", b"\xbb\x07\x00", b"\xcd\x10", b"\x5b", b"\xeb", ("rel8", "print"),
        ("label", "done"), b"\xc3",
        ("label", "message"), f"{name} boot ".encode() + b"\0",
        ("label", "newline"), b"\r\n\0",
    ]
    return assemble(program)


def write_disk(path, sector):
    with open(path, "wb") as f:
        f.write(sector)
        f.truncate(1 << 20)


def boot(args, until, timeout=TIMEOUT):
    """Runs vmm until `until` is on the console; returns the console text."""
    proc = subprocess.Popen([vmm, "-m", "64", "-nographic"] + args, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    console, deadline = b"", time.monotonic() + timeout
    try:
        while until.encode() not in console and time.monotonic() < deadline:
            ready, _, _ = select.select([proc.stdout], [], [], 0.5)
            if ready:
                chunk = os.read(proc.stdout.fileno(), 4096)
                if not chunk:
                    break
                console += chunk
    finally:
        proc.kill()
        _, err = proc.communicate()
    text = console.decode(errors="replace")
    if until not in text:
        sys.exit(f"FAIL: no '{until}' within {timeout} s; console:\n{text}\nstderr:\n{err.decode(errors='replace')}")
    return text


failures = 0


def check(condition, what):
    global failures
    print(("ok: " if condition else "FAIL: ") + what)
    failures += not condition


with temp_dir("vmm-firmware-boot-") as tmp:
    disk_a, disk_b = os.path.join(tmp, "a.img"), os.path.join(tmp, "b.img")
    write_disk(disk_a, boot_sector("disk A", False))
    write_disk(disk_b, boot_sector("disk B", True))

    started = time.monotonic()
    text = boot(["-drive", f"file={disk_a},format=raw,if=virtio",
                 "-drive", f"file={disk_b},format=raw,if=none,id=b", "-device", "virtio-blk-pci,drive=b,bootindex=1"],
                "disk B boot 2")
    check(text.count("SeaBIOS (version") == 2, "the firmware banner, once per boot")
    check("Booting from Hard Disk..." in text, "the firmware boots from the hard disk")
    check(text.find("disk B boot 1") < text.rfind("SeaBIOS (version") < text.find("disk B boot 2"),
          "the i8042 reset ran the firmware again")
    check("disk A" not in text, "bootindex chose the second disk")
    print(f"two boots through SeaBIOS: {time.monotonic() - started:.1f} s")

    qcow2 = os.path.join(tmp, "b.qcow2")
    subprocess.run([qemu_img, "convert", "-f", "raw", "-O", "qcow2", disk_b, qcow2], check=True)
    text = boot(["-smp", "2", qcow2], "disk B boot 2")
    check("disk B boot 1" in text, "a positional qcow2 image boots (-smp 2), and again after a reset")

sys.exit(1 if failures else 0)
