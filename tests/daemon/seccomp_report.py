#!/usr/bin/env python3
"""A worker killed by its seccomp filter, reported by vmmd: vmmd runs VMM=violating_worker (the real
worker plus a test thread that makes a call the I/O pool role forbids, violating_worker.cpp),
with -sandbox on as for every worker. The worker dies by SIGSYS; vmmd's crash reason (the
VM_STATE_CHANGE event), vm-info's exit signal and vmmd's log name the forbidden call."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vmmd_harness import check, probe_definition, require_kvm, state_of, wait_until, with_daemon  # noqa: E402

VIOLATION = "seccomp: I/O pool thread made a forbidden system call 41 (socket)"


def scenario(d):
    c = d.start()
    c.execute("vm-define", {"definition": probe_definition("v1", on_crash="preserve", cmdline="nochecks idle")})
    try:
        c.execute("vm-start", {"name": "v1"})
    except Exception as e:  # noqa: BLE001 - killed before vmmd saw it running: the start fails, naming the call
        check(VIOLATION in str(e), f"the failed start names the forbidden call ({e})")
    wait_until(lambda: state_of(c, "v1") in ("crashed", "shut-off"), 30, "v1 ended by its filter")
    check(c.execute("vm-info", {"name": "v1"}).get("exit-signal") == 31, "vm-info: exit signal 31 (SIGSYS)")
    wait_until(lambda: f"worker confinement violated: {VIOLATION}" in d.log(), 10, "vmmd's log line")
    reasons = [e["data"].get("reason", "") for e in c.events if e.get("event") == "VM_STATE_CHANGE"]
    # "crashed (killed by signal 31 (Bad system call) after seccomp: ...)", or "start failed: ..."
    # with the same words when the filter struck before vmmd saw the worker running (a slow L1).
    check(any(VIOLATION in r and "Bad system call" in r for r in reasons), f"the state change names the call ({reasons})")


if (status := require_kvm()) is not None:
    sys.exit(status)
with_daemon(scenario)
print("seccomp_report: ok")
