#!/usr/bin/env python3
"""One QMP transcript (negotiation, queries, errors, lifecycle, events) run against real QEMU and
against vmm, both started with the same argv and the probe guest; the replies are compared
structurally: same keys and JSON types everywhere, same values where they are deterministic.
Deliberate differences are listed, with reasons, in qmp_differences.txt ("pattern  reason": a
shell-style pattern over paths STEP/key/index/...); a listed value may differ, but its JSON type
must still be the same.

    qmp_transcript.py --vmm VMM --qemu QEMU --probe ELF --differences FILE [--show]
Exit 0 when they agree, 1 when not, 77 when /dev/kvm is unusable (1 under CI=true: tests/support/vmmd_testlib/kvm_gate.py).
"""
import argparse
import fnmatch
import json
import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from vmmd_testlib.differences import load_differences, report  # noqa: E402
from vmmd_testlib.kvm_gate import require_kvm  # noqa: E402
from vmmd_testlib.qmp import QmpClient  # noqa: E402
from vmmd_testlib.tempdir import temp_dir  # noqa: E402


class Guest:
    """A VMM process with its serial console on stdout and a QMP socket, not negotiated: the
    transcript reads the greeting and negotiates itself. Replies are taken as they come (no id
    matching): a step sends an id only where the transcript names one."""

    def __init__(self, argv, qmp_path):
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.console = []
        self.reader = threading.Thread(target=self._read_console, daemon=True)
        self.reader.start()
        try:
            self.qmp = QmpClient.connect(qmp_path, timeout=20, connect_timeout=20, greeting=False, negotiate=False,
                                         alive=lambda: self.proc.poll() is None)
        except OSError:
            raise RuntimeError(f"{argv[0]}: no QMP socket (status {self.proc.poll()}): {self.proc.stderr.read().decode()}")
        self.qmp_path = qmp_path

    def _read_console(self):
        for line in self.proc.stdout:
            self.console.append(line.decode(errors="replace").rstrip())

    def wait_console(self, text, count=1, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if sum(text in line for line in self.console) >= count:
                return True
            time.sleep(0.02)
        return False

    def execute(self, name, args=None, ident=None):
        return self.qmp.request(name, args, ident=ident, match_id=False)


def transcript(guest):
    """Runs the transcript; returns [(step, value)]."""
    steps = []

    def step(name, value):
        steps.append((name, value))

    step("greeting", guest.qmp.read_message())
    step("before-negotiation", guest.execute("query-status"))
    step("qmp_capabilities", guest.execute("qmp_capabilities"))
    step("qmp_capabilities-again", guest.execute("qmp_capabilities"))
    step("query-status-prelaunch", guest.execute("query-status"))
    for command in ("query-version", "query-name", "query-uuid", "query-kvm", "query-target", "query-cpus-fast",
                    "query-memory-size-summary", "query-block"):
        step(command, guest.execute(command))
    # QEMU lists chardevs in hash-table order and names its own socket path: compare as a set.
    chardevs = guest.execute("query-chardev")["return"]
    for chardev in chardevs:
        chardev["filename"] = chardev["filename"].replace(guest.qmp_path, "QMP_SOCKET")
    step("query-chardev", sorted(chardevs, key=lambda c: c["label"]))
    machines = guest.execute("query-machines")["return"]
    step("query-machines-q35", next((m for m in machines if m.get("alias") == "q35"), None))
    step("hmp-info-status", guest.execute("human-monitor-command", {"command-line": "info status"}))
    step("unknown-command", guest.execute("frobnicate"))
    step("unexpected-argument", guest.execute("query-status", {"verbose": True}))
    step("mistyped-argument", guest.execute("human-monitor-command", {"command-line": 1}))
    step("missing-argument", guest.execute("human-monitor-command", {}))
    step("id-echo", guest.execute("query-kvm", ident={"a": [1, "x", None]}))
    guest.qmp.send_raw(b"[1]\r\n")
    step("not-an-object", guest.qmp.reply())
    guest.qmp.send_raw(b'{"arguments": {}}\r\n')
    step("lacks-execute", guest.qmp.reply())
    step("cont", guest.execute("cont"))
    step("cont-events", guest.qmp.take_events(1))
    step("query-status-running", guest.execute("query-status"))
    guest.wait_console("name=ready")
    step("stop", guest.execute("stop"))
    step("stop-events", guest.qmp.take_events(1))
    step("query-status-paused", guest.execute("query-status"))
    step("stop-again", guest.execute("stop"))
    step("cont-again", guest.execute("cont"))
    step("cont-again-events", guest.qmp.take_events(1))
    step("system_reset", guest.execute("system_reset"))
    step("system_reset-events", guest.qmp.take_events(1))
    guest.wait_console("name=ready", count=2)
    step("system_powerdown", guest.execute("system_powerdown"))
    # POWERDOWN, then the guest powers off: SHUTDOWN (guest-shutdown), STOP (-no-shutdown).
    step("powerdown-events", guest.qmp.take_events(3))
    step("query-status-shutdown", guest.execute("query-status"))
    step("cont-after-shutdown", guest.execute("cont"))
    step("quit", guest.execute("quit"))
    step("quit-events", guest.qmp.take_events(1, timeout=5))
    step("exit-status", guest.proc.wait(timeout=20))
    return steps


def run(argv_head, common, tmp, label):
    qmp = os.path.join(tmp, f"{label}.sock")
    guest = Guest(argv_head + common + ["-qmp", f"unix:{qmp},server=on,wait=off"], qmp)
    try:
        return transcript(guest)
    finally:
        if guest.proc.poll() is None:
            guest.proc.kill()
            guest.proc.wait()


def jtype(value):
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    return type(value).__name__


def listed(path, allowed):
    return any(fnmatch.fnmatchcase(path, pattern) for pattern in allowed)


def compare(path, ours, theirs, allowed, problems):
    if listed(path, allowed) and jtype(ours) == jtype(theirs):
        return
    if jtype(ours) != jtype(theirs):
        problems.append(f"{path}: vmm {json.dumps(ours)} QEMU {json.dumps(theirs)}")
        return
    if isinstance(ours, dict):
        for key in sorted(set(ours) | set(theirs)):
            sub = f"{path}/{key}"
            if key not in ours or key not in theirs:
                if not listed(sub, allowed):
                    problems.append(f"{sub}: only in {'vmm' if key in ours else 'QEMU'}")
                continue
            compare(sub, ours[key], theirs[key], allowed, problems)
    elif isinstance(ours, list):
        if len(ours) != len(theirs):
            problems.append(f"{path}: {len(ours)} items under vmm, {len(theirs)} under QEMU")
            return
        for i, (a, b) in enumerate(zip(ours, theirs)):
            compare(f"{path}/{i}", a, b, allowed, problems)
    elif ours != theirs:
        problems.append(f"{path}: vmm {json.dumps(ours)} QEMU {json.dumps(theirs)}")


def compare_transcripts(ours, theirs, differences, show, what):
    """Compares two [(step, value)] lists step by step (printing both with `show`); the verdict
    of report(): 0 when they agree but for the differences listed in the file `differences`."""
    if show:
        for (name, a), (_, b) in zip(ours, theirs):
            print(f"{name}\n  vmm : {json.dumps(a)}\n  qemu: {json.dumps(b)}")
    allowed = load_differences(differences)
    problems = []
    for (name, a), (name_b, b) in zip(ours, theirs):
        assert name == name_b
        compare(name, a, b, allowed, problems)
    return report(problems, f"vmm and QEMU agree on {len(ours)} {what} (listed differences excepted)")


def main():
    ap = argparse.ArgumentParser()
    for opt in ("--vmm", "--qemu", "--probe", "--differences"):
        ap.add_argument(opt, required=True)
    ap.add_argument("--show", action="store_true", help="print both transcripts")
    opts = ap.parse_args()
    if (status := require_kvm()) is not None:
        return status
    common = ["-M", "microvm,rtc=on", "-accel", "kvm", "-cpu", "host,-arch-capabilities", "-m", "64", "-smp", "2",
              "-name", "interop", "-uuid", "6b5b2b7e-2f6a-4c7e-9d55-0a1e7c2d9f10", "-nodefaults", "-display", "none",
              "-serial", "stdio", "-no-shutdown", "-S", "-kernel", opts.probe, "-append", "nochecks powerbutton"]
    with temp_dir("vmm-qmp-transcript-") as tmp:
        theirs = run([opts.qemu], common, tmp, "qemu")
        ours = run([opts.vmm], common, tmp, "vmm")
    # Timestamps and host thread ids are never equal; only their types are compared.
    return compare_transcripts(ours, theirs, opts.differences, opts.show, "transcript steps")


if __name__ == "__main__":
    sys.exit(main())
