#!/usr/bin/env python3
"""Save and restore of the probe guest through a state file on this host, vmm against real QEMU
7.2 (same argv: microvm, 256 MiB by default, one vCPU, the guest rewriting 4 MiB without pause),
median of R runs. Rows:

  vmm mapped-ram  migrate-set-capabilities mapped-ram, migrate file:F; restore: vmm -incoming
                  file:F (RAM mapped from the file, copy-on-write)
  vmm plain       migrate file:F (the stream); restore: vmm -incoming file:F (every page read)
  QEMU 7.2 exec   migrate "exec:cat > F"; restore: qemu -incoming "exec:cat F" (QEMU 7.2 has no
                  file: URI and no mapped-ram, both came with QEMU 8.2 / 9.0)

Columns: save = the source's query-migrate total-time; restore launch->running = wall time from
starting the destination process until its QMP query-status says running (process start, QMP
socket, load, start; QMP polled every 2 ms); in-VMM = inside the destination, from the start of
the incoming migration (the file opened) to the state applied and the vCPUs resumed (vmm's
debug log under VMM_LOG=debug; QEMU 7.2 reports nothing comparable: n/a);
file = bytes on disk (allocated) / apparent size.

    restore.py [--runs R] [--mem MIB] [--vmm PATH] [--qemu PATH] [--probe PATH]
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import time

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "..", "support"))
sys.path.insert(0, here)
from run import start  # noqa: E402
from vmmd_testlib.tempdir import temp_dir  # noqa: E402

ROOT = os.path.abspath(os.path.join(here, "..", "..", ".."))


def common_args(probe, mem):
    return ["-M", "microvm,rtc=on", "-accel", "kvm", "-cpu", "host,-arch-capabilities", "-m", str(mem), "-smp", "1",
            "-nodefaults", "-display", "none", "-serial", "null", "-kernel", probe, "-append", "nochecks dirty"]


def wait_final(qmp, what):
    deadline = time.monotonic() + 120
    while (info := qmp.execute("query-migrate")).get("status") not in ("completed", "failed", "cancelled"):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: no end within 120 s")
        time.sleep(0.005)
    if info["status"] != "completed":
        raise RuntimeError(f"{what}: {info}")
    return info


def once(kind, binary, probe, mem, tmp, tag):
    common = common_args(probe, mem)
    state = os.path.join(tmp, tag + ".state")
    src_proc, src = start(binary, common, os.path.join(tmp, tag + "-src.qmp"))
    try:
        time.sleep(1.0)  # the guest runs a while and dirties its pages
        if kind == "mapped":
            src.execute("migrate-set-capabilities", {"capabilities": [{"capability": "mapped-ram", "state": True}]})
        src.execute("migrate", {"uri": f"exec:cat > {state}" if kind == "qemu" else f"file:{state}"})
        save_ms = wait_final(src, f"{binary} save")["total-time"]
    finally:
        src_proc.kill()
        src_proc.wait()
    incoming = f"exec:cat {state}" if kind == "qemu" else f"file:{state}"
    log = os.path.join(tmp, tag + "-dst.log")
    begin = time.monotonic()
    dst_proc, dst = start(binary, common, os.path.join(tmp, tag + "-dst.qmp"), ["-incoming", incoming], stderr=log)
    try:
        while dst.execute("query-status")["status"] != "running":
            if time.monotonic() - begin > 60:
                raise RuntimeError(f"{binary}: the restored guest did not run within 60 s")
            time.sleep(0.002)
        wall_ms = (time.monotonic() - begin) * 1000
    finally:
        dst_proc.kill()
        dst_proc.wait()
    with open(log) as f:
        done = re.search(r"incoming done .* (\d+) us after", f.read())
    inside = int(done.group(1)) / 1000 if done else None
    st = os.stat(state)
    os.unlink(state)
    return {"save": save_ms, "wall": wall_ms, "inside": inside, "allocated": st.st_blocks * 512, "size": st.st_size}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--mem", type=int, default=256)
    ap.add_argument("--vmm", default=os.path.join(ROOT, "build", "vmm", "vmm"))
    ap.add_argument("--qemu", default="qemu-system-x86_64")
    ap.add_argument("--probe", default=os.path.join(ROOT, "build", "tests", "guest", "probe", "probe.elf"))
    opts = ap.parse_args()
    rows = []
    with temp_dir("vmm-bench-restore-") as tmp:
        for label, kind, binary in (("vmm mapped-ram", "mapped", opts.vmm), ("vmm plain", "plain", opts.vmm),
                                    ("QEMU 7.2 exec:cat", "qemu", opts.qemu)):
            runs = [once(kind, binary, opts.probe, opts.mem, tmp, f"{kind}-{i}") for i in range(opts.runs)]
            med = {k: statistics.median(r[k] for r in runs) if runs[0][k] is not None else None for k in runs[0]}
            rows.append((label, med, [r["wall"] for r in runs]))
    print(f"save and restore through a state file, probe guest (dirty), {opts.mem} MiB, median of {opts.runs} (ms)")
    print(f"{'VMM / format':<20}{'save':>8}{'restore launch->running':>25}{'in-VMM':>8}{'file MiB alloc/size':>21}  runs (launch->running)")
    for label, m, walls in rows:
        inside = f"{m['inside']:.1f}" if m["inside"] is not None else "n/a"
        size = f"{m['allocated'] / 2**20:.1f}/{m['size'] / 2**20:.1f}"
        print(f"{label:<20}{m['save']:>8.0f}{m['wall']:>25.1f}{inside:>8}{size:>21}  {' '.join(f'{w:.0f}' for w in walls)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
