#!/usr/bin/env python3
"""QMP internal snapshots on a running guest's qcow2 disk, end to end: blockdev-snapshot-internal-sync
and blockdev-snapshot-delete-internal-sync with QEMU 7.2's replies and error texts. A snapshot is
taken before the guest (the hostile guest's benign "blkrw" word) writes sector 1 and one after,
with the worker under -sandbox on (the snapshot's metadata writes run on its main loop);
qemu-img then lists them, finds the image clean, reads sector 1 as it was in each, and vmm-img
reverting to the first brings the old sector back.

    block_snapshot.py VMM HOSTILE_ELF VMM_IMG
"""
import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from vmmd_testlib.kvm_gate import require_kvm  # noqa: E402
from vmmd_testlib.qmp import QmpClient, QmpError  # noqa: E402
from vmmd_testlib.tempdir import temp_dir  # noqa: E402

vmm, guest, vmm_img = sys.argv[1], sys.argv[2], sys.argv[3]
if (status := require_kvm()) is not None:
    sys.exit(status)
failures = []
GUEST_TEXT = b"guest wrote this"


def check(condition, what):
    print(("ok   " if condition else "FAIL ") + what)
    if not condition:
        failures.append(what)


def error_of(qmp, command, arguments):
    try:
        qmp.execute(command, arguments)
    except QmpError as e:
        return (e.cls, e.desc)
    return None


def run(*args):
    return subprocess.run(list(args), capture_output=True, text=True)


def sector1(image, tmp, snapshot=None):
    flat = os.path.join(tmp, "flat.raw")
    args = ["qemu-img", "convert", "-O", "raw"] + (["-l", f"snapshot.name={snapshot}"] if snapshot else []) + [image, flat]
    subprocess.run(args, check=True)
    with open(flat, "rb") as f:
        return f.read(1024)[512:]


with temp_dir("vmm-block-snapshot-") as tmp:
    disk, raw, ro = (os.path.join(tmp, n) for n in ("disk.qcow2", "plain.raw", "ro.qcow2"))
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", disk, "1M"], check=True)
    subprocess.run(["qemu-io", "-c", "write -P 0x61 0 64k", disk], check=True, capture_output=True)
    subprocess.run(["qemu-img", "create", "-q", "-f", "raw", raw, "1M"], check=True)
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", ro, "1M"], check=True)
    sock = os.path.join(tmp, "qmp.sock")
    proc = subprocess.Popen([vmm, "-nodefaults", "-m", "64", "-kernel", guest, "-append", "blkrw", "-serial", "stdio", "-S",
                             "-sandbox", "on",
                             "-drive", f"file={disk},format=qcow2,if=none,id=d0", "-device", "virtio-blk-pci,drive=d0",
                             "-drive", f"file={raw},format=raw,if=none,id=r0", "-device", "virtio-blk-pci,drive=r0",
                             "-drive", f"file={ro},format=qcow2,if=none,id=ro0,readonly=on",
                             "-device", "virtio-blk-pci,drive=ro0",
                             "-qmp", f"unix:{sock},server=on,wait=off"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    console = []
    threading.Thread(target=lambda: [console.append(line) for line in proc.stdout], daemon=True).start()
    try:
        with QmpClient.connect(sock) as qmp:
            devices = [b["device"] for b in qmp.execute("query-block")]
            check(devices == ["d0", "r0", "ro0"], f"query-block names the drives: {devices}")
            create, delete = "blockdev-snapshot-internal-sync", "blockdev-snapshot-delete-internal-sync"
            check(qmp.execute(create, {"device": "d0", "name": "before"}) == {}, "snapshot 'before' (guest not started)")
            for args, desc in [
                ({"device": "d0", "name": "before"}, "Snapshot with name 'before' already exists on device 'd0'"),
                ({"device": "d0", "name": ""}, "Name is empty"),
                ({"device": "nope", "name": "x"}, "Cannot find device='nope' nor node-name='nope'"),
                ({"device": "r0", "name": "x"}, "Block format 'raw' used by device 'r0' does not support internal snapshots"),
                ({"device": "ro0", "name": "x"}, "Device 'ro0' is read only"),
                ({"device": "d0"}, "Parameter 'name' is missing"),
            ]:
                got = error_of(qmp, create, args)
                check(got == ("GenericError", desc), f"{create} {args}: {got}")
            for args, desc in [
                ({"device": "d0"}, "Name or id must be provided"),
                ({"device": "d0", "name": "zz"}, "Snapshot with id 'null' and name 'zz' does not exist on device 'd0'"),
                ({"device": "d0", "id": "9", "name": "before"},
                 "Snapshot with id '9' and name 'before' does not exist on device 'd0'"),
                ({"device": "nope", "name": "before"}, "Cannot find device='nope' nor node-name='nope'"),
                ({"device": "r0", "name": "before"}, "Failed to get a snapshot list: Operation not supported"),
            ]:
                got = error_of(qmp, delete, args)
                check(got == ("GenericError", desc), f"{delete} {args}: {got}")

            check(qmp.execute("cont") == {}, "cont")
            deadline = time.monotonic() + 30
            while not any("HOSTILE blkrw done" in line for line in console) and time.monotonic() < deadline:
                time.sleep(0.02)
            text = "".join(console)
            check(f"read1={GUEST_TEXT.decode()} status=0" in text, f"the guest wrote and read back sector 1: {text!r}")
            check(qmp.execute(create, {"device": "d0", "name": "after"}) == {}, "snapshot 'after' of the running guest")
            check(qmp.execute(create, {"device": "d0", "name": "temp"}) == {}, "snapshot 'temp'")
            info = qmp.execute(delete, {"device": "d0", "name": "temp"})
            keys = sorted(info)
            check(keys == sorted(["id", "name", "vm-state-size", "date-sec", "date-nsec", "vm-clock-sec", "vm-clock-nsec"]),
                  f"the deleted snapshot's SnapshotInfo: {info}")
            check(info.get("id") == "3" and info.get("name") == "temp" and info.get("vm-state-size") == 0,
                  f"SnapshotInfo of 'temp': {info}")
            check(abs(info.get("date-sec", 0) - time.time()) < 60, f"date-sec is now: {info}")
            check(0 <= info.get("vm-clock-nsec", -1) < 10**9, f"vm-clock-nsec below a second: {info}")
            check(qmp.execute(create, {"device": "d0", "name": "temp2"}) == {}, "snapshot 'temp2' takes the free id 3")
            by_id = qmp.execute(delete, {"device": "d0", "id": "3"})
            check(by_id.get("name") == "temp2", f"delete by id returns the snapshot it removed: {by_id}")
            qmp.execute("quit")
        check(proc.wait(timeout=20) == 0, f"worker exit status {proc.returncode}: {proc.stderr.read()}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    listed = run("qemu-img", "snapshot", "-l", disk).stdout
    names = [line.split()[1] for line in listed.splitlines()[2:]]
    check(names == ["before", "after"], f"qemu-img snapshot -l: {listed}")
    checked = run("qemu-img", "check", disk)
    check(checked.returncode == 0, f"qemu-img check: {checked.stdout}{checked.stderr}")
    check(sector1(disk, tmp) == GUEST_TEXT * 32, "the active disk holds the guest's write")
    check(sector1(disk, tmp, "after") == GUEST_TEXT * 32, "snapshot 'after' holds the guest's write")
    check(sector1(disk, tmp, "before") == b"a" * 512, "snapshot 'before' holds sector 1 as it was")
    reverted = run(vmm_img, "snapshot", "-a", "before", disk)
    check(reverted.returncode == 0, f"vmm-img snapshot -a before: {reverted.stderr}")
    check(sector1(disk, tmp) == b"a" * 512, "reverted to 'before': the guest's write is gone")
    checked = run("qemu-img", "check", disk)
    check(checked.returncode == 0, f"qemu-img check after the revert: {checked.stdout}{checked.stderr}")

if failures:
    print(f"{len(failures)} check(s) failed")
    sys.exit(1)
print("all checks passed")
