#!/usr/bin/env python3
"""A worker that can open none of its files gets them all as inherited descriptors.

vmm runs as an unprivileged uid (65534, no groups, no capabilities) while its kernel, qcow2 disk,
the disk's raw backing file and /dev/kvm are mode 0600 root (the files in a 0700 root folder), and
its console, guest-agent and QMP sockets are bound and its tap created by this test: everything
comes as fds, with QEMU's syntax (-add-fd fd=N,set=S[,opaque=PATH], /dev/fdset/S, -chardev
socket,fd=N, -netdev tap,fd=N). The disk
is named /dev/fdset/S, its backing file (a relative name inside the image) and /dev/kvm are
found by their opaque paths. The guest (the hostile guest's benign "blkrw" word) reads sector 0,
which comes from the backing file, writes sector 1 and reads it back; the image is checked
afterwards. Then each refusal: an fd whose access mode does not fit, an unknown fd set, an fd
that is not open, a backing file or /dev/kvm not passed (the worker may not open them itself).

Where qemu-system-x86_64 is installed, the disk part of the same command line (-add-fd with
opaque=, -drive file=/dev/fdset/S) runs under QEMU too (paused, TCG), with the same refusal of a
read-write drive whose set holds a read-only fd. (QEMU 7.2 wants an fd of exactly the access
mode of each open, and opens read-only first: a set for QEMU holds an O_RDONLY and an O_RDWR fd.)

    passed_fds.py VMM GUEST_ELF VMM_IMG
"""
import fcntl
import os
import shutil
import socket
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from vmmd_testlib.kvm_gate import cannot_run, require_kvm  # noqa: E402
from vmmd_testlib.qmp import QmpClient, connect_unix  # noqa: E402
from vmmd_testlib.tempdir import temp_dir  # noqa: E402

NOBODY = 65534
BACKING_TEXT = b"backing sector 0"  # 16 bytes: what the guest prints of sector 0
GUEST_TEXT = "guest wrote this"

vmm, guest, vmm_img = (os.path.abspath(arg) for arg in sys.argv[1:4])
if (status := require_kvm()) is not None:
    sys.exit(status)
if os.geteuid() != 0:
    sys.exit(cannot_run("running vmm as another uid needs root"))

problems = []


def check(condition, what):
    if not condition:
        problems.append(what)
    return condition


def as_nobody():
    """Popen keywords: the child runs as 65534 with no supplementary groups (and so no capabilities)."""
    return {"user": NOBODY, "group": NOBODY, "extra_groups": []}


def open_tap():
    """A tap with a virtio-net header, opened here as root (CAP_NET_ADMIN), as vmmd will; it goes
    when its last fd closes."""
    tun_set_iff, iff_tap, iff_no_pi, iff_vnet_hdr = 0x400454CA, 0x0002, 0x1000, 0x4000
    fd = os.open("/dev/net/tun", os.O_RDWR)
    request = struct.pack("16sH22x", f"vmmfd{os.getpid() % 100000}".encode(), iff_tap | iff_no_pi | iff_vnet_hdr)
    name = fcntl.ioctl(fd, tun_set_iff, request)[:16].rstrip(b"\0").decode()
    os.set_inheritable(fd, True)
    return fd, name


def private_file(path, data=None):
    if data is not None:
        with open(path, "wb") as f:
            f.write(data)
    os.chown(path, 0, 0)
    os.chmod(path, 0o600)
    return path


def listening_socket(path):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(path)
    sock.listen(4)
    os.set_inheritable(sock.fileno(), True)
    return sock


class Fds:
    """Descriptors opened here, inherited by the worker, numbered as the worker will see them."""

    def __init__(self):
        self.fds = []

    def open(self, path, flags):
        fd = os.open(path, flags)
        os.set_inheritable(fd, True)
        self.fds.append(fd)
        return fd

    def close(self):
        for fd in self.fds:
            os.close(fd)
        self.fds = []


def run_refused(args, fds, expect, label):
    """vmm with a command line it must refuse: exit status 1 and `expect` in what it says."""
    proc = subprocess.run([vmm] + args, pass_fds=fds, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=30, **as_nobody())
    said = (proc.stdout + proc.stderr).strip()
    if check(proc.returncode == 1 and expect in said,
             f"{label}: expected exit 1 saying {expect!r}, got {proc.returncode}: {said!r}"):
        print(f"ok: {label}: {said.splitlines()[-1] if said else ''}")


with temp_dir("vmm-passed-fds-") as tmp:
    os.chmod(tmp, 0o700)
    kernel = private_file(os.path.join(tmp, "guest.elf"), open(guest, "rb").read())
    base = private_file(os.path.join(tmp, "base.raw"), BACKING_TEXT + bytes(1024 * 1024 - len(BACKING_TEXT)))
    top = os.path.join(tmp, "top.qcow2")
    subprocess.run([vmm_img, "create", "-q", "-f", "qcow2", "-b", "base.raw", "-F", "raw", top], check=True, cwd=tmp)
    private_file(top)

    # The preconditions: that uid can run vmm, and can open none of these by path.
    try:
        runs = subprocess.run([vmm, "--version"], capture_output=True, **as_nobody()).returncode == 0
    except PermissionError:
        runs = False
    if not runs:
        sys.exit(cannot_run(f"uid {NOBODY} cannot run {vmm} (a folder above it is closed to others)"))
    for path in (kernel, base, top, "/dev/kvm"):
        probe = subprocess.run(["dd", f"if={path}", "of=/dev/null", "count=0", "status=none"], capture_output=True,
                               **as_nobody())
        if probe.returncode == 0:
            sys.exit(f"FAIL: uid {NOBODY} can open {path} by itself; the test proves nothing")

    fds = Fds()
    console = listening_socket(os.path.join(tmp, "console.sock"))
    agent = listening_socket(os.path.join(tmp, "qga.sock"))
    monitor = listening_socket(os.path.join(tmp, "qmp.sock"))
    kernel_fd = fds.open(kernel, os.O_RDONLY)
    top_fd = fds.open(top, os.O_RDWR)
    base_fd = fds.open(base, os.O_RDONLY)
    kvm_fd = fds.open("/dev/kvm", os.O_RDWR)
    socket_fds = [sock.fileno() for sock in (console, agent, monitor)]
    tap_fd, tap_name = open_tap()
    fds.fds.append(tap_fd)

    add_kernel = ["-add-fd", f"fd={kernel_fd},set=1"]
    add_top = ["-add-fd", f"fd={top_fd},set=2,opaque={top}"]
    add_base = ["-add-fd", f"fd={base_fd},set=3,opaque={base}"]
    add_kvm = ["-add-fd", f"fd={kvm_fd},set=4,opaque=/dev/kvm"]
    machine = ["-nodefaults", "-m", "64", "-kernel", "/dev/fdset/1", "-append", "blkrw"]
    disk = ["-drive", "file=/dev/fdset/2,format=qcow2,if=none,id=d0", "-device", "virtio-blk-pci,drive=d0"]
    sockets = ["-chardev", f"socket,id=con,fd={console.fileno()},server=on,wait=on", "-serial", "chardev:con",
               "-chardev", f"socket,id=qga,fd={agent.fileno()},server=on,wait=off",
               "-device", "virtio-serial-pci", "-device", "virtserialport,chardev=qga,name=org.qemu.guest_agent.0",
               "-chardev", f"socket,id=mon,fd={monitor.fileno()},server=on,wait=off", "-mon", "chardev=mon,mode=control"]
    nic = ["-netdev", f"tap,id=n0,fd={tap_fd}", "-device", "virtio-net-pci,netdev=n0"]
    args = add_kernel + add_top + add_base + add_kvm + machine + disk + sockets + nic

    started = time.monotonic()
    proc = subprocess.Popen([vmm] + args, pass_fds=fds.fds + socket_fds, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, **as_nobody())
    try:
        client = connect_unix(console.getsockname(), timeout=20, alive=lambda: proc.poll() is None)
        client.settimeout(30)
        text = ""
        while "HOSTILE blkrw done" not in text and "exception" not in text:
            chunk = client.recv(4096)
            if not chunk:
                break
            text += chunk.decode(errors="replace")
        booted = time.monotonic() - started
        check(f"read0={BACKING_TEXT.decode()} status=0" in text, f"sector 0 did not come from the backing file: {text!r}")
        check(f"write1={GUEST_TEXT} status=0" in text, f"the write failed: {text!r}")
        check(f"read1={GUEST_TEXT} status=0" in text, f"sector 1 did not read back: {text!r}")

        with open(f"/proc/{proc.pid}/status") as f:
            status = dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)
        check(status.get("Uid", "").split()[:2] == [str(NOBODY)] * 2, f"worker uid: {status.get('Uid')}")
        check(status.get("CapEff") == "0000000000000000", f"worker capabilities: {status.get('CapEff')}")
        # The tap is attached: the worker holds the passed fd (TUNSETVNETHDRSZ done without privileges).
        held = [os.readlink(f"/proc/{proc.pid}/fd/{n}") for n in os.listdir(f"/proc/{proc.pid}/fd")]
        check(held.count("/dev/net/tun") == 1, f"worker fds: {held}")

        qga = connect_unix(agent.getsockname(), timeout=5)  # the agent channel's socket accepts its client
        with QmpClient.connect(monitor.getsockname()) as qmp:
            chardevs = {c["label"]: c["filename"] for c in qmp.execute("query-chardev")}
            check(agent.getsockname() in chardevs.get("qga", ""), f"query-chardev: {chardevs}")
            check(console.getsockname() in chardevs.get("con", ""), f"query-chardev: {chardevs}")
            check(monitor.getsockname() in chardevs.get("mon", ""), f"query-chardev: {chardevs}")
            blocks = qmp.execute("query-block")
            check(len(blocks) == 1 and not blocks[0]["inserted"]["ro"], f"query-block: {blocks}")
            qmp.execute("quit")
        qga.close()
        check(proc.wait(timeout=20) == 0, f"worker exit status {proc.returncode}: {proc.stderr.read()}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    # The image as the worker left it: consistent, sector 1 written, the backing file untouched.
    # The worker's image locks are OFD locks on the descriptions this test opened: they go with them.
    fds.close()
    if shutil.which("qemu-img"):
        checked = subprocess.run(["qemu-img", "check", top], capture_output=True, text=True)
        check(checked.returncode == 0, f"qemu-img check: {checked.stdout}{checked.stderr}")
    flat = os.path.join(tmp, "flat.raw")
    subprocess.run([vmm_img, "convert", "-f", "qcow2", "-O", "raw", top, flat], check=True)
    with open(flat, "rb") as f:
        data = f.read(1024)
    check(data[:16] == BACKING_TEXT, f"sector 0 of the disk: {data[:16]!r}")
    check(data[512:1024] == GUEST_TEXT.encode() * 32, f"sector 1 of the disk: {data[512:528]!r}")
    with open(base, "rb") as f:
        check(f.read(1024)[512:] == bytes(512), "the backing file was written")
    print(f"ok: uid {NOBODY}, no capabilities, every file, socket and the tap {tap_name} passed as an fd: guest read the backing "
          f"file, wrote and read back its qcow2 disk ({booted:.2f} s to the last console line), exit 0")

    # Refusals, each with a clear message before any guest runs.
    kernel_fd, top_fd = fds.open(kernel, os.O_RDONLY), fds.open(top, os.O_RDWR)
    base_fd, kvm_fd = fds.open(base, os.O_RDONLY), fds.open("/dev/kvm", os.O_RDWR)
    add_kernel = ["-add-fd", f"fd={kernel_fd},set=1"]
    add_top = ["-add-fd", f"fd={top_fd},set=2,opaque={top}"]
    add_base = ["-add-fd", f"fd={base_fd},set=3,opaque={base}"]
    add_kvm = ["-add-fd", f"fd={kvm_fd},set=4,opaque=/dev/kvm"]
    no_sockets = ["-nodefaults", "-m", "64", "-append", "blkrw"]
    ro_top = fds.open(top, os.O_RDONLY)
    run_refused(add_kernel + ["-add-fd", f"fd={ro_top},set=2,opaque={top}"] + add_base + add_kvm + no_sockets
                + ["-kernel", "/dev/fdset/1"] + disk, fds.fds,
                "/dev/fdset/2: fd set 2 has no descriptor open for O_RDWR (it has O_RDONLY)", "wrong access mode")
    run_refused(add_kernel + add_kvm + no_sockets + ["-kernel", "/dev/fdset/9"], fds.fds,
                "/dev/fdset/9: there is no fd set 9", "unknown fd set")
    closed = max(fds.fds + socket_fds) + 10  # a number nobody opened
    run_refused(["-add-fd", f"fd={closed},set=5"] + add_kernel + add_kvm + no_sockets + ["-kernel", "/dev/fdset/1"],
                fds.fds, f"-add-fd set=5: fd {closed} is not open", "fd not open")
    run_refused(add_kernel + add_top + add_kvm + no_sockets + ["-kernel", "/dev/fdset/1"] + disk, fds.fds,
                f"{base}: Permission denied", "backing file not passed")
    run_refused(add_kernel + no_sockets + ["-kernel", "/dev/fdset/1"], fds.fds,
                "no permission to open /dev/kvm", "/dev/kvm not passed")
    fds.close()

    # The same -add-fd and -drive syntax under QEMU (raw: QEMU resolves no opaque paths).
    qemu = shutil.which("qemu-system-x86_64")
    if qemu:
        rw, ro = fds.open(base, os.O_RDWR), fds.open(base, os.O_RDONLY)
        qemu_disk = ["-drive", "file=/dev/fdset/3,format=raw,if=none,id=d0", "-device", "virtio-blk-pci,drive=d0"]
        qemu_args = [qemu, "-S", "-nodefaults", "-display", "none", "-accel", "tcg", "-qmp", "stdio"]
        commands = '{"execute":"qmp_capabilities"}\n{"execute":"query-block"}\n{"execute":"quit"}\n'
        # QEMU 7.2 matches the access mode exactly (it opens read-only first): it needs both.
        both = ["-add-fd", f"fd={rw},set=3,opaque={base}", "-add-fd", f"fd={ro},set=3"]
        good = subprocess.run(qemu_args + both + qemu_disk, input=commands,
                              pass_fds=fds.fds, capture_output=True, text=True, timeout=60)
        check(good.returncode == 0 and '"ro": false' in good.stdout and "/dev/fdset/3" in good.stdout,
              f"QEMU with the same -add-fd/-drive: {good.returncode}: {good.stdout[-300:]} {good.stderr[-300:]}")
        bad = subprocess.run(qemu_args + ["-add-fd", f"fd={ro},set=3"] + qemu_disk, input=commands,
                             pass_fds=fds.fds, capture_output=True, text=True, timeout=60)
        check(bad.returncode == 1 and "/dev/fdset/3" in bad.stderr, f"QEMU with a read-only fd: {bad.stderr[-300:]}")
        print(f"ok: QEMU ({qemu}) takes the same -add-fd/-drive syntax and refuses the read-only fd too")
        fds.close()
    for sock in (console, agent, monitor):
        sock.close()

if problems:
    print("FAIL:\n  " + "\n  ".join(problems))
    sys.exit(1)
print("ok: every refusal said what was wrong")
