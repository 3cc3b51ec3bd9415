"""The probe guest in a vmm process, for the migration and restore tests: its console in a file,
QMP negotiated, its count/dirty lines parsed, migration and run-state waits, and a check() that
records failures.

    from vmmd_testlib.probe_vm import ProbeVm, check, failures, wait_migration, wait_status
"""
import os
import re
import subprocess
import time

from vmmd_testlib.qmp import QmpClient

failures = []
FINAL = ("completed", "failed", "cancelled")


def check(condition, what):
    print(("ok   " if condition else "FAIL ") + what)
    if not condition:
        failures.append(what)
    return condition


class ProbeVm:
    """One vmm process: the probe counting, its serial console in a file, QMP negotiated."""

    def __init__(self, vmm, probe, tmp, name, extra=(), pass_fds=(), wait_qmp=True, action="count", mem=64):
        self.name = name
        self.serial = os.path.join(tmp, name + ".serial")
        self.qmp_path = os.path.join(tmp, name + ".qmp")
        self.log = os.path.join(tmp, name + ".log")
        argv = [vmm, "-nodefaults", "-m", str(mem), "-smp", "1", "-kernel", probe, "-append", "nochecks " + action,
                "-serial", "file:" + self.serial, "-qmp", f"unix:{self.qmp_path},server=on,wait=off", *extra]
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=open(self.log, "w"), pass_fds=pass_fds)
        self.qmp = QmpClient.connect(self.qmp_path, alive=lambda: self.proc.poll() is None) if wait_qmp else None

    def lines(self):
        """(n, bad) of each count or dirty line: bad is None for `count`."""
        try:
            with open(self.serial) as f:
                text = f.read()
        except FileNotFoundError:
            return []
        # Whole lines only: a console may end, or begin, in the middle of one.
        return [(int(n), int(bad) if bad else None)
                for n, bad in re.findall(r"^PROBE name=(?:count|dirty) n=(\d+)(?: bad=(\d+))?[^\n]*\n", text, re.M)]

    def counts(self):
        return [n for n, _ in self.lines()]

    def wait_count(self, above, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            c = self.counts()
            if c and c[-1] > above:
                return c[-1]
            time.sleep(0.05)
        return None

    def status(self):
        return self.qmp.execute("query-status")["status"]

    def stderr(self):
        with open(self.log) as f:
            return f.read()

    def wait_exit(self, timeout=60):
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def wait_migration(vm, timeout=60, final=FINAL):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = vm.qmp.execute("query-migrate")
        if info.get("status") in final:
            return info
        time.sleep(0.05)
    return vm.qmp.execute("query-migrate")


def wait_status(vm, wanted, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (s := vm.status()) == wanted:
            return s
        time.sleep(0.05)
    return vm.status()
