#!/usr/bin/env python3
"""Live migration end to end: two vmm processes with the probe guest counting timer ticks
("count"), the source migrating to a destination over each transport, and what must fail.

  unix:   -incoming unix:PATH; the guest counts on at the destination from where it stopped,
          the source ends in postmigrate, query-migrate's figures are sane, MIGRATION and
          MIGRATION_PASS events arrive in order, STOP on the source and RESUME on the destination
  tcp:    -incoming defer + migrate-incoming tcp:127.0.0.1:PORT
  fd:     a socketpair, one end inherited by each process (migrate fd:N, -incoming fd:N)
  sandbox: the same with both under -sandbox on (the migration thread's seccomp role) and one
          qcow2 disk on both (the destination starts while the source holds its locks; the source
          hands it over): the guest counts on, no forbidden system call, `cont` on the source is
          refused while the destination has the disk, the image is clean; unix:, tcp: and exec: are refused naming the
          sandbox and pointing at fd:, from migrate and from -incoming
  exec:   migrate "exec:cat > FILE", then a destination with -incoming "exec:cat FILE"; -S keeps it paused
  refused: a corrupted and a truncated stream file, a destination with other RAM or devices: the
          destination exits 1 naming the problem (QEMU's behaviour) and never runs the guest; on a
          socket the source is told and keeps running (status failed)
  cancel: migrate_cancel mid-way (max-bandwidth low): cancelled, the source runs on
  connect-cancel: migrate_cancel while a tcp: connect waits on a host that drops SYNs: cancelled
          at once, the source runs on
  killed:  the destination killed mid-way: failed with error-desc, the source runs on
  no convergence: downtime-limit 0 on a guest that always dirties a page: failed after a bounded
                  number of passes with the reason

    migration.py VMM PROBE_ELF
"""
import os
import re
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from vmmd_testlib.kvm_gate import require_kvm  # noqa: E402
from vmmd_testlib.probe_vm import ProbeVm, check, failures, wait_migration, wait_status  # noqa: E402
from vmmd_testlib.qmp import QmpError  # noqa: E402
from vmmd_testlib.tempdir import temp_dir  # noqa: E402

vmm, probe = sys.argv[1], sys.argv[2]
if (status := require_kvm()) is not None:
    sys.exit(status)


class Vm(ProbeVm):
    def __init__(self, tmp, name, *args, **kwargs):
        super().__init__(vmm, probe, tmp, name, *args, **kwargs)


def check_moved(src, dst, label):
    """The source stopped at count N in postmigrate; the destination counts on (check_continues)."""
    check(wait_status(src, "postmigrate") == "postmigrate", f"{label}: the source ends in postmigrate")
    check(wait_status(dst, "running") == "running", f"{label}: the destination runs")
    last_src = src.counts()[-1]
    time.sleep(0.3)
    check(src.counts()[-1] == last_src, f"{label}: the source's guest no longer counts ({last_src})")
    check_continues(src, dst, last_src, label)


def check_continues(src, dst, last_src, label):
    """The source's last whole line was count N: the destination counts on from N+1, or from N+2
    when the source stopped in the middle of printing line N+1 (each byte is an exit, so the stop
    can fall between two; under an emulated L1 a line takes long enough that it does): then the
    source's unfinished line and the destination's first bytes join into that whole line."""
    check(dst.wait_count(last_src + 3) is not None, f"{label}: the destination's guest counts past {last_src + 3}")
    first = dst.counts()[0] if dst.counts() else None
    check(first is not None and first - last_src in (1, 2),
          f"{label}: the destination's count continues the source's ({last_src} -> {first})")
    if first == last_src + 2:
        with open(src.serial) as f_src, open(dst.serial) as f_dst:
            tail, head = f_src.read().rsplit("\n", 1)[1], f_dst.read().split("\n", 1)[0]
        check(re.fullmatch(rf"PROBE name=(?:count|dirty) n={last_src + 1}(?: [a-z_]+=\d+)+", tail + head) is not None,
              f"{label}: the line cut by the move joins whole ({tail!r} + {head!r})")


def check_runs_on(src, label, what="counts"):
    """After a migration that did not happen: the source runs, and its guest goes on."""
    check(wait_status(src, "running") == "running", f"{label}: the source runs on")
    n = src.counts()[-1]
    check(src.wait_count(n + 2) is not None, f"{label}: the source's guest {what} on")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


with temp_dir("vmm-migration-") as tmp:
    vms = []

    def new_vm(*args, **kwargs):
        vm = Vm(tmp, *args, **kwargs)
        vms.append(vm)
        return vm

    try:
        # ---- unix: ------------------------------------------------------------------------------
        src = new_vm("unix-src")
        dst = new_vm("unix-dst", ["-incoming", f"unix:{tmp}/unix.mig"])
        check(dst.status() == "inmigrate", "unix: the destination waits in inmigrate")
        check(src.qmp.execute("query-migrate") == {}, "unix: query-migrate before any migration is {}")
        check(src.wait_count(3) is not None, "unix: the source's guest counts")
        src.qmp.execute("migrate-set-capabilities", {"capabilities": [{"capability": "events", "state": True}]})
        caps = {c["capability"]: c["state"] for c in src.qmp.execute("query-migrate-capabilities")}
        check(caps.get("events") is True and caps.get("xbzrle") is False, "unix: capability events on, the rest off")
        src.qmp.execute("migrate", {"uri": f"unix:{tmp}/unix.mig"})
        info = wait_migration(src)
        check(info.get("status") == "completed", f"unix: completed ({info.get('status')} {info.get('error-desc', '')})")
        ram = info.get("ram", {})
        check(ram.get("total") == 64 << 20, f"unix: ram total is the guest's 64 MiB ({ram.get('total')})")
        check(ram.get("remaining") == 0, "unix: nothing remains")
        check(0 < ram.get("transferred", 0) < 64 << 20, f"unix: transferred {ram.get('transferred')} bytes (zero pages as counts)")
        check(ram.get("duplicate", 0) + ram.get("normal", 0) >= 16384, "unix: every page was sent once at least")
        check(ram.get("dirty-sync-count", 0) >= 1, f"unix: dirty-sync-count {ram.get('dirty-sync-count')}")
        check(0 <= info.get("downtime", -1) <= info.get("total-time", -1), f"unix: downtime {info.get('downtime')} ms <= total {info.get('total-time')} ms")
        check(0 <= info.get("setup-time", -1) <= info.get("total-time", -1), "unix: setup-time within total-time")
        print(f"     figures: total-time {info.get('total-time')} ms, downtime {info.get('downtime')} ms, "
              f"{ram.get('transferred')} bytes, {ram.get('dirty-sync-count')} passes")
        check_moved(src, dst, "unix")
        statuses = [e["data"]["status"] for e in src.qmp.take_events(20, timeout=1) if e["event"] == "MIGRATION"]
        src.qmp.events.clear()
        check(statuses[:2] == ["setup", "active"] and statuses[-1] == "completed", f"unix: MIGRATION events {statuses}")
        check(src.qmp.execute("query-migrate")["status"] == "completed", "unix: query-migrate still completed")
        dst_info = dst.qmp.execute("query-migrate")
        check(dst_info.get("status") == "completed", f"unix: the destination's query-migrate says completed ({dst_info})")
        try:
            src.qmp.execute("migrate-incoming", {"uri": "unix:/nonexistent"})
            check(False, "unix: migrate-incoming without -incoming defer is refused")
        except QmpError as e:
            check("'-incoming' was not specified" in e.desc, f"unix: migrate-incoming refused: {e.desc}")
        src.kill()
        dst.kill()

        # ---- bad -incoming URIs: refused at start with the reason ------------------------------
        for uri, reason in (("bogus:x", "expects a valid migration protocol"),
                            ("unix:/nonexistent/x", "Failed to bind socket to /nonexistent/x"),
                            ("fd:77", "File descriptor named '77' has not been found")):
            bad = Vm(tmp, "bad-incoming", ["-incoming", uri], wait_qmp=False)
            vms.append(bad)
            code = bad.wait_exit()
            check(code == 1 and reason in bad.stderr(), f"-incoming {uri}: refused at start ({code}: {bad.stderr().strip()})")
        try:
            src = new_vm("bad-uri-src")
            src.qmp.execute("migrate", {"uri": "bogus:x"})
            check(False, "migrate bogus:x is refused")
        except QmpError as e:
            check("expects a valid migration protocol" in e.desc, f"migrate bogus:x refused: {e.desc}")
        src.qmp.execute("migrate", {"uri": f"unix:{tmp}/nobody.mig"})
        info = wait_migration(src)
        check(info.get("status") == "failed" and "Failed to connect" in info.get("error-desc", ""),
              f"migrate to a socket nobody listens on: failed with the reason ({info.get('error-desc')})")
        check(src.status() == "running", "migrate to nobody: the guest runs on")
        src.kill()

        # ---- tcp: with -incoming defer ----------------------------------------------------------
        port = free_port()
        # The guest prints without sleeping ("count busy"): the stop lands mid-line, and the two
        # consoles must join into whole consecutive lines.
        src = new_vm("tcp-src", action="count busy")
        dst = new_vm("tcp-dst", ["-incoming", "defer"], action="count busy")
        check(dst.status() == "inmigrate", "tcp: -incoming defer waits in inmigrate")
        dst.qmp.execute("migrate-incoming", {"uri": f"tcp:127.0.0.1:{port}"})
        try:
            dst.qmp.execute("migrate-incoming", {"uri": f"tcp:127.0.0.1:{port + 1}"})
            check(False, "tcp: a second migrate-incoming is refused")
        except QmpError as e:
            check("already been started" in e.desc, f"tcp: a second migrate-incoming is refused: {e.desc}")
        check(src.wait_count(3) is not None, "tcp: the source's guest counts")
        src.qmp.execute("migrate-set-capabilities", {"capabilities": [{"capability": "events", "state": True}]})
        src.qmp.execute("migrate", {"uri": f"tcp:127.0.0.1:{port}"})
        info = wait_migration(src)
        check(info.get("status") == "completed", f"tcp: completed ({info.get('status')} {info.get('error-desc', '')})")
        passes = [e for e in src.qmp.take_events(20, timeout=1) if e["event"] == "MIGRATION_PASS"]
        check(passes and passes[0]["data"]["pass"] == 1, f"tcp: MIGRATION_PASS events {[p['data'] for p in passes]}")
        check_moved(src, dst, "tcp")
        src.kill()
        dst.kill()
        with open(src.serial) as f_src, open(dst.serial) as f_dst:
            joined = f_src.read() + f_dst.read()
        lines = joined[joined.index("PROBE name=ready"):].splitlines()[1:-1]  # the last may be cut by the kill
        ns = [int(m.group(1)) for m in (re.fullmatch(r"PROBE name=count n=(\d+) timer_irqs=\d+", line) for line in lines) if m]
        check(len(ns) == len(lines) and ns == list(range(ns[0], ns[0] + len(ns))),
              f"tcp: the two consoles join into {len(lines)} whole consecutive lines, none lost or doubled")
        dst.kill()

        # ---- fd: an inherited socketpair ---------------------------------------------------------
        a, b = socket.socketpair()
        a_fd, b_fd = a.fileno(), b.fileno()
        src = new_vm("fd-src", pass_fds=[a_fd])
        dst = new_vm("fd-dst", ["-incoming", f"fd:{b_fd}"], pass_fds=[b_fd])
        a.close()
        b.close()
        check(src.wait_count(3) is not None, "fd: the source's guest counts")
        src.qmp.execute("migrate", {"uri": f"fd:{a_fd}"})
        info = wait_migration(src)
        check(info.get("status") == "completed", f"fd: completed ({info.get('status')} {info.get('error-desc', '')})")
        check_moved(src, dst, "fd")
        src.kill()
        dst.kill()

        # ---- sandbox: fd: under -sandbox on on both sides; other URIs refused with the reason -----
        a, b = socket.socketpair()
        a_fd, b_fd = a.fileno(), b.fileno()
        # One qcow2 disk on both: the destination starts while the source holds the image's locks,
        # the source hands the image over at the end (under seccomp, on its main loop).
        disk = os.path.join(tmp, "sandbox.qcow2")
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", disk, "16M"], check=True)
        drive = ["-drive", f"file={disk},format=qcow2,if=none,id=d0", "-device", "virtio-blk-pci,drive=d0,id=blk0"]
        src = new_vm("sandbox-src", ["-sandbox", "on", *drive], pass_fds=[a_fd])
        dst = new_vm("sandbox-dst", ["-sandbox", "on", "-incoming", f"fd:{b_fd}", *drive], pass_fds=[b_fd])
        a.close()
        b.close()
        check(src.wait_count(3) is not None, "sandbox: the source's guest counts")
        for uri, reason in ((f"unix:{tmp}/sandbox.mig", "unix: and tcp: need socket"),
                            ("tcp:127.0.0.1:1", "unix: and tcp: need socket"),
                            ("exec:cat > /dev/null", "exec: needs fork and execve")):
            try:
                src.qmp.execute("migrate", {"uri": uri})
                check(False, f"sandbox: migrate {uri} is refused")
            except QmpError as e:
                check("-sandbox on" in e.desc and reason in e.desc and "fd:" in e.desc, f"sandbox: migrate {uri} refused: {e.desc}")
        src.qmp.execute("migrate", {"uri": f"fd:{a_fd}"})
        info = wait_migration(src)
        check(info.get("status") == "completed", f"sandbox: completed ({info.get('status')} {info.get('error-desc', '')})")
        check_moved(src, dst, "sandbox")
        try:
            src.qmp.execute("cont")
            check(False, "sandbox: cont on the source is refused while the destination has the disk")
        except QmpError as e:
            check("Could not reactivate" in e.desc and "lock" in e.desc, f"sandbox: cont on the source refused: {e.desc}")
        for vm in (src, dst):
            check(vm.proc.poll() is None and "seccomp" not in vm.stderr(),
                  f"sandbox: {vm.name} alive, no forbidden system call ({vm.stderr().strip()[-200:]})")
        src.kill()
        dst.kill()
        checked = subprocess.run(["qemu-img", "check", "-q", disk], capture_output=True, text=True)
        check(checked.returncode == 0, f"sandbox: the disk is clean after the hand-over ({checked.stdout}{checked.stderr})")
        for uri, reason in ((f"unix:{tmp}/sandbox-in.mig", "unix: and tcp: need socket"), ("exec:cat /dev/null", "exec: needs fork")):
            bad = Vm(tmp, "sandbox-bad-incoming", ["-sandbox", "on", "-incoming", uri], wait_qmp=False)
            vms.append(bad)
            code = bad.wait_exit()
            check(code == 1 and "-sandbox on" in bad.stderr() and reason in bad.stderr() and "fd:" in bad.stderr(),
                  f"sandbox: -incoming {uri} refused at start ({code}: {bad.stderr().strip()})")

        # ---- exec: through a file; corrupted, truncated and mismatched streams -------------------
        stream = os.path.join(tmp, "stream.bin")
        src = new_vm("exec-src")
        check(src.wait_count(3) is not None, "exec: the source's guest counts")
        src.qmp.execute("migrate", {"uri": f"exec:cat > {stream}"})
        info = wait_migration(src)
        check(info.get("status") == "completed", f"exec: completed ({info.get('status')} {info.get('error-desc', '')})")
        check(wait_status(src, "postmigrate") == "postmigrate", "exec: the source ends in postmigrate")
        last_src = src.counts()[-1]
        src.kill()
        dst = new_vm("exec-dst", ["-S", "-incoming", f"exec:cat {stream}"])
        check(wait_status(dst, "paused") == "paused", "exec: with -S the loaded destination stays paused")
        dst.qmp.execute("cont")
        check_continues(src, dst, last_src, "exec: after cont")
        dst.kill()

        with open(stream, "rb") as f:
            data = bytearray(f.read())
        refused = {
            "corrupted": (bytes(data[:len(data) // 2]) + bytes([data[len(data) // 2] ^ 0x10]) + bytes(data[len(data) // 2 + 1:]),
                          [], "checksum mismatch"),
            "truncated": (bytes(data[:len(data) - 100]), [], "ended early"),
            "other RAM size": (bytes(data), ["-m", "128"], "RAM size differs"),
            "another device": (bytes(data), ["-device", "virtio-rng-pci,id=rng0"], "device #0 virtio-rng-pci (id rng0): the source has none"),
        }
        for label, (content, extra, reason) in refused.items():
            bad = os.path.join(tmp, "bad.bin")
            with open(bad, "wb") as f:
                f.write(content)
            dst = Vm(tmp, "refused", ["-incoming", f"exec:cat {bad}", *extra], wait_qmp=False)
            vms.append(dst)
            code = dst.wait_exit()
            err = dst.stderr()
            check(code == 1 and reason in err, f"{label}: the destination exits 1 naming it ({code}: {err.strip()[-160:]})")
            check(dst.counts() == [], f"{label}: the destination's guest never ran")

        # A mismatched destination on a socket: the source learns it and keeps its guest.
        src = new_vm("mismatch-src")
        dst = new_vm("mismatch-dst", ["-m", "128", "-incoming", f"unix:{tmp}/mismatch.mig"])
        check(src.wait_count(2) is not None, "mismatch: the source's guest counts")
        src.qmp.execute("migrate", {"uri": f"unix:{tmp}/mismatch.mig"})
        info = wait_migration(src)
        check(info.get("status") == "failed", f"mismatch: the source's migration failed ({info})")
        check(dst.wait_exit() == 1 and "RAM size differs" in dst.stderr(), "mismatch: the destination exits 1 naming the RAM size")
        check_runs_on(src, "mismatch")
        src.kill()

        # ---- migrate_cancel mid-way ----------------------------------------------------------
        src = new_vm("cancel-src")
        dst = new_vm("cancel-dst", ["-incoming", f"unix:{tmp}/cancel.mig"])
        check(src.wait_count(2) is not None, "cancel: the source's guest counts")
        src.qmp.execute("migrate-set-parameters", {"max-bandwidth": 20000})
        check(src.qmp.execute("query-migrate-parameters")["max-bandwidth"] == 20000, "cancel: max-bandwidth set")
        src.qmp.execute("migrate", {"uri": f"unix:{tmp}/cancel.mig"})
        info = wait_migration(src, timeout=10, final=("active",))
        time.sleep(0.5)
        info = src.qmp.execute("query-migrate")
        check(info.get("status") == "active" and "expected-downtime" in info, f"cancel: active mid-way ({info.get('status')})")
        sent = info.get("ram", {}).get("transferred", 0)
        check(0 < sent < 60000, f"cancel: max-bandwidth 20000 B/s honoured ({sent} bytes after ~0.5 s)")
        src.qmp.execute("migrate_cancel")
        info = wait_migration(src, timeout=10)
        check(info.get("status") == "cancelled", f"cancel: cancelled ({info.get('status')})")
        check_runs_on(src, "cancel")
        check(dst.wait_exit() == 1, "cancel: the destination gives up (exit 1)")
        src.kill()

        # ---- migrate_cancel while a tcp: connect hangs -----------------------------------------
        # A listener that never accepts, its queue full: Linux drops further SYNs, so the
        # source's connect would wait out the kernel's retries (~2 min) if a cancel could not end it.
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen(0)
            fillers = [socket.socket() for _ in range(2)]
            for f in fillers:
                f.setblocking(False)
                f.connect_ex(listener.getsockname())
            src = new_vm("hang-src")
            check(src.wait_count(2) is not None, "connect-cancel: the source's guest counts")
            src.qmp.execute("migrate", {"uri": f"tcp:127.0.0.1:{listener.getsockname()[1]}"})
            time.sleep(1)
            info = src.qmp.execute("query-migrate")
            check(info.get("status") == "setup", f"connect-cancel: still connecting after 1 s ({info.get('status')})")
            src.qmp.execute("migrate_cancel")
            info = wait_migration(src, timeout=5)
            check(info.get("status") == "cancelled", f"connect-cancel: cancelled within 5 s ({info})")
            check_runs_on(src, "connect-cancel")
            src.kill()
            for f in fillers:
                f.close()

        # ---- the destination killed mid-way --------------------------------------------------
        src = new_vm("killed-src")
        dst = new_vm("killed-dst", ["-incoming", f"unix:{tmp}/killed.mig"])
        check(src.wait_count(2) is not None, "killed: the source's guest counts")
        src.qmp.execute("migrate-set-parameters", {"max-bandwidth": 20000})
        src.qmp.execute("migrate", {"uri": f"unix:{tmp}/killed.mig"})
        wait_migration(src, timeout=10, final=("active",))
        time.sleep(0.3)
        dst.kill()
        info = wait_migration(src, timeout=10)
        check(info.get("status") == "failed" and info.get("error-desc"), f"killed: failed with a reason ({info.get('error-desc')})")
        check_runs_on(src, "killed")
        src.kill()

        # ---- a guest dirtying 4 MiB without pause: converges under the default limits --------
        # ... where the migration has a CPU of its own. With one CPU (a one-vCPU L1: scripts/
        # kvm-tests-l1.sh) the guest's dirtying loop and the migration share it: 6 MB/s sent
        # against 4 MiB dirtied a pass, which no 300 ms limit lets end (QEMU alike, short of
        # auto-converge); there the step checks the dirty passes under a 5 s limit.
        src = new_vm("dirty-src", action="dirty")
        dst = new_vm("dirty-dst", ["-incoming", f"unix:{tmp}/dirty.mig"], action="dirty")
        check(src.wait_count(3) is not None, "dirty: the source's guest dirties memory")
        if len(os.sched_getaffinity(0)) < 2:
            src.qmp.execute("migrate-set-parameters", {"downtime-limit": 5000})
            print("     one CPU here: the dirty step runs under a 5 s downtime limit")
        src.qmp.execute("migrate", {"uri": f"unix:{tmp}/dirty.mig"})
        info = wait_migration(src)
        ram = info.get("ram", {})
        check(info.get("status") == "completed", f"dirty: completed ({info.get('status')} {info.get('error-desc', '')})")
        check(ram.get("dirty-sync-count", 0) >= 1 and ram.get("normal", 0) > 1024,
              f"dirty: {ram.get('normal')} pages with data over {ram.get('dirty-sync-count')} passes")
        print(f"     figures (dirtying guest): total-time {info.get('total-time')} ms, downtime {info.get('downtime')} ms, "
              f"{ram.get('transferred')} bytes, {ram.get('dirty-sync-count')} passes, dirty-pages-rate {ram.get('dirty-pages-rate')}")
        check(wait_status(dst, "running") == "running", "dirty: the destination runs")
        last_src = src.counts()[-1]
        check(dst.wait_count(last_src + 10) is not None, "dirty: the destination's guest dirties on")
        dst_lines = dst.lines()
        check(dst_lines and dst_lines[0][0] >= last_src and all(bad == 0 for _, bad in dst_lines),
              f"dirty: every page holds what the guest last wrote (source ended at round {last_src}, destination {dst_lines[:2]})")
        src.kill()
        dst.kill()

        # ---- a guest that never gets under the downtime limit ---------------------------------
        src = new_vm("converge-src", action="dirty")
        dst = new_vm("converge-dst", ["-incoming", f"unix:{tmp}/converge.mig"], action="dirty")
        check(src.wait_count(2) is not None, "converge: the source's guest dirties memory")
        # Passes of ~1/2 s (4 MiB at 8 MiB/s): long enough that the guest runs in each, even on a
        # loaded host, so every sync finds pages to send and a limit of 0 is never met.
        src.qmp.execute("migrate-set-parameters", {"downtime-limit": 0, "max-bandwidth": 8 << 20})
        src.qmp.execute("migrate", {"uri": f"unix:{tmp}/converge.mig"})
        info = wait_migration(src, timeout=60)
        check(info.get("status") == "failed" and "did not converge" in info.get("error-desc", ""),
              f"converge: failed after bounded passes ({info})")
        check(info.get("ram", {}).get("dirty-sync-count") is None, "converge: a failed migration reports no ram (QEMU)")
        check_runs_on(src, "converge", "dirties")
        src.kill()
        dst.kill()
    finally:
        for vm in vms:
            vm.kill()

print(f"{len(failures)} failure(s)" if failures else "all migration checks passed")
sys.exit(1 if failures else 0)
