#!/usr/bin/env python3
"""End-to-end tests of vmmd's snapshots and of migration between two vmmd instances on one host
(each with its own state dir, run dir and control socket), with probe guests.

usage: e2e_mobility.py SCENARIO [vmm|qemu]
  snapshot           save / list / revert / delete with a qcow2 disk: data written between save
                     and revert is gone after it; qemu-img lists the tag and checks clean
  snapshot_refusals  raw and read-only disks, bad tags, a taken tag, another user's VM
  migrate            there and back several times; console and agent channel at the destination
  migrate_disk       a VM with a qcow2 disk at a path both reach, there and back: the image whole
  migrate_cancel     vmctl migrate-cancel during a slowed migration: the VM runs on the source
  migrate_dest_killed  the destination's worker and vmmd killed mid-way: the VM runs on the source,
                     and the restarted destination holds nothing of it
  migrate_hosts      two hosts (network namespaces joined by a veth pair, dropbear on each): there
                     and back 10 times over ssh:// (3 with vmm: see the test); a wrong key, an unknown host key, a stopped ssh
                     server and a cancel mid-way leave the VM running on the source only
  migrate_hosts_midway  the same two hosts; mid-way the link between them goes down (the migration
                     fails by ssh's keepalive, the destination drops its half when dropbear ends the
                     sessions), then the destination's vmmd and worker are killed (its restart
                     drops the half); each time the VM runs on the source, and then migrates there
  incoming_refusals  the destination's half alone: a bad stream, an abort, a source that hangs up
                     before its commit, commands for VMs that are not arriving
The worker is vmm (default), or QEMU 7.2 (TCG) through a wrapper with "qemu": the daemon side is
QEMU's QMP (getfd, migrate fd:, -incoming defer, migrate-incoming, blockdev-snapshot-internal-sync)."""
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vmmd_harness import (VMCTL, VMM, Daemon, QmpError, cannot_run, check, check_sanitizers, console_log,  # noqa: E402
                          pid_alive, probe_definition, require_kvm, state_of, wait_until)
import two_hosts  # noqa: E402

QEMU_WRAPPER = r"""#!/bin/bash
# QEMU 7.2 as vmmd's worker: TCG (a worker runs as its own uid and QEMU opens /dev/kvm by path),
# the pidfile written here through its passed fd (QEMU resolves the path, which the worker's uid may
# not), the rest of vmmd's argv as it is.
a=()
while [ $# -gt 0 ]; do
  case "$1" in
    -cpu) a+=(-cpu max); shift ;;
    -pidfile) fd=${2#/proc/self/fd/}; echo $$ >&"$fd"; shift ;;
    q35,accel=kvm*) a+=("q35,accel=tcg${1#q35,accel=kvm}") ;;
    *) a+=("$1") ;;
  esac
  shift
done
exec qemu-system-x86_64 "${a[@]}"
"""


def new_daemon(worker):
    d = Daemon()
    d.worker = worker
    if worker == "qemu":
        path = os.path.join(d.tmp, "qemu-worker")
        with open(path, "w") as f:
            f.write(QEMU_WRAPPER)
        os.chmod(path, 0o755)
        # qemu-img reverts and deletes the internal snapshots of stopped VMs (vmm-img's part otherwise).
        d.extra_args += ["--vmm", path, "--img", "/usr/bin/qemu-img"]
        # QEMU runs under TCG and opens nothing vmmd passes for KVM: on a host without /dev/kvm
        # vmmd hands it /dev/null instead (so this test needs no KVM anywhere).
        d.extra_args += ["--kvm", "/dev/null"]
    return d


def vmctl(d, *args, check_rc=True):
    p = subprocess.run([VMCTL, "--socket", d.socket] + list(args), capture_output=True, text=True, timeout=120)
    if check_rc and p.returncode != 0:
        raise AssertionError(f"vmctl {' '.join(args)}: exit {p.returncode}: {p.stdout}{p.stderr}")
    return p


def ready(d, name):
    wait_until(lambda: "PROBE name=ready" in console_log(d, name), 60, f"{name} ready marker")


def qemu_img(*args):
    p = subprocess.run(["qemu-img"] + list(args), capture_output=True, text=True)
    check(p.returncode == 0, f"qemu-img {' '.join(args)}: exit {p.returncode}: {p.stdout}{p.stderr}")
    return p.stdout


def qemu_io(image, command):
    return subprocess.run(["qemu-io", "-f", "qcow2", "-c", command, image], capture_output=True, text=True, check=True).stdout


def stop_vm(client, name):
    """A clean stop (the probe powers off at the ACPI button): the worker closes its images. A
    SIGKILL (vm-destroy) may leave leaked clusters, which qemu-img check reports."""
    client.execute("vm-shutdown", {"name": name, "timeout": 30, "force": True})


def make_qcow2(d, name, size="16M"):
    path = os.path.join(d.tmp, name)
    qemu_img("create", "-q", "-f", "qcow2", path, size)
    os.chmod(path, 0o666)  # a QEMU worker opens it by path as its own uid
    return path


def scenario_snapshot(daemons):
    d = daemons[0]
    c = d.start()
    disk = make_qcow2(d, "data.qcow2")
    qemu_io(disk, "write -P 0x11 0 64k")
    c.execute("vm-define", {"definition": probe_definition("s1", disks=[{"id": "data", "path": disk, "format": "qcow2"}])})
    c.execute("vm-start", {"name": "s1"})
    ready(d, "s1")

    out = vmctl(d, "snapshot", "save", "s1", "before").stdout
    check("snapshot 'before' saved" in out, out)
    check(state_of(c, "s1") == "running", "the guest does not run again after the save")
    listed = c.execute("vm-snapshot-list", {"name": "s1"})
    check([s["tag"] for s in listed] == ["before"], f"vm-snapshot-list: {listed}")
    check(listed[0]["disks"] == ["data"] and listed[0]["state-bytes"] > 0, f"snapshot record: {listed[0]}")
    check(os.path.getsize(listed[0]["state-file"]) == listed[0]["state-bytes"], "state file size differs from the record")
    with open(listed[0]["state-file"], "rb") as f:
        head = f.read(16)
    if head[:8] == b"VMMDMIGR":  # vmm's worker (QEMU 7.2's is its own stream, without mapped-ram)
        check(head[12] == 1, f"vmm's state file is written with mapped-ram (header flags {head[12:16].hex()})")
    table = vmctl(d, "snapshot", "list", "s1").stdout
    check("before" in table and "data" in table, table)
    import json
    check(json.loads(vmctl(d, "snapshot", "list", "s1", "--json").stdout)[0]["tag"] == "before", "snapshot list --json")
    check("before" in qemu_img("snapshot", "-U", "-l", disk), "qemu-img snapshot -l does not list the tag")

    # Data written after the save, with the VM stopped (the probe guest writes nothing itself).
    stop_vm(c, "s1")
    qemu_io(disk, "write -P 0x22 0 64k")
    qemu_io(disk, "write -P 0x33 1M 64k")
    check("Pattern verification failed" not in qemu_io(disk, "read -P 0x22 0 64k"), "the new data was not written")
    # Revert of a stopped VM: disks back to the tag, the guest resumes from its saved state.
    out = vmctl(d, "snapshot", "revert", "s1", "before").stdout
    check("reverted" in out, out)
    check(state_of(c, "s1") == "running", "not running after the revert")
    stop_vm(c, "s1")
    check("Pattern verification failed" not in qemu_io(disk, "read -P 0x11 0 64k"), "data written after the save survived the revert")
    check("Pattern verification failed" not in qemu_io(disk, "read -P 0 1M 64k"), "a cluster written after the save survived the revert")
    qemu_img("check", disk)

    # Revert of a running VM: its worker is replaced by one loading the saved state.
    c.execute("vm-start", {"name": "s1"})
    ready(d, "s1")
    old_pid = c.execute("vm-info", {"name": "s1"})["pid"]
    vmctl(d, "snapshot", "save", "s1", "second")
    vmctl(d, "snapshot", "revert", "s1", "before")
    info = c.execute("vm-info", {"name": "s1"})
    check(info["state"] == "running" and info["pid"] != old_pid, f"after reverting a running VM: {info}")
    check(info["snapshots"] == 2, f"vm-info snapshots: {info}")
    status = c.execute("vm-qmp", {"name": "s1", "command": "query-status"})
    check(status["status"] == "running", f"worker status after revert: {status}")

    # Delete, with the worker running (through QMP) and stopped (through the image tool).
    state_file = [s for s in c.execute("vm-snapshot-list", {"name": "s1"}) if s["tag"] == "second"][0]["state-file"]
    vmctl(d, "snapshot", "delete", "s1", "second")
    check(not os.path.exists(state_file), "the state file of a deleted snapshot is still there")
    stop_vm(c, "s1")
    tags = qemu_img("snapshot", "-l", disk)
    check("before" in tags and "second" not in tags, f"qemu-img snapshot -l after deleting 'second': {tags}")
    vmctl(d, "snapshot", "delete", "s1", "before")
    check("before" not in qemu_img("snapshot", "-l", disk), "the disk snapshot 'before' survived its delete")
    check(c.execute("vm-snapshot-list", {"name": "s1"}) == [], "snapshot records left")
    qemu_img("check", disk)
    p = vmctl(d, "snapshot", "revert", "s1", "before", check_rc=False)
    check(p.returncode == 1 and "has no snapshot 'before'" in p.stderr, f"revert of a deleted snapshot: {p.stderr}")


def scenario_snapshot_refusals(daemons):
    d = daemons[0]
    c = d.start()
    raw = os.path.join(d.tmp, "raw.img")
    qemu_img("create", "-q", "-f", "raw", raw, "1M")
    os.chmod(raw, 0o666)
    ro = make_qcow2(d, "ro.qcow2")
    c.execute("vm-define", {"definition": probe_definition("raw1", disks=[{"id": "r", "path": raw, "format": "raw"}])})
    c.execute("vm-define", {"definition": probe_definition("ro1", disks=[{"id": "ro", "path": ro, "format": "qcow2", "readonly": True}])})
    c.execute("vm-define", {"definition": probe_definition("ok1")})
    p = vmctl(d, "snapshot", "save", "ok1", "t", check_rc=False)
    check(p.returncode == 1 and "is not running" in p.stderr, f"save of a stopped VM: {p.stderr}")
    for name in ("raw1", "ro1", "ok1"):
        c.execute("vm-start", {"name": name})
    p = vmctl(d, "snapshot", "save", "raw1", "t", check_rc=False)
    check(p.returncode == 1 and "disk 'r'" in p.stderr and "is raw" in p.stderr, f"raw disk: {p.stderr}")
    p = vmctl(d, "snapshot", "save", "ro1", "t", check_rc=False)
    check(p.returncode == 1 and "is read-only" in p.stderr, f"read-only disk: {p.stderr}")
    for tag in ("../x", ".hidden", "a b", "x" * 65):
        p = vmctl(d, "snapshot", "save", "ok1", tag, check_rc=False)
        check(p.returncode == 1 and "snapshot tag" in p.stderr, f"tag {tag!r}: {p.stderr}")
    vmctl(d, "snapshot", "save", "ok1", "t1")  # a VM without disks: the guest state alone
    p = vmctl(d, "snapshot", "save", "ok1", "t1", check_rc=False)
    check(p.returncode == 1 and "has a snapshot 't1' already" in p.stderr, f"taken tag: {p.stderr}")
    p = vmctl(d, "snapshot", "list", "nosuch", check_rc=False)
    check(p.returncode == 1 and "is not defined" in p.stderr, f"unknown VM: {p.stderr}")
    check(vmctl(d, "snapshot", "list", check_rc=False).returncode == 2, "usage error expected")
    # Another user's VM: permission denied, as every other VM command.
    os.chmod(d.run, 0o755)
    os.chmod(d.socket, 0o666)
    for args in (["snapshot", "save", "ok1", "x"], ["snapshot", "list", "ok1"], ["snapshot", "revert", "ok1", "t1"],
                 ["snapshot", "delete", "ok1", "t1"], ["migrate", "ok1", "--to", d.socket], ["migrate-cancel", "ok1"]):
        p = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", VMCTL, "--socket", d.socket] + args,
                           capture_output=True, text=True, timeout=60)
        check(p.returncode == 1 and "permission denied" in p.stderr, f"{args} by uid 65534: {p.returncode} {p.stderr}")
        if args[0] == "migrate":  # refused before the VM is even looked up: migration is root's
            check("moving a VM to another vmmd is root's" in p.stderr, f"migrate by uid 65534: {p.stderr}")
    check([s["tag"] for s in c.execute("vm-snapshot-list", {"name": "ok1"})] == ["t1"], "snapshots changed by a refused caller")
    # Undefine takes the snapshots' records and state files along.
    state_dir = os.path.join(d.state, "snapshots", "ok1")
    check(os.path.isdir(state_dir), "no state file directory")
    c.execute("vm-destroy", {"name": "ok1"})
    c.execute("vm-undefine", {"name": "ok1"})
    check(not os.path.exists(state_dir), "state files left after undefine")


def agent_definition(name):
    return probe_definition(name, agent=True)


def migrate_once(src, dst, name, to=None, shown=None):
    """`vmctl migrate NAME --to TO` (default: dst's socket); vmctl says "moved to SHOWN"."""
    cs, cd = src.client(), dst.client()
    out = vmctl(src, "migrate", name, "--to", to or dst.socket).stdout
    check(f"{name} moved to {shown or dst.socket}" in out, out)
    info = cd.execute("vm-info", {"name": name})
    check(info["state"] == "running", f"not running at the destination: {info}")
    check(name not in [vm["name"] for vm in cs.execute("vm-list")], "still defined at the source")
    check(name in [vm["name"] for vm in cd.execute("vm-list")], "not listed at the destination")
    status = cd.execute("vm-qmp", {"name": name, "command": "query-status"})
    check(status["status"] == "running", f"destination worker: {status}")
    # The console relay and the agent channel are the destination's.
    check(info["console"].startswith(dst.run), f"console socket: {info['console']}")
    import socket as sk
    s = sk.socket(sk.AF_UNIX)
    s.connect(info["console"])
    s.close()
    if info["definition"].get("agent"):
        try:
            cd.execute("vm-agent-command", {"name": name, "command": {"execute": "guest-ping"}, "timeout": 1})
        except QmpError as e:  # the probe runs no qemu-ga: the channel answers that no agent is there
            check("guest agent is not connected" in str(e), f"agent channel at the destination: {e}")
    return info


def scenario_migrate(daemons):
    a, b = daemons
    ca, cb = a.start(), b.start()
    ca.execute("vm-define", {"definition": agent_definition("m1")})
    uuid = ca.execute("vm-info", {"name": "m1"})["definition"]["uuid"]
    ca.execute("vm-start", {"name": "m1"})
    ready(a, "m1")
    for i in range(3):
        info = migrate_once(a, b, "m1")
        check(info["definition"]["uuid"] == uuid, "the definition changed on the way")
        info = migrate_once(b, a, "m1")
    check(state_of(ca, "m1") == "running", "m1 not running at the end")
    p = vmctl(a, "migrate-status", "m1")
    check("no migration in progress" in p.stdout, p.stdout)
    # A destination that already has the name refuses; the VM stays where it is.
    cb.execute("vm-define", {"definition": probe_definition("m1")})
    p = vmctl(a, "migrate", "m1", "--to", b.socket, check_rc=False)
    check(p.returncode == 1 and "already defined" in p.stderr, f"name taken at the destination: {p.stderr}")
    check(state_of(ca, "m1") == "running", "m1 stopped by a refused migration")
    p = vmctl(a, "migrate", "m1", "--to", os.path.join(b.tmp, "nothing.sock"), check_rc=False)
    check(p.returncode == 1 and "m1" in p.stderr, f"no destination: {p.stderr}")
    check(state_of(ca, "m1") == "running", "m1 stopped by a migration to nowhere")


def scenario_migrate_disk(daemons):
    """A VM with a qcow2 disk that both vmmd reach at one path moves there and back: the
    destination's worker opens the image while the source's still holds it, and the image is
    whole (qemu-img check) and keeps its data after the guest has run on each side."""
    a, b = daemons
    ca, cb = a.start(), b.start()
    disk = make_qcow2(a, "shared.qcow2")
    qemu_io(disk, "write -P 0x5a 0 64k")
    ca.execute("vm-define", {"definition": probe_definition("d1", disks=[{"id": "data", "path": disk, "format": "qcow2"}])})
    ca.execute("vm-start", {"name": "d1"})
    ready(a, "d1")
    for _ in range(2):
        migrate_once(a, b, "d1")
        migrate_once(b, a, "d1")
    stop_vm(ca, "d1")
    wait_until(lambda: state_of(ca, "d1") == "shut-off", 30, "d1 shut off")
    qemu_img("check", disk)
    check("read 65536/65536" in qemu_io(disk, "read -P 0x5a 0 64k"), "the disk's data changed")


def begin_slow_migration(daemons, name):
    """Starts VM `name` on the first vmmd and `vmctl migrate` to the second in a thread, slowed to
    32 KiB/s (even the probe's few used pages and the headers of its zero pages then take long
    enough to act mid-way); returns once the stream flows, with the clients, the thread and its
    result."""
    a, b = daemons
    ca, cb = a.start(), b.start()
    ca.execute("vm-define", {"definition": probe_definition(name)})
    ca.execute("vm-start", {"name": name})
    ready(a, name)
    t, result = start_slow_migration(a, ca, name, b.socket)
    return ca, cb, t, result


def start_slow_migration(a, ca, name, to):
    """`vmctl migrate NAME --to TO` in a thread, slowed to 32 KiB/s; returns once the stream flows,
    with the thread and its result (result["proc"] once it has ended)."""
    ca.execute("vm-qmp", {"name": name, "command": "migrate-set-parameters", "arguments": {"max-bandwidth": 32 << 10}})
    result = {}

    def run():
        result["proc"] = vmctl(a, "migrate", name, "--to", to, check_rc=False)
    t = threading.Thread(target=run)
    t.start()
    wait_until(lambda: ca.execute("vm-migrate-status", {"name": name})["phase"] == "active", 30, "migration active")
    return t, result


def full_speed(ca, name):
    ca.execute("vm-qmp", {"name": name, "command": "migrate-set-parameters", "arguments": {"max-bandwidth": 1 << 30}})


def check_source_runs(ca, cb, name):
    check(state_of(ca, name) == "running", "not running at the source")
    check(ca.execute("vm-qmp", {"name": name, "command": "query-status"})["status"] == "running", "source worker not running")
    wait_until(lambda: name not in [vm["name"] for vm in cb.execute("vm-list")], 20, "destination's half removed")


def scenario_migrate_cancel(daemons):
    a, b = daemons
    ca, cb, t, result = begin_slow_migration(daemons, "c1")
    check("active" in vmctl(a, "migrate-status", "c1").stdout, "migrate-status while active")
    check(ca.execute("vm-info", {"name": "c1"}).get("operation", "").startswith("migration to"), "vm-info operation")
    vmctl(a, "migrate-cancel", "c1")
    t.join(60)
    p = result["proc"]
    check(p.returncode == 1 and "cancelled" in p.stderr, f"cancelled migration: {p.returncode} {p.stderr}")
    check_source_runs(ca, cb, "c1")
    # The same VM still migrates afterwards.
    full_speed(ca, "c1")
    migrate_once(a, b, "c1")


def kill_destination_midway(a, b, ca, cb, name, t, result):
    """During the migration (thread t) of `name` from a to b, kills b's vmmd and its arriving
    worker: the migration fails, the VM runs at the source, and b restarted drops the half-arrived
    VM. Returns b's new client."""
    dest_pid = cb.execute("vm-info", {"name": name})["pid"]
    b.kill9()
    os.kill(dest_pid, signal.SIGKILL)
    t.join(60)
    p = result["proc"]
    check(p.returncode == 1 and "failed" in p.stderr, f"migration to a killed destination: {p.returncode} {p.stderr}")
    check(state_of(ca, name) == "running", "not running at the source")
    check(ca.execute("vm-qmp", {"name": name, "command": "query-status"})["status"] == "running", "source worker not running")
    cb = b.start()
    wait_until(lambda: name not in [vm["name"] for vm in cb.execute("vm-list")], 20, "half-arrived VM dropped")
    check(not pid_alive(dest_pid), "the destination's worker survived")
    return cb


def scenario_migrate_dest_killed(daemons):
    a, b = daemons
    ca, cb, t, result = begin_slow_migration(daemons, "k1")
    kill_destination_midway(a, b, ca, cb, "k1", t, result)


def ssh_children(daemon):
    """The ssh processes vmmd `daemon` runs (its migration's sessions)."""
    found = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except (OSError, ValueError):
            continue
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        if comm == "ssh" and ppid == daemon.proc.pid:
            found.append(int(entry))
    return found


@contextlib.contextmanager
def on_two_hosts(daemons, name):
    """The two vmmd on two hosts (two_hosts.TwoHosts), VM `name` running on the first; yields the
    hosts and both clients. The ssh servers' logs are printed when the body fails."""
    a, b = daemons
    hosts = two_hosts.TwoHosts(a.tmp)
    try:
        b.prefix = hosts.on("b")  # vmmd B, and the ssh it runs, live on host B
        ca, cb = a.start(), b.start()
        ca.execute("vm-define", {"definition": agent_definition(name)})
        ca.execute("vm-start", {"name": name})
        ready(a, name)
        yield hosts, ca, cb
    except BaseException:
        print(hosts.server_log(), file=sys.stderr)
        raise
    finally:
        hosts.close()


def ssh_shown(host, daemon):
    """How vmctl names the destination vmmd of `daemon` on `host`."""
    return f"ssh://root@{two_hosts.ADDRESSES[host]}:{two_hosts.PORT}?socket={daemon.socket}"


def scenario_migrate_hosts(daemons):
    a, b = daemons
    with on_two_hosts(daemons, "h1") as (hosts, ca, cb):
        b_ip, port = two_hosts.ADDRESSES["b"], two_hosts.PORT
        # There with the host key checked against known_hosts, back with no_verify=1.
        to_b, shown_b = hosts.uri("b", b.socket), ssh_shown("b", b)
        to_a, shown_a = hosts.uri("a", a.socket, verify=False), ssh_shown("a", a)
        # Ten round trips with QEMU as the worker (host-only, TCG). With vmm (label kvm) this test
        # runs in an L1 on hosts without KVM, once per build tree: three there, ten with a Linux
        # guest in the nested tier (tests/nested/scenarios/vmmd-migrate.sh).
        for i in range(10 if a.worker == "qemu" else 3):
            migrate_once(a, b, "h1", to=to_b, shown=shown_b)
            migrate_once(b, a, "h1", to=to_a, shown=shown_a)
        check(state_of(ca, "h1") == "running", "h1 not running at the end")
        wait_until(lambda: not ssh_children(a) and not ssh_children(b), 10, "the ssh sessions of finished migrations gone")

        def refused(to, expected):
            p = vmctl(a, "migrate", "h1", "--to", to, check_rc=False)
            check(p.returncode == 1 and expected in p.stderr, f"migrate --to {to}: exit {p.returncode}: {p.stderr}")
            check(state_of(ca, "h1") == "running", f"h1 not running at the source after: {p.stderr}")
            check(ca.execute("vm-qmp", {"name": "h1", "command": "query-status"})["status"] == "running", "source worker stopped")
            check("h1" not in [vm["name"] for vm in cb.execute("vm-list")], f"h1 left in the destination's store: {p.stderr}")
            wait_until(lambda: not ssh_children(a), 10, "the ssh sessions of a failed migration gone")
            return p.stderr
        refused(hosts.uri("b", b.socket, key=hosts.wrong_key), "Permission denied (publickey)")
        bad_known = os.path.join(a.tmp, "known_hosts_wrong")
        with open(bad_known, "w") as f:  # host B's address with host A's key
            f.write(f"[{b_ip}]:{port} {' '.join(hosts.host_keys['a'].split()[:2])}\n")
        refused(f"ssh://root@{b_ip}:{port}?socket={b.socket}&keyfile={hosts.key}&known_hosts={bad_known}", "Host key verification failed")
        # A bare HOST is ssh://root@HOST on port 22, where nothing listens.
        err = refused(b_ip, f"ssh: connect to host {b_ip} port 22: Connection refused")
        check(f"destination ssh://root@{b_ip}: " in err, f"the destination is not named: {err}")
        refused(hosts.uri("b", os.path.join(b.tmp, "nothing.sock")), "cannot connect to")
        p = vmctl(a, "migrate", "h1", "--to", "ssh://-oProxyCommand=touch%20x", check_rc=False)
        check(p.returncode == 2 and "starts with '-'" in p.stderr, f"an option as host: {p.returncode} {p.stderr}")

        # Cancelled mid-way: the stream's ssh goes, the VM runs here, nothing of it there.
        t, result = start_slow_migration(a, ca, "h1", to_b)
        check(len(ssh_children(a)) == 2, f"ssh sessions while active: {ssh_children(a)}")
        vmctl(a, "migrate-cancel", "h1")
        t.join(60)
        check(result["proc"].returncode == 1 and "cancelled" in result["proc"].stderr, f"cancel: {result['proc'].stderr}")
        check_source_runs(ca, cb, "h1")
        wait_until(lambda: not ssh_children(a), 10, "the ssh sessions of a cancelled migration gone")
        full_speed(ca, "h1")

        hosts.stop_server("b")
        refused(to_b, f"ssh: connect to host {b_ip} port {port}: Connection refused")


def scenario_migrate_hosts_midway(daemons):
    a, b = daemons
    with on_two_hosts(daemons, "l1") as (hosts, ca, cb):
        to_b = hosts.uri("b", b.socket)
        t, result = start_slow_migration(a, ca, "l1", to_b)
        check("l1" in [vm["name"] for vm in cb.execute("vm-list")], "no half at the destination while active")
        hosts.link("down")
        t.join(90)
        p = result["proc"]
        check(p.returncode == 1 and "failed" in p.stderr, f"migration over a link that went down: {p.returncode} {p.stderr}")
        check(state_of(ca, "l1") == "running", "not running at the source")
        check(ca.execute("vm-qmp", {"name": "l1", "command": "query-status"})["status"] == "running", "source worker not running")
        wait_until(lambda: not ssh_children(a), 10, "the ssh sessions of the failed migration gone")
        # Back up: the destination's sessions end (dropbear's keepalive), its half goes with them.
        hosts.link("up")
        wait_until(lambda: "l1" not in [vm["name"] for vm in cb.execute("vm-list")], 60, "the destination's half dropped")

        # The destination dies: its vmmd and the arriving worker killed, as in migrate_dest_killed.
        t, result = start_slow_migration(a, ca, "l1", to_b)
        cb = kill_destination_midway(a, b, ca, cb, "l1", t, result)
        wait_until(lambda: not ssh_children(a), 10, "the ssh sessions to the dead destination gone")

        full_speed(ca, "l1")
        migrate_once(a, b, "l1", to=to_b, shown=ssh_shown("b", b))


def scenario_incoming_refusals(daemons):
    """The destination's half on its own: a stream that is not a migration, an abort before any
    stream, and commands for VMs that are not arriving."""
    import socket as sk
    b = daemons[0]
    cb = b.start()
    vms = lambda: [vm["name"] for vm in cb.execute("vm-list")]  # noqa: E731
    ep = cb.execute("vm-migrate-incoming", {"definition": probe_definition("in1"), "run": True})
    check(ep["name"] == "in1" and os.path.exists(ep["socket"]), f"vm-migrate-incoming: {ep}")
    check("in1" in vms(), "the arriving VM is not defined")
    s = sk.socket(sk.AF_UNIX)
    s.connect(ep["socket"])
    s.sendall(b"this is not a migration stream\n" * 64)
    s.close()
    wait_until(lambda: "in1" not in vms(), 30, "a VM whose stream failed dropped")
    try:
        cb.execute("vm-migrate-commit", {"name": "in1"})
        raise AssertionError("commit of a failed arrival succeeded")
    except QmpError as e:
        check("not arriving" in str(e) or "not defined" in str(e), f"commit after a failed arrival: {e}")

    ep = cb.execute("vm-migrate-incoming", {"definition": probe_definition("in2")})
    cb.execute("vm-migrate-abort", {"name": "in2"})
    wait_until(lambda: "in2" not in vms(), 30, "an aborted arrival dropped")
    check(not os.path.exists(ep["socket"]), "the incoming socket outlived the abort")

    # A source that hangs up before its commit never commits: the arrival goes with its connection.
    source = b.client()
    ep = source.execute("vm-migrate-incoming", {"definition": probe_definition("in3")})
    check("in3" in vms(), "the arriving VM is not defined")
    source.close()
    wait_until(lambda: "in3" not in vms(), 30, "an arrival whose source hung up dropped")
    check(not os.path.exists(ep["socket"]), "the incoming socket outlived its source's connection")
    check("the source's control connection closed before its commit" in b.log(), "no log line for the dropped arrival")

    cb.execute("vm-define", {"definition": probe_definition("here")})
    for command in ("vm-migrate-commit", "vm-migrate-abort"):
        try:
            cb.execute(command, {"name": "here"})
            raise AssertionError(f"{command} of a VM that is not arriving succeeded")
        except QmpError as e:
            check("is not arriving here" in str(e), f"{command}: {e}")
    try:
        cb.execute("vm-migrate-incoming", {"definition": probe_definition("here")})
        raise AssertionError("an arrival replaced a defined VM")
    except QmpError as e:
        check("already defined" in str(e), f"arrival under a taken name: {e}")
    check(cb.execute("vm-info", {"name": "here"})["state"] == "shut-off", "the defined VM changed")


def main():
    scenario = sys.argv[1] if len(sys.argv) > 1 else ""
    worker = sys.argv[2] if len(sys.argv) > 2 else "vmm"
    fn = globals().get("scenario_" + scenario)
    if not fn or worker not in ("vmm", "qemu"):
        print(__doc__)
        return 2
    if worker != "qemu" and (status := require_kvm()) is not None:
        return status
    if scenario.startswith("migrate_hosts") and os.environ.get("VMMD_TWO_HOSTS") != "1":
        if os.geteuid() != 0:
            return cannot_run("migrate_hosts needs root (network namespaces)")
        if (tool := two_hosts.missing_tool()) is not None:
            return cannot_run(tool + " is missing (scripts/install-deps.sh installs it)")
        # Host A is a network namespace of its own: nothing reaches the machine's network.
        env = dict(os.environ, VMMD_TWO_HOSTS="1")
        return subprocess.call(["unshare", "-n", sys.executable, os.path.abspath(__file__)] + sys.argv[1:], env=env)
    daemons = [new_daemon(worker) for _ in range(2 if scenario.startswith("migrate") else 1)]
    failed = True
    try:
        fn(daemons)
        for d in daemons:
            check(d.proc is None or d.proc.poll() is None, "vmmd exited during the test")
            d.stop()
            check_sanitizers(d)
        failed = False
    except BaseException:
        for i, d in enumerate(daemons):
            print(f"--- vmmd {i} log ---\n" + d.log(), file=sys.stderr)
            vms = os.path.join(d.run, "vms")
            for name in os.listdir(vms) if os.path.isdir(vms) else []:
                try:
                    with open(os.path.join(vms, name, "worker.log"), errors="replace") as f:
                        print(f"--- vmmd {i} worker {name} ---\n" + f.read()[-3000:], file=sys.stderr)
                except OSError:
                    pass
        raise
    finally:
        for d in daemons:
            d.cleanup(failed)
    print(f"{scenario} ({worker}): ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
