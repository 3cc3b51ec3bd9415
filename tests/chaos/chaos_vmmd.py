#!/usr/bin/env python3
"""Chaos harness: vmmd is killed with SIGKILL again and again under a workload, and after every
kill a restarted vmmd must have lost nothing and left nothing behind.

The workload: a handful of probe-guest VMs (restart / preserve / destroy crash policies; some
guests honour the power button, some ignore it so their shutdowns time out or are forced) that
are defined, started, shut down, destroyed and undefined at random. vmmd is killed either at a
random moment or at a chosen point inside it (VMMD_CHAOS_POINT, see
daemon/supervisor/chaos_point.h): just before and after a worker's spawn, right after its pid is
committed, just before and after a destroy's SIGKILL, right after a shutdown's deadline is
committed.

After each kill: `PRAGMA integrity_check` of the store is "ok"; vmmd restarts and then
  - every definition whose vm-define was acknowledged (and no vm-undefine sent since) is listed;
  - every vmm process of this run dir is the recorded worker (vm-info's pid) of a defined VM;
  - a VM whose destroy was acknowledged (or was killed at before-kill / after-kill) is shut off
    and stays so (no restart policy brings it back);
  - no VM stays shutting-down past its deadline, and a vm-shutdown of a VM recovered while
    shutting down is answered;
  - a VM caught at a spawn point starts again (no orphan holds its pidfile).

Usage: chaos_vmmd.py [--kills N] [--seed S] [--vms K] [--points P,...] [--keep-going]. Paths from VMMD, VMM, PROBE_ELF."""
import argparse
import collections
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "daemon"))
from vmmd_harness import (Daemon, QmpError, check, probe_definition, require_kvm,  # noqa: E402
                          wait_until)
from vmmd_testlib.process import live_processes  # noqa: E402

POINTS = ["before-spawn", "after-spawn", "after-commit", "before-kill", "after-kill", "after-shutdown-commit"]
# What the workload must do to pass each point.
POINT_ACTION = {"before-spawn": "start", "after-spawn": "start", "after-commit": "start",
                "before-kill": "destroy", "after-kill": "destroy", "after-shutdown-commit": "shutdown"}
SHUTDOWN_TIMEOUT_S = 2
BACKOFF = {"initial_ms": 100, "max_ms": 400}


class Lost(Exception):
    """vmmd died while a command was in flight."""


class Chaos:
    def __init__(self, args):
        self.rng = random.Random(args.seed)
        self.names = ["c%d" % i for i in range(args.vms)]
        self.daemon = Daemon()
        self.client = None
        # What the harness knows for certain (acknowledged by vmmd).
        self.defined = set()        # vm-define acknowledged, no vm-undefine sent since
        self.maybe_defined = set()  # vm-define sent, vmmd died before answering
        self.destroyed = set()      # vm-destroy acknowledged (or committed: killed at a kill point), no start sent since
        self.in_flight = None       # (action, name) of the command vmmd died under
        self.stats = collections.Counter()
        self.failures = []
        self.points = args.points.split(",") if args.points else POINTS
        self.keep_going = args.keep_going

    # -- vmmd ------------------------------------------------------------------------------------
    def start_vmmd(self, point=None):
        """vmmd (re)started, with `point` armed. A vmmd killed while spawning leaves a child that
        holds a copy of the control socket until its exec closes it (close-on-exec): for that
        moment the new vmmd refuses the socket as in use, and is started again."""
        for attempt in range(20):
            if point:
                os.environ["VMMD_CHAOS_POINT"] = point
            log_size = len(self.daemon.log())
            try:
                self.client = self.daemon.start()
                return
            except (RuntimeError, ConnectionError, TimeoutError):
                if self.alive():
                    self.daemon.proc.wait(5)
                if "is in use: a process is listening on it" not in self.daemon.log()[log_size:] or attempt == 19:
                    raise
                self.stats["restarts retried (control socket still held)"] += 1
                time.sleep(0.1)
            finally:
                os.environ.pop("VMMD_CHAOS_POINT", None)

    def alive(self):
        return self.daemon.proc is not None and self.daemon.proc.poll() is None

    def execute(self, command, args, timeout=30):
        try:
            return self.client.execute(command, args, timeout=timeout)
        except TimeoutError as e:
            if self.alive():
                raise AssertionError("vmmd did not answer %s %s within %d s" % (command, args, timeout)) from e
            raise Lost(command) from e
        except (ConnectionError, OSError) as e:
            raise Lost(command) from e

    # -- the workload ----------------------------------------------------------------------------
    def definition(self, name):
        i = int(name[1:])
        policy = ["restart", "preserve", "destroy"][i % 3]
        # Odd guests ignore the power button: their shutdowns time out (or are forced).
        cmdline = "nochecks powerbutton" if i % 2 == 0 else "nochecks"
        return probe_definition(name, on_crash=policy, restart_backoff=BACKOFF, cmdline=cmdline)

    def states(self):
        return {vm["name"]: vm["state"] for vm in self.execute("vm-list", {})}

    def step(self, wanted=None):
        """One random command (of kind `wanted` when given and possible)."""
        states = self.states()
        choices = []
        for name in self.names:
            st = states.get(name)
            if st is None:
                choices.append(("define", name))
            elif st in ("shut-off", "crashed"):
                choices += [("start", name)] * 4 + [("undefine", name)]
            elif st in ("running", "paused"):
                choices += [("shutdown", name)] * 2 + [("destroy", name)] * 2
            elif st in ("starting", "shutting-down"):
                choices.append(("destroy", name))
        if wanted:
            fitting = [c for c in choices if c[0] == wanted]
            if fitting:
                choices = fitting
            else:
                # Make the wanted action possible next time: start something, or define something.
                choices = [c for c in choices if c[0] in ("start", "define")] or choices
        if not choices:
            return
        action, name = self.rng.choice(choices)
        self.in_flight = (action, name)
        try:
            if action == "define":
                self.maybe_defined.add(name)
                self.execute("vm-define", {"definition": self.definition(name)})
                self.defined.add(name)
                self.maybe_defined.discard(name)
            elif action == "undefine":
                self.defined.discard(name)
                self.destroyed.discard(name)
                self.execute("vm-undefine", {"name": name})
            elif action == "start":
                self.destroyed.discard(name)
                self.execute("vm-start", {"name": name})
            elif action == "shutdown":
                self.execute("vm-shutdown", {"name": name, "timeout": SHUTDOWN_TIMEOUT_S,
                                             "force": self.rng.random() < 0.5}, timeout=SHUTDOWN_TIMEOUT_S + 20)
            elif action == "destroy":
                self.execute("vm-destroy", {"name": name})
                self.destroyed.add(name)
        except QmpError:
            pass  # refused in the state it was in by then (a crash, a restart): fine
        self.in_flight = None
        self.stats["commands"] += 1

    def run_until_killed(self, point):
        """Drives the workload until vmmd dies: at `point`, or (point None) at a random moment."""
        timer = None
        if point is None:
            delay = self.rng.uniform(0.02, 1.5)
            timer = threading.Timer(delay, lambda: self.alive() and self.daemon.proc.send_signal(signal.SIGKILL))
            timer.start()
        deadline = time.monotonic() + 20
        try:
            while self.alive() and time.monotonic() < deadline:
                self.step(POINT_ACTION.get(point))
        except Lost:
            # The socket closes a moment before the exit status can be collected.
            try:
                self.daemon.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
        finally:
            if timer:
                timer.cancel()
        reached = not self.alive()
        if not reached:
            self.daemon.proc.send_signal(signal.SIGKILL)
        self.daemon.proc.wait()
        check(self.daemon.proc.returncode == -signal.SIGKILL,
              "vmmd exited with %s instead of being killed:\n%s" % (self.daemon.proc.returncode, self.daemon.log()[-4000:]))
        self.client.close()
        self.client = None
        return reached

    # -- the checks after a kill -----------------------------------------------------------------
    def fail(self, what):
        self.failures.append(what)
        print("FAIL: " + what, file=sys.stderr)

    def check_integrity(self):
        db = sqlite3.connect("file:%s?mode=ro" % os.path.join(self.daemon.state, "vmmd.db"), uri=True)
        try:
            result = db.execute("PRAGMA integrity_check").fetchall()
        finally:
            db.close()
        self.stats["integrity checks"] += 1
        if result != [("ok",)]:
            self.fail("integrity_check: %r" % result)

    def workers(self):
        """{vm name: pid} of every live vmm process of this run dir (by its -pidfile)."""
        found = {}
        prefix = os.path.join(self.daemon.run, "vms") + "/"
        for pid, argv in live_processes():
            for i, arg in enumerate(argv[:-1]):
                if arg == b"-pidfile" and argv[i + 1].decode(errors="replace").startswith(prefix):
                    name = os.path.basename(os.path.dirname(argv[i + 1].decode()))
                    found.setdefault(name, []).append(pid)
        return found

    def orphans(self):
        """Workers that are not their VM's recorded worker: [(name, pid, why)]."""
        out = []
        infos = {}
        for name, pids in self.workers().items():
            if name not in infos:
                try:
                    infos[name] = self.execute("vm-info", {"name": name})
                except QmpError as e:
                    infos[name] = {"error": e.desc}
            info = infos[name]
            for pid in pids:
                if info.get("pid") != pid:
                    out.append((name, pid, info.get("error") or "vm-info says pid %s, state %s" % (info.get("pid"), info.get("state"))))
        return out

    def recover_and_check(self, point, reached):
        in_flight = self.in_flight
        self.in_flight = None
        self.check_integrity()
        self.start_vmmd()
        # The command vmmd died under: a destroy committed at a kill point counts as acknowledged.
        if in_flight and reached and point in ("before-kill", "after-kill") and in_flight[0] == "destroy":
            self.destroyed.add(in_flight[1])
        # A vm-shutdown of a VM recovered while shutting down is answered (it joins the recovered
        # shutdown, which ends at its committed deadline).
        for name, st in self.states().items():
            if st != "shutting-down":
                continue
            try:
                self.execute("vm-shutdown", {"name": name, "timeout": SHUTDOWN_TIMEOUT_S}, timeout=SHUTDOWN_TIMEOUT_S + 10)
            except QmpError:
                pass  # timed out (no force), or it was refused by then: answered either way
            except AssertionError as e:
                self.fail("after %s: %s" % (point or "random kill", e))
            self.stats["recovered shutdowns answered"] += 1
        # Settle: no start in progress, no shutdown past its deadline (the recovered timer ends it).
        try:
            wait_until(lambda: not any(s in ("starting",) for s in self.states().values()), 20, "starts to settle")
        except TimeoutError as e:
            self.fail("after %s: %s" % (point or "random kill", e))
        try:
            wait_until(lambda: "shutting-down" not in self.states().values(), SHUTDOWN_TIMEOUT_S + 10,
                       "shutdowns to finish or time out")
        except TimeoutError as e:
            self.fail("after %s: %s" % (point or "random kill", e))
        self.stats["shutdown checks"] += 1
        states = self.states()
        # Definitions.
        for name in self.defined:
            if name not in states:
                self.fail("after %s: acknowledged definition %s is gone" % (point or "random kill", name))
        self.stats["definition checks"] += 1
        # Destroyed VMs stay off (give a restart policy the time to act: backoff 100 ms).
        time.sleep(0.3)
        states = self.states()
        for name in self.destroyed:
            if states.get(name) not in (None, "shut-off"):
                self.fail("after %s: destroyed VM %s is %s" % (point or "random kill", name, states.get(name)))
        self.stats["destroy checks"] += 1
        # Workers: each one is its VM's recorded worker (retry: one may be exiting just now).
        deadline = time.monotonic() + 5
        while True:
            orphans = self.orphans()
            if not orphans or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        for name, pid, why in orphans:
            self.fail("after %s: worker %d of %s has no runtime row (%s)" % (point or "random kill", pid, name, why))
        self.stats["worker checks"] += 1
        # A VM caught at a spawn point starts again (no orphan holds its pidfile).
        if in_flight and point in ("before-spawn", "after-spawn", "after-commit") and in_flight[0] == "start":
            name = in_flight[1]
            if states.get(name) in ("shut-off", "crashed"):
                try:
                    self.execute("vm-start", {"name": name})
                    self.destroyed.discard(name)
                except QmpError as e:
                    self.fail("after %s: %s does not start again: %s" % (point, name, e.desc))
            self.stats["restart checks"] += 1

    # -- the run ---------------------------------------------------------------------------------
    def run(self, kills):
        self.start_vmmd()
        for name in self.names[:len(self.names) // 2 + 1]:
            self.execute("vm-define", {"definition": self.definition(name)})
            self.defined.add(name)
        started = time.monotonic()
        for k in range(kills):
            point = self.rng.choice(self.points) if self.points and self.rng.random() < 0.5 else None
            # This vmmd is the victim: restarted with the chosen point armed.
            if self.client:
                self.client.close()
            self.daemon.stop()
            try:
                self.start_vmmd(point)
                reached = self.run_until_killed(point)
            except (RuntimeError, ConnectionError, TimeoutError):
                # Killed at the point while recovering (a restart policy's or autostart's spawn),
                # before it answered: the point was reached all the same.
                check(self.daemon.proc.returncode == -signal.SIGKILL, "vmmd did not come up:\n" + self.daemon.log()[-4000:])
                self.client = None
                reached = True
            self.stats["kills"] += 1
            self.stats["kill at " + (point or "random moment") + ("" if reached or point is None else " (not reached)")] += 1
            self.recover_and_check(point, reached)
            if self.failures and not self.keep_going:
                break
            if (k + 1) % 50 == 0:
                print("%d kills, %.0f s" % (k + 1, time.monotonic() - started), flush=True)
        self.stats["seconds"] = int(time.monotonic() - started)

    def cleanup(self):
        try:
            for pids in self.workers().values():
                for pid in pids:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
        finally:
            self.daemon.cleanup(bool(self.failures))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--vms", type=int, default=4)
    parser.add_argument("--points", help="the chosen points to use, comma-separated (default: all)")
    parser.add_argument("--keep-going", action="store_true", help="go on after a failed check")
    args = parser.parse_args()
    if args.seed is None:
        args.seed = random.randrange(1 << 30)
    if (status := require_kvm()) is not None:
        return status
    print("seed %d" % args.seed, flush=True)
    chaos = Chaos(args)
    try:
        chaos.run(args.kills)
    except BaseException:
        print("--- vmmd log (tail) ---\n" + chaos.daemon.log()[-8000:], file=sys.stderr)
        chaos.failures.append("harness error")
        raise
    finally:
        print(json.dumps(dict(sorted(chaos.stats.items())), indent=1), flush=True)
        chaos.cleanup()
    if chaos.failures:
        print("--- vmmd log (tail) ---\n" + chaos.daemon.log()[-8000:], file=sys.stderr)
        print("%d failure(s); seed %d" % (len(chaos.failures), args.seed), file=sys.stderr)
        return 1
    print("chaos: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
