#!/usr/bin/env python3
"""vmm refuses bad input with a clear message naming the problem and exit status 1.

    bad_input.py VMM PROBE_ELF

vmm checks its command line and every file it names before it opens /dev/kvm, so each case runs
twice: as is, and inside a private mount namespace whose /dev has no kvm node, where it must say
exactly the same thing (what a host without KVM sees). Then a good command line without /dev/kvm,
and with /dev/null in its place, must say what is wrong and what to do. The hidden-/dev/kvm half
needs root (unshare --mount); without it that half is skipped saying why, and fails when CI=true.
"""
import fcntl
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from vmmd_testlib.tempdir import temp_dir  # noqa: E402

vmm, probe = sys.argv[1], sys.argv[2]
failures = 0

# Runs a command with a /dev that has no kvm, or /dev/null as /dev/kvm (--not-kvm).
WITHOUT_KVM = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts", "without-kvm")


def run(args, prefix=()):
    try:
        return subprocess.run(list(prefix) + [vmm] + args, capture_output=True, text=True, timeout=30,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return None


def report(ok, name, proc, wanted):
    global failures
    print(f"{'ok  ' if ok else 'FAIL'} {name}: status={proc.returncode} stderr={proc.stderr.strip()!r}")
    if not ok:
        print(f"     wanted {wanted}")
        failures += 1


def check(args, want_status, want_texts, name, prefix=(), same_as=None):
    """Runs vmm; wants the status and every text in stderr (and, given same_as, that stderr)."""
    global failures
    want_texts = [want_texts] if isinstance(want_texts, str) else want_texts
    proc = run(args, prefix)
    if proc is None:
        print(f"FAIL {name}: vmm hung")
        failures += 1
        return None
    ok = proc.returncode == want_status and all(text in proc.stderr for text in want_texts)
    wanted = f"status {want_status} and {want_texts!r} in stderr"
    if same_as is not None:
        ok = ok and proc.stderr == same_as
        wanted += f", stderr exactly as with the host's /dev: {same_as.strip()!r}"
    report(ok, name, proc, wanted)
    return proc.stderr


def virtualization_flag():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("flags") and ":" in line:
                words = line.split(":", 1)[1].split()
                for flag in ("vmx", "svm"):
                    if flag in words:
                        return flag
    return ""


with temp_dir("vmm-bad-input-") as tmp:
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
    disk = os.path.join(tmp, "disk.raw")
    with open(disk, "wb") as f:
        f.truncate(1 << 20)
    locked_disk = os.path.join(tmp, "locked.raw")
    with open(locked_disk, "wb") as f:
        f.truncate(1 << 20)
    # What a running writer (vmm or QEMU) holds: the shared "write" permission byte (201).
    lock_holder = open(locked_disk, "rb")
    fcntl.lockf(lock_holder, fcntl.LOCK_SH | fcntl.LOCK_NB, 1, 201)
    missing_dir = os.path.join(tmp, "no-such-dir")
    common = ["-nodefaults", "-display", "none"]

    def blk(path, fmt="raw"):
        return ["-drive", f"file={path},format={fmt},if=none,id=d0", "-device", "virtio-blk-pci,drive=d0"]

    cases = [
        (common + ["-bios", os.path.join(tmp, "missing.bin")], "No such file or directory", "missing -bios"),
        (common + ["-bios", text_file], "multiple of 64 KiB", "-bios not a BIOS image"),
        (common + ["-cdrom", text_file], "not supported yet", "-cdrom"),
        (common + ["-M", "microvm"], "-M microvm needs -kernel", "microvm without a kernel (no firmware there)"),
        (common + ["-boot", "order=d"], "only c (the first hard disk)", "-boot order=d"),
        (common + ["-kernel", os.path.join(tmp, "missing")], "No such file or directory", "missing kernel"),
        (common + ["-kernel", text_file], "neither a bzImage", "neither bzImage nor PVH ELF"),
        (common + ["-kernel", empty], "neither a bzImage", "empty kernel file"),
        (common + ["-kernel", truncated_elf], "truncated.elf", "truncated ELF"),
        (common + ["-kernel", probe, "-m", "0"], "-m: memory size 0 is too small", "-m 0"),
        (common + ["-kernel", probe, "-m", "lots"], "not a size", "-m lots"),
        (common + ["-kernel", probe, "-smp", "0"], "-smp: the CPU count must be at least 1", "-smp 0"),
        (common + ["-kernel", probe, "-smp", "9999"], "-smp: at most", "-smp 9999"),
        (common + ["-kernel", probe, "-m", "64", "-initrd", big_initrd], "does not fit", "initrd too big"),
        (common + ["-kernel", probe, "-initrd", os.path.join(tmp, "nope")], "initrd", "missing initrd"),
        (common + ["-kernel", probe, "-frobnicate"], "-frobnicate: invalid option", "unknown option"),
        (common + ["-kernel", probe, "-m"], "-m: requires an argument", "missing argument"),
        (common + ["-kernel", probe, "-accel", "tcg"], "'tcg' is not supported", "tcg accelerator"),
        (common + ["-kernel", probe, "-cpu", "host,+frobnicate"], "'frobnicate' is unknown", "unknown CPU feature"),
        (common + ["-kernel", probe, "-serial", "chardev:nowhere"], "chardev 'nowhere' not found", "dangling chardev"),
        (common + ["-kernel", probe, "-machine", "virt"], "'virt' is not supported", "unknown machine"),
        (common + ["-kernel", probe, "-append", "x" * 70000], "command line", "command line too long"),
        (common + ["-kernel", probe, "-device", "sb16"], "-device sb16: device 'sb16' is not supported", "unsupported device"),
        (common + ["-kernel", probe, "-device", "virtio-blk-pci,drive"], "needs a value", "device property without value"),
        (common + ["-kernel", probe, "-chardev", "socket,id=c0,path=/tmp/x.sock,server=off"], "server=on", "client socket chardev"),
        (common + ["-kernel", probe, "-chardev", "socket,id=c0,path=/tmp/x.sock,server=on,speed=9"], "invalid parameter 'speed'", "unknown chardev key"),
        (common + ["-kernel", probe, "-serial", "unix:" + text_file + ",server=on,wait=off"], "is not a socket", "serial socket path is a file"),
        (common + ["-kernel", probe, "-serial", f"unix:{missing_dir}/s.sock,server=on,wait=off"],
         f"directory {missing_dir}: No such file or directory", "serial socket in a missing directory"),
        (common + ["-kernel", probe, "-qmp", f"unix:{missing_dir}/q.sock,server=on,wait=off"],
         f"-qmp: socket {missing_dir}/q.sock: directory {missing_dir}", "QMP socket in a missing directory"),
        (common + ["-kernel", probe, "-chardev", "socket,id=m0,fd=0,server=on,wait=off", "-mon", "chardev=m0,mode=control"],
         "-chardev m0: fd 0 is a standard stream (0-2)", "QMP monitor on a standard stream"),
        (common + ["-kernel", probe, "-add-fd", "fd=2,set=1"], "-add-fd set=1: fd 2 is a standard stream (0-2)",
         "fd set on a standard stream"),
        (common + ["-kernel", probe, "-add-fd", "fd=999,set=1"], "-add-fd set=1: fd 999 is not open", "fd set on an fd not open"),
        (common + ["-kernel", "/dev/fdset/4"], "kernel: /dev/fdset/4: there is no fd set 4", "kernel from an unknown fd set"),
        (common + ["-kernel", probe, "-device", "virtio-serial-pci", "-chardev",
                   f"socket,id=p0,path={missing_dir}/p.sock,server=on,wait=off", "-device", "virtserialport,chardev=p0"],
         "-device virtserialport: chardev 'p0'", "virtio-serial port socket in a missing directory"),
        (common + ["-kernel", text_file, "-serial", f"unix:{tmp}/wait.sock,server=on,wait=on"],
         "neither a bzImage", "bad kernel with a wait=on socket: no waiting for a client"),
        (common + ["-kernel", probe] + blk(os.path.join(tmp, "missing.raw")),
         "drive d0: open " + os.path.join(tmp, "missing.raw") + ": No such file or directory", "missing disk image"),
        (common + ["-kernel", probe] + blk(text_file, "qcow2"), "invalid qcow2 image", "disk that is not qcow2"),
        (common + ["-kernel", probe] + blk(locked_disk), 'Failed to get "write" lock', "disk locked by another writer"),
        (common + ["-kernel", probe, "-pidfile", f"{missing_dir}/vmm.pid"], "cannot open pid file", "pid file in a missing directory"),
    ]
    plain_stderr = [check(args, 1, text, name) for args, text, name in cases]

    problem = None

    def hide_kvm(mode):
        return [WITHOUT_KVM] + (["--not-kvm"] if mode == "not-kvm" else []) + ["--"]

    if os.geteuid() != 0:
        problem = "it needs root, to make a private mount namespace (unshare --mount) whose /dev has no kvm"
    elif not shutil.which("unshare"):
        problem = "unshare (util-linux) is not installed"
    else:
        probe_run = subprocess.run(hide_kvm("no-kvm") + ["sh", "-c", "test ! -e /dev/kvm && test -c /dev/null"],
                                   capture_output=True, text=True, timeout=30)
        if probe_run.returncode != 0:
            problem = f"the mount namespace without /dev/kvm could not be made: {probe_run.stderr.strip()}"

    if problem:
        ci = os.environ.get("CI") == "true"
        print(f"{'FAIL' if ci else 'SKIP'} the cases with /dev/kvm hidden cannot run: {problem}")
        if ci:
            print("     (CI=true: this half must run in CI)")
            failures += 1
    else:
        print("-- the same cases with /dev/kvm hidden: the same messages")
        for (args, text, name), same in zip(cases, plain_stderr):
            check(args, 1, text, name + " [no /dev/kvm]", prefix=hide_kvm("no-kvm"), same_as=same)

        print("-- a good command line without a usable /dev/kvm")
        flag = virtualization_flag()
        hint = f"modprobe kvm_{'intel' if flag == 'vmx' else 'amd'}" if flag else "enable nested virtualization"
        pidfile = os.path.join(tmp, "vmm.pid")
        good = common + ["-kernel", probe, "-m", "64", "-smp", "2", "-cpu", "host,-hypervisor"] + blk(disk) + [
            "-serial", f"unix:{tmp}/console.sock,server=on,wait=on", "-qmp", f"unix:{tmp}/qmp.sock,server=on,wait=off",
            "-pidfile", pidfile]
        check(good, 1, ["vmm: /dev/kvm does not exist", hint], "no /dev/kvm (what to do)", prefix=hide_kvm("no-kvm"))
        if os.path.exists(pidfile):
            print(f"FAIL no /dev/kvm: the pid file {pidfile} was left behind")
            failures += 1
        check(good + ["-daemonize"], 1, ["vmm: /dev/kvm does not exist", hint], "no /dev/kvm, -daemonize",
              prefix=hide_kvm("no-kvm"))
        check(good, 1, ["vmm: /dev/kvm is not a usable KVM device", "KVM_GET_API_VERSION failed"],
              "/dev/null as /dev/kvm", prefix=hide_kvm("not-kvm"))
    lock_holder.close()

print(f"{failures} failed")
sys.exit(1 if failures else 0)
