#!/usr/bin/env python3
"""Live migration's QMP surface against real QEMU 7.2: the same steps (capabilities, parameters,
their errors, a migration of the probe guest between two processes over unix:, query-migrate,
the MIGRATION events, the run states of both ends) run QEMU->QEMU and vmm->vmm, and the replies
compared structurally as qmp_transcript.py does: same keys and JSON types, same values where they
are deterministic; deliberate differences listed in migration_differences.txt.

    migration_vs_qemu.py --vmm VMM --qemu QEMU --probe ELF --differences FILE [--show]
"""
import argparse
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qmp_transcript import compare_transcripts  # noqa: E402
from vmmd_testlib.kvm_gate import require_kvm  # noqa: E402
from vmmd_testlib.qmp import QmpClient  # noqa: E402
from vmmd_testlib.tempdir import temp_dir  # noqa: E402


def start(binary, common, qmp_path, extra=()):
    proc = subprocess.Popen([binary, *common, "-qmp", f"unix:{qmp_path},server=on,wait=off", *extra],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    client = QmpClient.connect(qmp_path, alive=lambda: proc.poll() is None)
    return proc, client


def events(client, name):
    return [e.get("data") for e in client.take_events(30, timeout=1) if e["event"] == name]


def steps_for(binary, common, tmp, tag):
    steps = []

    def step(name, value):
        steps.append((name, value))

    src_proc, src = start(binary, common, os.path.join(tmp, tag + "-src.qmp"))
    dst_proc, dst = start(binary, common, os.path.join(tmp, tag + "-dst.qmp"), ["-incoming", f"unix:{tmp}/{tag}.mig"])
    try:
        step("query-migrate-before", src.request("query-migrate"))
        step("query-migrate-capabilities", src.request("query-migrate-capabilities"))
        step("query-migrate-parameters", src.request("query-migrate-parameters"))
        step("set-capability-unknown", src.request("migrate-set-capabilities",
                                                   {"capabilities": [{"capability": "nosuch", "state": True}]}))
        step("set-capability-events", src.request("migrate-set-capabilities",
                                                  {"capabilities": [{"capability": "events", "state": True}]}))
        step("set-downtime-too-large", src.request("migrate-set-parameters", {"downtime-limit": 100000000}))
        step("set-parameters", src.request("migrate-set-parameters", {"downtime-limit": 400, "max-bandwidth": 1 << 30}))
        params = src.execute("query-migrate-parameters")
        step("parameters-after-set", {k: params.get(k) for k in ("downtime-limit", "max-bandwidth")})
        step("migrate-bad-uri", src.request("migrate", {"uri": "bogus:x"}))
        step("migrate-incoming-without-incoming", src.request("migrate-incoming", {"uri": "unix:/nonexistent"}))
        step("destination-status", dst.request("query-status"))
        step("destination-migrate-incoming-again", dst.request("migrate-incoming", {"uri": f"unix:{tmp}/{tag}-2.mig"}))
        step("cont-while-inmigrate", dst.request("cont"))
        time.sleep(0.5)  # the guest counts a little
        step("migrate", src.request("migrate", {"uri": f"unix:{tmp}/{tag}.mig"}))
        info = {}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            info = src.execute("query-migrate")
            if info.get("status") in ("completed", "failed", "cancelled"):
                break
            time.sleep(0.05)
        step("query-migrate-completed", info)
        time.sleep(0.5)
        step("source-status", src.request("query-status"))
        statuses = [d["status"] for d in events(src, "MIGRATION")]
        step("source-migration-events", statuses)
        src.events.clear()
        step("destination-status-after", dst.request("query-status"))
        step("destination-query-migrate", dst.request("query-migrate"))
        step("migrate-again-while-postmigrate", src.request("query-migrate")["return"].get("status"))
        step("migrate-cancel-when-done", src.request("migrate_cancel"))
    finally:
        for proc in (src_proc, dst_proc):
            proc.kill()
            proc.wait()
    return steps


def main():
    ap = argparse.ArgumentParser()
    for opt in ("--vmm", "--qemu", "--probe", "--differences"):
        ap.add_argument(opt, required=True)
    ap.add_argument("--show", action="store_true", help="print both transcripts")
    opts = ap.parse_args()
    if (status := require_kvm()) is not None:
        return status
    common = ["-M", "microvm,rtc=on", "-accel", "kvm", "-cpu", "host,-arch-capabilities", "-m", "64", "-smp", "1",
              "-nodefaults", "-display", "none", "-serial", "null", "-kernel", opts.probe, "-append", "nochecks count"]
    with temp_dir("vmm-migration-interop-") as tmp:
        theirs = steps_for(opts.qemu, common, tmp, "qemu")
        ours = steps_for(opts.vmm, common, tmp, "vmm")
    return compare_transcripts(ours, theirs, opts.differences, opts.show, "migration steps")

if __name__ == "__main__":
    sys.exit(main())
