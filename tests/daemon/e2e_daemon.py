#!/usr/bin/env python3
"""End-to-end tests of vmmd with real vmm workers and probe guests.

usage: e2e_daemon.py SCENARIO   (autostart, crash_restart, crash_destroy, daemon_kill9, errors, durability,
                                 socket, poweroff_restart, qmp_fd, confined, microvm)
Each scenario runs its own vmmd in temporary directories and kills whatever it leaves behind."""
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vmmd_harness import (VMCTL, VMM, QmpClient, QmpError, check, connect, console_log, pid_alive,  # noqa: E402
                          probe_definition, scenario_main, state_of, wait_until)


def ready(d, name, boots=1):
    wait_until(lambda: console_log(d, name).count("PROBE name=ready") >= boots, 20, f"{name} ready marker x{boots}")


def scenario_autostart(d):
    c = d.start()
    c.execute("vm-define", {"definition": probe_definition("auto1", autostart=True)})
    c.execute("vm-define", {"definition": probe_definition("manual1")})
    d.stop()
    # A host reboot empties the run dir (tmpfs), and with it the once-per-boot autostart marker.
    os.unlink(os.path.join(d.run, "autostart.done"))
    c = d.start()  # first start since "boot": autostart applies
    wait_until(lambda: state_of(c, "auto1") == "running", 20, "auto1 running")
    check(state_of(c, "manual1") == "shut-off", "a VM without autostart was started")
    ready(d, "auto1")
    c.execute("vm-shutdown", {"name": "auto1", "timeout": 20})
    check(state_of(c, "auto1") == "shut-off", "auto1 not shut off after vm-shutdown")
    d.stop()
    # A daemon restart (same boot: the run dir's marker exists) must not boot what the operator stopped.
    c = d.start()
    time.sleep(0.5)
    check(state_of(c, "auto1") == "shut-off", "autostart ran again on a daemon restart")


def kill_worker(c, name):
    pid = c.execute("vm-info", {"name": name})["pid"]
    os.kill(pid, signal.SIGKILL)
    return pid


def scenario_crash_restart(d):
    c = d.start()
    c.execute("vm-define", {"definition": probe_definition(
        "r1", on_crash="restart", restart_backoff={"initial_ms": 200, "max_ms": 400, "max_attempts": 2, "reset_after_s": 300})})
    c.execute("vm-start", {"name": "r1"})
    ready(d, "r1")
    old = kill_worker(c, "r1")
    c.wait_event(lambda e: e["data"]["name"] == "r1" and e["data"]["state"] == "crashed", 10)
    wait_until(lambda: state_of(c, "r1") == "running", 10, "r1 restarted")
    info = c.execute("vm-info", {"name": "r1"})
    check(info["pid"] != old, "restart kept the dead pid")
    check(info["restart-count"] == 1, f"restart-count {info['restart-count']}")
    check(info.get("exit-signal") == 9, f"exit signal not recorded: {info}")
    ready(d, "r1", boots=2)
    # Two more crashes: the second exceeds max_attempts=2 and the VM is left crashed. State and
    # count come from one reply: two replies could straddle vmmd's noticing the kill (seen in L1).
    second = kill_worker(c, "r1")

    def restarted_twice():
        info = c.execute("vm-info", {"name": "r1"})
        return info["state"] == "running" and info["restart-count"] == 2 and info.get("pid") not in (None, second)
    wait_until(restarted_twice, 10, "2nd restart")
    kill_worker(c, "r1")
    wait_until(lambda: state_of(c, "r1") == "crashed", 10, "r1 given up")
    time.sleep(0.6)
    check(state_of(c, "r1") == "crashed", "restarted beyond max_attempts")
    # The operator can still start it, which begins a fresh series.
    c.execute("vm-start", {"name": "r1"})
    check(state_of(c, "r1") == "running", "manual start after give-up")
    c.execute("vm-destroy", {"name": "r1"})
    # A restart pending when vmmd is killed happens after vmmd comes back.
    c.execute("vm-define", {"definition": probe_definition(
        "r2", on_crash="restart", restart_backoff={"initial_ms": 1500, "max_ms": 1500, "max_attempts": 3, "reset_after_s": 300})})
    c.execute("vm-start", {"name": "r2"})
    kill_worker(c, "r2")
    wait_until(lambda: state_of(c, "r2") == "crashed", 10, "r2 crashed")
    c.close()
    d.kill9()
    c = d.start()
    check(state_of(c, "r2") == "crashed", "r2 restarted without waiting")
    wait_until(lambda: state_of(c, "r2") == "running", 10, "pending restart resumed after a vmmd restart")
    check(c.execute("vm-info", {"name": "r2"})["restart-count"] == 1, "restart counted twice")
    # A VM left crashed (given up) stays so across a vmmd restart.
    c.close()
    d.kill9()
    c = d.start()
    time.sleep(0.3)
    check(state_of(c, "r1") == "shut-off" and state_of(c, "r2") == "running", "states changed by a vmmd restart")


def scenario_crash_destroy(d):
    c = d.start()
    c.execute("vm-define", {"definition": probe_definition("k1", on_crash="destroy")})
    c.execute("vm-define", {"definition": probe_definition("k2", on_crash="preserve")})
    for n in ("k1", "k2"):
        c.execute("vm-start", {"name": n})
    kill_worker(c, "k1")
    kill_worker(c, "k2")
    wait_until(lambda: state_of(c, "k1") == "shut-off", 10, "k1 shut off")
    wait_until(lambda: state_of(c, "k2") == "crashed", 10, "k2 crashed")
    time.sleep(1.2)  # longer than any restart delay: nothing restarts them
    check(state_of(c, "k1") == "shut-off" and state_of(c, "k2") == "crashed", "policy not kept")
    check(c.execute("vm-info", {"name": "k1"}).get("exit-signal") == 9, "exit signal not recorded")
    # A guest that powers itself off is not a crash: on_poweroff=destroy leaves it shut off.
    c.execute("vm-start", {"name": "k1"})
    ready(d, "k1")
    c.execute("vm-shutdown", {"name": "k1", "timeout": 20})
    check(state_of(c, "k1") == "shut-off", "k1 after shutdown")
    info = c.execute("vm-info", {"name": "k1"})
    check(info.get("exit-status") == 0, f"clean exit not recorded: {info}")


def scenario_poweroff_restart(d):
    """on_poweroff=restart boots the guest again after it powers itself off; vm-reboot resets it;
    vm-shutdown still ends it for good."""
    c = d.start()
    c.execute("vm-define", {"definition": probe_definition("p1", on_poweroff="restart")})
    c.execute("vm-start", {"name": "p1"})
    ready(d, "p1")
    pid = c.execute("vm-info", {"name": "p1"})["pid"]
    # The power button pressed behind vmmd's back: the guest powers off on its own account.
    c.execute("vm-qmp", {"name": "p1", "command": "system_powerdown"})
    ready(d, "p1", boots=2)
    wait_until(lambda: state_of(c, "p1") == "running", 10, "p1 running again")
    info = c.execute("vm-info", {"name": "p1"})
    check(info["pid"] != pid, "no new worker after the guest powered off")
    check(info.get("exit-status") == 0, f"power-off exit not recorded: {info}")
    # vm-reboot: the same worker, the guest boots again.
    pid = info["pid"]
    c.execute("vm-reboot", {"name": "p1"})
    ready(d, "p1", boots=3)
    check(c.execute("vm-info", {"name": "p1"})["pid"] == pid, "reboot replaced the worker")
    c.execute("vm-shutdown", {"name": "p1", "timeout": 20})
    time.sleep(0.3)
    check(state_of(c, "p1") == "shut-off", "vm-shutdown of an on_poweroff=restart VM restarted it")


def scenario_daemon_kill9(d):
    c = d.start()
    names = ["g1", "g2", "g3"]
    for n in names:
        c.execute("vm-define", {"definition": probe_definition(n)})
        c.execute("vm-start", {"name": n})
    for n in names:
        ready(d, n)
    pids = {n: c.execute("vm-info", {"name": n})["pid"] for n in names}
    c.close()
    d.kill9()
    for n in names:
        check(pid_alive(pids[n]), f"{n}'s worker died with vmmd")
    c = d.start()
    wait_until(lambda: all(state_of(c, n) == "running" for n in names), 10, "re-attached and running")
    for n in names:
        info = c.execute("vm-info", {"name": n})
        check(info["pid"] == pids[n], f"{n}: pid changed {pids[n]} -> {info['pid']}")
    # Every command works on re-attached VMs.
    check(c.execute("vm-qmp", {"name": "g1", "command": "query-status"})["status"] == "running", "vm-qmp on g1")
    c.execute("vm-pause", {"name": "g2"})
    check(state_of(c, "g2") == "paused", "pause after re-attach")
    c.execute("vm-resume", {"name": "g2"})
    check(state_of(c, "g2") == "running", "resume after re-attach")
    c.execute("vm-reboot", {"name": "g2"})
    ready(d, "g2", boots=1)
    c.execute("vm-shutdown", {"name": "g1", "timeout": 20})
    check(state_of(c, "g1") == "shut-off", "shutdown after re-attach")
    # A re-attached worker is not vmmd's child: its death is seen through the pidfd.
    os.kill(pids["g3"], signal.SIGKILL)
    wait_until(lambda: state_of(c, "g3") == "shut-off", 10, "death of a re-attached worker noticed")
    c.execute("vm-destroy", {"name": "g2"})
    check(not pid_alive(pids["g2"]), "destroy after re-attach")


def scenario_errors(d):
    c = d.start()
    c.execute("vm-define", {"definition": probe_definition("e1")})
    expect = [
        (lambda: c.execute("vm-define", {"definition": probe_definition("e1")}), "GenericError", "VM 'e1' is already defined"),
        (lambda: c.execute("vm-define", {"definition": probe_definition("e2", kernel="/nonexistent/bzImage")}),
         "GenericError", "VM 'e2': kernel: /nonexistent/bzImage: No such file or directory"),
        (lambda: c.execute("vm-define", {"definition": probe_definition("e3", memory=4)}), "GenericError", "memory"),
        (lambda: c.execute("vm-define", {"definition": {"schema": 1}}), "GenericError", "name"),
        (lambda: c.execute("vm-start", {"name": "ghost"}), "DeviceNotFound", "VM 'ghost' is not defined"),
        (lambda: c.execute("vm-info", {"name": "ghost"}), "DeviceNotFound", "VM 'ghost' is not defined"),
        (lambda: c.execute("vm-shutdown", {"name": "ghost"}), "DeviceNotFound", "VM 'ghost' is not defined"),
        (lambda: c.execute("vm-destroy", {"name": "e1"}), "GenericError", "VM 'e1' is not running"),
        (lambda: c.execute("vm-pause", {"name": "e1"}), "GenericError", "VM 'e1' is not running"),
        (lambda: c.execute("vm-qmp", {"name": "e1", "command": "query-status"}), "GenericError", "VM 'e1' is not running"),
        (lambda: c.execute("vm-undefine", {"name": "ghost"}), "DeviceNotFound", "VM 'ghost' is not defined"),
        (lambda: c.execute("vm-start"), "GenericError", "Parameter 'name' is missing"),
        (lambda: c.execute("vm-nonsense"), "CommandNotFound", "vm-nonsense"),
    ]
    for call, cls, text in expect:
        try:
            call()
        except QmpError as e:
            check(e.cls == cls and text in e.desc, f"expected {cls} '{text}', got {e.cls} '{e.desc}'")
        else:
            raise AssertionError(f"no error for an expected {cls} '{text}'")
    # The kernel vanishing after define: start names the VM and the file.
    kernel = os.path.join(d.tmp, "probe-copy.elf")
    with open(os.environ.get("PROBE_ELF", "build/tests/guest/probe/probe.elf"), "rb") as src, open(kernel, "wb") as dst:
        dst.write(src.read())
    c.execute("vm-define", {"definition": probe_definition("e4", kernel=kernel)})
    os.unlink(kernel)
    try:
        c.execute("vm-start", {"name": "e4"})
        raise AssertionError("start without a kernel succeeded")
    except QmpError as e:
        check("VM 'e4'" in e.desc and "No such file" in e.desc, e.desc)
    check(state_of(c, "e4") == "shut-off", "failed start left a state")
    # A worker that refuses to boot: vm-start fails with the worker's own reason.
    junk = os.path.join(d.tmp, "not-a-kernel")
    with open(junk, "w") as f:
        f.write("this is not a kernel image\n" * 100)
    c.execute("vm-define", {"definition": probe_definition("e5", kernel=junk)})
    try:
        c.execute("vm-start", {"name": "e5"})
        raise AssertionError("start with a junk kernel succeeded")
    except QmpError as e:
        check(e.desc.startswith("VM 'e5': worker exited with status") and "vmm:" in e.desc, e.desc)
    check(state_of(c, "e5") == "shut-off", "failed start left a state")
    # A running VM cannot be undefined; the answer says what to do.
    c.execute("vm-start", {"name": "e1"})
    try:
        c.execute("vm-undefine", {"name": "e1"})
        raise AssertionError("undefine of a running VM succeeded")
    except QmpError as e:
        check("VM 'e1' is active" in e.desc, e.desc)
    try:
        c.execute("vm-start", {"name": "e1"})
        raise AssertionError("double start succeeded")
    except QmpError as e:
        check("VM 'e1' is already running" in e.desc, e.desc)
    # Raw garbage on the socket: an error reply, and vmmd keeps serving.
    raw = QmpClient.connect(d.socket, connect_timeout=0, negotiate=False)
    raw.send_raw(b'{"execute": "qmp_capabilities"}\r\n{"execute": "vm-define", "arguments": {"definition": {"name": ' + b"\xff" * 10 + b"\r\n}}}\r\n{bad json}\r\n")
    replies = []
    while (reply := raw.read_message(timeout=5)) is not None and "error" not in reply:
        replies.append(reply)
    check(reply is not None, f"no error for malformed JSON, only {replies!r}")
    raw.close()
    check(d.proc.poll() is None, "vmmd died on malformed input")
    check(c.execute("vm-qmp", {"name": "e1", "command": "query-status"})["status"] == "running", "vmmd unusable after bad input")
    c.execute("vm-destroy", {"name": "e1"})


def listening_socket_inode(path):
    """The inode of the socket listening at `path`, from /proc/net/unix (flag __SO_ACCEPTCON)."""
    with open("/proc/net/unix") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if len(fields) >= 8 and fields[7] == path and int(fields[3], 16) & 0x10000:
                return int(fields[6])
    return None


def socket_fds(pid, inode):
    """Which of process `pid`'s fds are the socket `inode`."""
    found = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") == f"socket:[{inode}]":
                found.append(int(fd))
        except OSError:
            pass
    return found


def scenario_qmp_fd(d):
    """vmmd binds each worker's QMP socket and passes it as fd 3 (-chardev socket,fd=3 + -mon):
    only the worker holds it; a worker slower than the old 15 s socket deadline starts; one that
    dies before its greeting fails the start at once with its own words; a file that is not a
    socket where qmp.sock goes is refused, not removed."""
    mode_file = os.path.join(d.tmp, "wrapper-mode")
    wrapper = os.path.join(d.tmp, "vmm-wrapper")
    with open(wrapper, "w") as f:
        f.write(f"""#!/bin/sh
case "$(cat {mode_file} 2>/dev/null)" in
  slow) sleep 16 ;;
  die) echo "vmm-wrapper: gave up before QMP" >&2; sleep 0.5; exit 3 ;;
esac
exec {os.path.abspath(VMM)} "$@"
""")
    os.chmod(wrapper, 0o755)
    d.extra_args = ["--vmm", wrapper]
    c = d.start()

    c.execute("vm-define", {"definition": probe_definition("q1")})
    c.execute("vm-start", {"name": "q1"})
    ready(d, "q1")
    pid = c.execute("vm-info", {"name": "q1"})["pid"]
    with open(f"/proc/{pid}/cmdline") as f:
        argv = f.read().split("\0")
    check("socket,id=qmp,fd=3,server=on,wait=off" in argv and "chardev=qmp,mode=control" in argv, f"worker argv {argv}")
    qmp_sock = os.path.join(d.run, "vms", "q1", "qmp.sock")
    inode = listening_socket_inode(qmp_sock)
    check(inode is not None, f"nothing listens at {qmp_sock}")
    check(socket_fds(pid, inode) == [3], f"the worker's fds on the QMP listener: {socket_fds(pid, inode)}")
    check(socket_fds(d.proc.pid, inode) == [], "vmmd kept the QMP listener open")
    check(os.stat(qmp_sock).st_mode & 0o777 == 0o600, f"qmp.sock mode {os.stat(qmp_sock).st_mode & 0o777:o}")
    check(c.execute("vm-qmp", {"name": "q1", "command": "query-status"})["status"] == "running", "vm-qmp over the passed socket")

    # A worker that takes longer than the 15 s vmmd used to give its socket to appear.
    with open(mode_file, "w") as f:
        f.write("slow")
    c.execute("vm-define", {"definition": probe_definition("q2")})
    start = time.monotonic()
    c.execute("vm-start", {"name": "q2"})
    check(time.monotonic() - start >= 16, "the slow worker was not slow")
    check(state_of(c, "q2") == "running", "slow worker not running")
    ready(d, "q2")

    # A worker that exits before it greets: reported at once, with its own last words.
    with open(mode_file, "w") as f:
        f.write("die")
    c.execute("vm-define", {"definition": probe_definition("q3")})
    start = time.monotonic()
    try:
        c.execute("vm-start", {"name": "q3"})
        raise AssertionError("start of a worker that exits succeeded")
    except QmpError as e:
        check(e.desc == "VM 'q3': worker exited with status 3: vmm-wrapper: gave up before QMP", e.desc)
    check(time.monotonic() - start < 10, f"the exit took {time.monotonic() - start:.1f} s to be reported")
    check(state_of(c, "q3") == "shut-off", "failed start left a state")

    # Something that is not a socket where the QMP socket goes: refused and left alone.
    os.unlink(mode_file)
    q4_dir = os.path.join(d.run, "vms", "q4")
    os.makedirs(q4_dir, exist_ok=True)
    with open(os.path.join(q4_dir, "qmp.sock"), "w") as f:
        f.write("not a socket")
    c.execute("vm-define", {"definition": probe_definition("q4")})
    try:
        c.execute("vm-start", {"name": "q4"})
        raise AssertionError("start over a regular file succeeded")
    except QmpError as e:
        check("VM 'q4'" in e.desc and "exists and is not a socket" in e.desc, e.desc)
    with open(os.path.join(q4_dir, "qmp.sock")) as f:
        check(f.read() == "not a socket", "the file was replaced")

    # Re-attach after a vmmd restart connects to the socket the worker still holds.
    c.close()
    d.kill9()
    c = d.start()
    wait_until(lambda: state_of(c, "q1") == "running" and state_of(c, "q2") == "running", 10, "re-attached")
    check(c.execute("vm-qmp", {"name": "q1", "command": "query-status"})["status"] == "running", "vm-qmp after re-attach")
    for name in ("q1", "q2"):
        c.execute("vm-destroy", {"name": name})


def proc_status(pid):
    with open(f"/proc/{pid}/status") as f:
        return dict((k, v.strip()) for k, _, v in (line.partition(":") for line in f))


def can_open_as(uid, gid, path):
    """Whether uid/gid may open PATH for reading (in a child that drops to them)."""
    child = os.fork()
    if child == 0:
        try:
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
            os.close(os.open(path, os.O_RDONLY))
            os._exit(0)
        except OSError:
            os._exit(1)
    return os.waitpid(child, 0)[1] == 0


def cgroup2_mount():
    with open("/proc/self/mountinfo") as f:
        for line in f:
            head, _, tail = line.partition(" - ")
            if tail.startswith("cgroup2 ") and head.split()[3] == "/":
                return head.split()[4]
    return None


def delegated_cgroup(d):
    """A cgroup for vmmd to start in, as systemd's Delegate=yes gives one; whether cgroup v2 has the
    cpu and memory controllers here (not where they are bound to cgroup v1)."""
    mount = cgroup2_mount()
    check(mount is not None, "no cgroup2 mounted")
    own = os.path.join(mount, f"vmmd-e2e-{os.getpid()}")
    os.mkdir(own)
    with open(os.path.join(mount, "cgroup.controllers")) as f:
        usable = {"cpu", "memory"} <= set(f.read().split())
    if usable:
        with open(os.path.join(mount, "cgroup.subtree_control"), "w") as f:
            f.write("+cpu +memory")
    d.cgroup = own
    return mount, own, usable


def first_line(path):
    with open(path) as f:
        return f.readline().strip()


def scenario_confined(d):
    """A root vmmd runs each worker as its own unprivileged uid/gid without capabilities and gives
    it everything as fds: the guest boots, QMP, the console and the agent socket work, a qcow2 on a
    backing file (named relative to it) works, the worker cannot open that image by path, and a
    restarted vmmd re-attaches without handing the worker's uid to another VM. vmmd starts in a
    cgroup of its own: with cgroup v2's cpu and memory controllers each worker runs in vm-<name>
    with the definition's limits; without them vmmd warns and the VMs run all the same."""
    if os.geteuid() != 0:
        sys.exit(cannot_run("vmmd must be root to run its workers as other users"))
    mount, own, usable = delegated_cgroup(d)
    print(f"cgroup v2 at {mount}: " + ("cpu and memory: limits checked" if usable else "no cpu/memory: warnings checked"))
    try:
        confined_vms(d, mount, own, usable)
        check(d.proc.poll() is None, "vmmd exited during the test")
    finally:
        d.stop()  # out of its cgroup, so that the cgroup can go
        d.proc = None
        for leftover in ("vm-c1", "vm-c2", "vm-c3", "vmmd", ""):
            path = os.path.join(own, leftover)
            try:  # workers a failed run left behind
                with open(os.path.join(path, "cgroup.procs")) as f:
                    for pid in f.read().split():
                        os.kill(int(pid), signal.SIGKILL)
                wait_until(lambda: first_line(os.path.join(path, "cgroup.procs")) == "", 5, f"{path} empty")
                os.rmdir(path)
            except OSError:
                pass
    check(not os.path.exists(own), f"{own} left behind")


def confined_vms(d, mount, own, usable):
    images = os.path.join(d.tmp, "images")
    os.mkdir(images, 0o700)  # root's only: the worker can reach nothing in it by path
    base, top = os.path.join(images, "base.raw"), os.path.join(images, "top.qcow2")
    subprocess.run(["qemu-img", "create", "-q", "-f", "raw", base, "1M"], check=True)
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", "base.raw", "-F", "raw", top, "16M"], check=True)
    c = d.start()
    c.execute("vm-define", {"definition": probe_definition("c1", agent=True, disks=[{"path": top, "format": "qcow2"}],
                                                           limits={"cpu_percent": 50, "memory_overhead_mib": 64})})
    c.execute("vm-define", {"definition": probe_definition("c2")})
    for name in ("c1", "c2"):
        c.execute("vm-start", {"name": name})
        ready(d, name)  # the console relay saw the guest's output: the passed console socket works

    ids = {}
    for name in ("c1", "c2"):
        pid = c.execute("vm-info", {"name": name})["pid"]
        st = proc_status(pid)
        uids, gids = st["Uid"].split(), st["Gid"].split()
        check(len(set(uids)) == 1 and uids[0] != "0", f"{name}: worker Uid {st['Uid']}")
        check(len(set(gids)) == 1 and gids[0] != "0", f"{name}: worker Gid {st['Gid']}")
        check(st["Groups"] == "", f"{name}: supplementary groups {st['Groups']}")
        check(int(st["CapEff"], 16) == 0 and int(st["CapPrm"], 16) == 0, f"{name}: CapEff {st['CapEff']} CapPrm {st['CapPrm']}")
        check(st["NoNewPrivs"] == "1", f"{name}: NoNewPrivs {st['NoNewPrivs']}")
        pidfile = os.path.join(d.run, "vms", name, "pid")
        check(os.stat(pidfile).st_uid == int(uids[0]), f"{name}: pidfile owner {os.stat(pidfile).st_uid}")
        ids[name] = (pid, int(uids[0]), int(gids[0]))
    check(ids["c1"][1] != ids["c2"][1], f"two workers share uid {ids['c1'][1]}")
    if usable:
        rel = own[len(mount):]
        check(first_line(f"/proc/{d.proc.pid}/cgroup") == f"0::{rel}/vmmd", "vmmd is not in its leaf")
        check(first_line(f"/proc/{ids['c1'][0]}/cgroup") == f"0::{rel}/vm-c1", "c1's worker is not in vm-c1")
        check(first_line(f"{own}/vm-c1/cpu.max") == "50000 100000", first_line(f"{own}/vm-c1/cpu.max"))
        check(first_line(f"{own}/vm-c1/memory.max") == str(128 << 20), first_line(f"{own}/vm-c1/memory.max"))
        check(first_line(f"{own}/vm-c2/memory.max") == "max", "c2 has no limits")
    else:
        log = d.log()
        check(log.count("no per-VM cgroup limits") == 1, "no single warning at start:\n" + log)
        check("VM 'c1': its limits are not applied" in log and "VM 'c2': its limits" not in log, log)

    pid, uid, gid = ids["c1"]
    check(c.execute("vm-qmp", {"name": "c1", "command": "query-status"})["status"] == "running", "QMP")
    block = c.execute("vm-qmp", {"name": "c1", "command": "query-block"})
    check(any(b["device"] == "disk0" and b["inserted"]["file"] == top for b in block), f"query-block: {block}")
    # The worker opened the whole chain (it fails to start otherwise) through the fds vmmd passed.
    held = {os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
    check(top in held and base in held and "/dev/kvm" in held, f"worker fds {sorted(held)}")
    check(not can_open_as(uid, gid, top), "the worker's uid can open the image by path")
    qga = os.path.join(d.run, "vms", "c1", "qga.sock")
    inode = listening_socket_inode(qga)
    check(inode is not None and socket_fds(pid, inode) != [], "the worker does not hold the agent socket")
    try:
        c.execute("vm-agent-command", {"name": "c1", "command": {"execute": "guest-ping"}, "timeout": 1})
    except QmpError as e:  # the probe runs no qemu-ga: the channel answers that no agent is there
        check(e.cls == "DeviceNotActive", f"agent channel: {e.cls}: {e.desc}")

    # A restarted vmmd re-attaches and keeps both uids out of new workers' reach.
    c.close()
    d.kill9()
    if usable:
        d.cgroup = os.path.join(own, "vmmd")  # its parent enables controllers: no process may join it
    c = d.start()
    wait_until(lambda: state_of(c, "c1") == "running" and state_of(c, "c2") == "running", 10, "re-attached")
    c.execute("vm-define", {"definition": probe_definition("c3")})
    c.execute("vm-start", {"name": "c3"})
    uid3 = int(proc_status(c.execute("vm-info", {"name": "c3"})["pid"])["Uid"].split()[0])
    check(uid3 not in (ids["c1"][1], ids["c2"][1]), f"c3 got uid {uid3}, which a re-attached worker holds")
    if usable:
        # The previous vmmd's exit by SIGKILL left the limits on: they are there all the same.
        check(first_line(f"{own}/vm-c1/cpu.max") == "50000 100000", "c1's limits after the re-attach")
    for name in ("c1", "c2", "c3"):
        c.execute("vm-destroy", {"name": name})
    if usable:
        wait_until(lambda: not os.path.exists(f"{own}/vm-c1"), 5, "vm-c1 removed after its worker ended")


def scenario_socket(d):
    """Control socket mode and group, peer credentials in the log, sd_notify READY=1, systemd
    socket activation, a bad --group, a second vmmd on the same state dir."""
    import grp
    import stat
    group = grp.getgrgid(1).gr_name  # "daemon" on Debian: any group other than root's will do
    notify_path = os.path.join(d.tmp, "notify.sock")
    os.makedirs(d.tmp, exist_ok=True)
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(notify_path)
    notify.settimeout(10)
    os.environ["NOTIFY_SOCKET"] = notify_path
    d.extra_args = ["--group", group]
    try:
        c = d.start()
    finally:
        del os.environ["NOTIFY_SOCKET"]
    check(notify.recv(4096).split(b"\n")[0] == b"READY=1", "no READY=1 from vmmd")
    st = os.stat(d.socket)
    check(stat.S_IMODE(st.st_mode) == 0o660, f"socket mode {oct(st.st_mode)}")
    check(st.st_gid == 1, f"socket group {st.st_gid}")
    c.execute("vm-define", {"definition": probe_definition("s1")})
    check(f"vm-define name=s1 by uid={os.getuid()} gid={os.getgid()} pid={os.getpid()}" in d.log(), d.log())
    c.execute("vm-start", {"name": "s1"})
    # tty.sock is its VM owner's alone (root's here): the group only traverses the directories.
    for path, mode in ((d.run, 0o750), (os.path.join(d.run, "vms", "s1"), 0o750), (os.path.join(d.run, "vms", "s1", "tty.sock"), 0o600)):
        st = os.stat(path)
        check(st.st_gid == 1 and stat.S_IMODE(st.st_mode) == mode, f"{path}: gid {st.st_gid} mode {oct(st.st_mode)}")
    if os.getuid() == 0:
        # A member of the group (uid 1, "daemon", primary group 1) controls VMs and reads consoles;
        # anybody else (nobody) cannot reach vmmd. Their credentials are what the log records.
        os.chmod(d.tmp, 0o755)
        vmctl = os.path.abspath(os.environ.get("VMCTL", "build/cli/vmctl"))

        def as_user(uid, gid, *args):
            def drop():
                os.setgroups([])
                os.setgid(gid)
                os.setuid(uid)
            return subprocess.run([vmctl, "--socket", d.socket, *args], capture_output=True, text=True, timeout=20,
                                  preexec_fn=drop)
        # A member of the group (uid 1, "daemon", primary group 1) reaches vmmd, but root's VM is not
        # theirs: refused (tests/daemon/e2e_authz.py covers the model), with their credentials logged.
        member = as_user(1, 1, "pause", "s1")
        check(member.returncode == 1 and "permission denied" in member.stderr, f"{member.returncode} {member.stderr}")
        check("vm-pause name=s1 by uid=1 gid=1" in d.log(), "peer credentials of the group member not logged")
        listed = as_user(1, 1, "list")
        check(listed.returncode == 0 and "s1" not in listed.stdout, f"a member lists root's VM: {listed.stdout}")
        console = as_user(1, 1, "console", "s1")
        check(console.returncode != 0, f"a member attached to root's console: {console.returncode} {console.stdout}")
        outsider = as_user(65534, 65534, "list")
        check(outsider.returncode == 3 and "Permission denied" in outsider.stderr, f"{outsider.returncode} {outsider.stderr}")
    c.execute("vm-destroy", {"name": "s1"})
    # `quit` passed through vm-qmp stops the worker; that is a request, not a crash or a power-off.
    c.execute("vm-start", {"name": "s1"})
    c.execute("vm-qmp", {"name": "s1", "command": "quit"})
    wait_until(lambda: state_of(c, "s1") == "shut-off", 10, "s1 off after quit")
    check("worker quit on request" in d.log(), "quit not recognised")
    # A second vmmd on the same state dir refuses to run.
    second = subprocess.run([os.environ.get("VMMD", "build/daemon/vmmd"), "--state-dir", d.state, "--run-dir",
                             d.run + "2", "--vmm", os.path.abspath(os.environ.get("VMM", "build/vmm/vmm"))],
                            capture_output=True, text=True, timeout=10)
    check(second.returncode == 1 and "another vmmd is running" in second.stderr, second.stderr)
    d.stop()
    d.proc = None  # stopped on purpose
    bad = subprocess.run([os.environ.get("VMMD", "build/daemon/vmmd"), "--state-dir", d.state, "--run-dir", d.run,
                          "--vmm", os.path.abspath(os.environ.get("VMM", "build/vmm/vmm")),
                          "--group", "no-such-group-xyz"], capture_output=True, text=True, timeout=10)
    check(bad.returncode == 1 and "--group: no group named 'no-such-group-xyz'" in bad.stderr, bad.stderr)
    # A state dir whose vmmd.db is not vmmd's database: a clear refusal, and the file untouched.
    foreign = os.path.join(d.tmp, "foreign")
    os.makedirs(foreign)
    with open(os.path.join(foreign, "vmmd.db"), "wb") as f:
        f.write(b"not a database at all\n" * 100)
    refused = subprocess.run([os.environ.get("VMMD", "build/daemon/vmmd"), "--state-dir", foreign, "--run-dir",
                              os.path.join(d.tmp, "run-foreign"), "--vmm", os.path.abspath(os.environ.get("VMM", "build/vmm/vmm"))],
                             capture_output=True, text=True, timeout=10)
    check(refused.returncode == 1 and "vmmd.db" in refused.stderr, refused.stderr)
    with open(os.path.join(foreign, "vmmd.db"), "rb") as f:
        check(f.read() == b"not a database at all\n" * 100, "a foreign database file was modified")
    # Socket activation: systemd-socket-activate binds the socket and passes it as fd 3.
    activate = shutil.which("systemd-socket-activate")
    if activate:
        act_sock = os.path.join(d.tmp, "activated.sock")
        proc = subprocess.Popen([activate, "-l", act_sock, os.environ.get("VMMD", "build/daemon/vmmd"), "--state-dir",
                                 d.state, "--run-dir", d.run, "--vmm", os.path.abspath(os.environ.get("VMM", "build/vmm/vmm"))],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            wait_until(lambda: os.path.exists(act_sock), 10, "activation socket")
            c2 = connect(act_sock)
            check([vm["name"] for vm in c2.execute("vm-list")] == ["s1"], "activated vmmd has another store")
            c2.close()
        finally:
            proc.terminate()
            err = proc.communicate(10)[1].decode()
        check("serving the socket passed by systemd" in err, err)


def scenario_microvm(d):
    """A "machine": "microvm" VM through vmctl: defined from a file, shown by info (text, --json)
    and dumpxml, started (the worker runs vmm's microvm with virtio-mmio devices, the probe finds
    its ACPI tables, QMP answers through vmmd), shut down by its ACPI power button.
    A microvm definition vmm could not run (firmware boot) is refused at define time."""
    c = d.start()

    def vmctl(*args, rc=0):
        p = subprocess.run([VMCTL, "--socket", d.socket, *args], capture_output=True, text=True, timeout=60)
        check(p.returncode == rc, f"vmctl {' '.join(args)}: exit {p.returncode}, wanted {rc}: {p.stdout}{p.stderr}")
        return p

    disk = os.path.join(d.tmp, "mv1.raw")
    with open(disk, "wb") as f:
        f.truncate(1 << 20)
    definition = probe_definition("mv1", machine="microvm", cmdline="acpi powerbutton", agent=True,
                                  disks=[{"path": disk, "format": "raw"}])
    path = os.path.join(d.tmp, "mv1.json")
    with open(path, "w") as f:
        json.dump(definition, f)
    vmctl("define", path)
    info = vmctl("info", "mv1").stdout
    check(any(line.split() == ["machine:", "microvm"] for line in info.splitlines()), f"no 'machine: microvm' in:\n{info}")
    check(json.loads(vmctl("--json", "info", "mv1").stdout)["definition"]["machine"] == "microvm", "--json info: machine")
    xml = vmctl("dumpxml", "mv1").stdout
    check("machine=\"microvm\"" in xml, f"dumpxml without machine='microvm':\n{xml}")

    c.execute("vm-start", {"name": "mv1"})
    ready(d, "mv1")
    check(state_of(c, "mv1") == "running", "mv1 not running")
    log = console_log(d, "mv1")
    check("PROBE name=acpi ok=1" in log and "PROBE name=done failures=0" in log, f"the probe's ACPI check:\n{log}")
    pid = c.execute("vm-info", {"name": "mv1"})["pid"]
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        argv = f.read().decode().split("\0")
    for arg in ("microvm,accel=kvm,rtc=on", "virtio-blk-device,drive=disk0", "virtio-serial-device"):
        check(arg in argv, f"worker argv without {arg}: {argv}")
    check(not any(a.endswith("-pci") or "-pci," in a for a in argv), f"a PCI device on microvm: {argv}")
    status = json.loads(vmctl("--json", "qmp", "mv1", '{"execute": "query-status"}').stdout)
    check(status.get("status") == "running", f"query-status through vmmd: {status}")
    c.execute("vm-shutdown", {"name": "mv1", "timeout": 20})
    check(state_of(c, "mv1") == "shut-off", "mv1 not shut off after vm-shutdown")
    check("PROBE name=powerbutton ok=1" in console_log(d, "mv1"), "the probe saw no power button")

    # What vmm's microvm cannot do is refused with the field named, before any worker exists.
    firmware = {"schema": 1, "name": "mv2", "memory": 64, "machine": "microvm",
                "disks": [{"path": disk, "format": "raw", "readonly": True}], "boot": {"order": ["disk0"]}}
    try:
        c.execute("vm-define", {"definition": firmware})
        check(False, "a microvm with firmware boot was defined")
    except QmpError as e:
        check("boot: not on machine microvm" in str(e), f"refusal: {e}")
    bad = os.path.join(d.tmp, "bad.json")
    with open(bad, "w") as f:
        json.dump(probe_definition("mv3", machine="q35"), f)
    err = vmctl("define", bad, rc=1).stderr
    check("machine: must be pc or microvm" in err, f"vmctl define of machine q35: {err}")
    check({vm["name"] for vm in c.execute("vm-list")} == {"mv1"}, "a refused definition was stored")


def scenario_durability(d):
    """kill -9 of vmmd during 1000 defines over the socket: every acknowledged define survives."""
    c = d.start()
    acked = []
    kill_after = random.randint(150, 600)
    killer_done = threading.Event()

    def killer():
        wait_until(lambda: len(acked) >= kill_after, 60, "defines before the kill")
        d.kill9()
        killer_done.set()

    t = threading.Thread(target=killer)
    t.start()
    i = 0
    try:
        while i < 1000:
            name = f"d{i:04d}"
            c.execute("vm-define", {"definition": probe_definition(name)}, timeout=10)
            acked.append(name)
            i += 1
    except (ConnectionError, OSError, QmpError):
        pass
    t.join()
    check(killer_done.is_set(), "killer did not run")
    c = d.start()
    defined = {vm["name"] for vm in c.execute("vm-list")}
    lost = [n for n in acked if n not in defined]
    check(not lost, f"{len(lost)} acknowledged defines lost, e.g. {lost[:5]}")
    print(f"killed after {len(acked)} acknowledged defines; {len(defined)} present after restart")
    # Finish the 1000 with the restarted daemon.
    for j in range(len(defined), 1000):
        name = f"d{j:04d}"
        if name not in defined:
            c.execute("vm-define", {"definition": probe_definition(name)})
    check(len(c.execute("vm-list")) == 1000, "not 1000 VMs after completing the defines")


def main():
    return scenario_main(globals(), __doc__, without_kvm=("durability",))


if __name__ == "__main__":
    sys.exit(main())
