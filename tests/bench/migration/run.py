#!/usr/bin/env python3
"""Live migration of the probe guest between two processes of the same VMM over a unix socket,
vmm against real QEMU 7.2 (same argv: microvm, 64 MiB, one vCPU), in one run: an idle guest
(`count`: a timer tick every 50 ms) and one rewriting 4 MiB without pause (`dirty`). For each,
the median of R runs of query-migrate's total-time and downtime as each VMM reports them, plus
the bytes sent and passes, and the wall time from `migrate` until the destination reports
running. QEMU's downtime ends when the source has sent its last byte; vmm's when the
destination has confirmed the load. Prints a table.

    run.py [--runs R] [--vmm PATH] [--qemu PATH] [--probe PATH]
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "support"))
from vmmd_testlib.qmp import QmpClient  # noqa: E402
from vmmd_testlib.tempdir import temp_dir  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))


def start(binary, common, qmp_path, extra=(), stderr=None):
    """The VMM with QMP on `qmp_path`; its stderr to the file `stderr` (VMM_LOG=debug) or nowhere."""
    env = dict(os.environ, VMM_LOG="debug") if stderr else None
    proc = subprocess.Popen([binary, *common, "-qmp", f"unix:{qmp_path},server=on,wait=off", *extra],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=open(stderr, "w") if stderr else subprocess.DEVNULL, env=env)
    return proc, QmpClient.connect(qmp_path, alive=lambda: proc.poll() is None)


def migrate_once(binary, probe, action, tmp, tag):
    common = ["-M", "microvm,rtc=on", "-accel", "kvm", "-cpu", "host,-arch-capabilities", "-m", "64", "-smp", "1",
              "-nodefaults", "-display", "none", "-serial", "null", "-kernel", probe, "-append", "nochecks " + action]
    mig = os.path.join(tmp, tag + ".mig")
    src_proc, src = start(binary, common, os.path.join(tmp, tag + "-src.qmp"))
    dst_proc, dst = start(binary, common, os.path.join(tmp, tag + "-dst.qmp"), ["-incoming", "unix:" + mig])
    try:
        time.sleep(1.0)  # the guest runs a while (and dirties its 4 MiB)
        begin = time.monotonic()
        src.execute("migrate", {"uri": "unix:" + mig})
        while dst.execute("query-status")["status"] != "running":
            if time.monotonic() - begin > 60:
                raise RuntimeError(f"{binary}: the destination did not run within 60 s")
            time.sleep(0.002)
        wall_ms = (time.monotonic() - begin) * 1000
        while (info := src.execute("query-migrate")).get("status") not in ("completed", "failed", "cancelled"):
            time.sleep(0.01)
        if info["status"] != "completed":
            raise RuntimeError(f"{binary}: migration {info}")
        return {"total": info["total-time"], "downtime": info["downtime"], "wall": wall_ms,
                "bytes": info["ram"]["transferred"], "passes": info["ram"]["dirty-sync-count"]}
    finally:
        for proc in (src_proc, dst_proc):
            proc.kill()
            proc.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--vmm", default=os.path.join(ROOT, "build", "vmm", "vmm"))
    ap.add_argument("--qemu", default="qemu-system-x86_64")
    ap.add_argument("--probe", default=os.path.join(ROOT, "build", "tests", "guest", "probe", "probe.elf"))
    opts = ap.parse_args()
    rows = []
    with temp_dir("vmm-bench-migration-") as tmp:
        for action in ("count", "dirty"):
            for name, binary in (("vmm", opts.vmm), ("QEMU", opts.qemu)):
                runs = [migrate_once(binary, opts.probe, action, tmp, f"{name}-{action}-{i}") for i in range(opts.runs)]
                med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
                rows.append((action, name, med))
    print(f"live migration, probe guest, 64 MiB, unix socket, median of {opts.runs} (ms unless noted)")
    print(f"{'guest':<8}{'VMM':<6}{'total-time':>11}{'downtime':>10}{'migrate->dst running':>22}{'bytes sent':>12}{'passes':>8}")
    for action, name, m in rows:
        print(f"{action:<8}{name:<6}{m['total']:>11.0f}{m['downtime']:>10.0f}{m['wall']:>22.1f}{m['bytes']:>12.0f}{m['passes']:>8.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
