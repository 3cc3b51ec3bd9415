#!/usr/bin/env python3
"""Density benchmark: one vmmd starts N probe guests (64 MiB) at once, with vmm as the worker and,
side by side, with real QEMU as the worker (the worker argv is QEMU's own).

Per worker kind:
  all started      vm-start sent for all N at once (one client each) -> every vm-start answered
  all ready        same start -> every guest's "PROBE name=ready" in its console log
  vmmd RSS         vmmd's resident set with N guests running (VmRSS)
  worker RSS       mean resident set of one worker
Then, with 1000 VMs defined: `vmctl list` and `vmctl list --json` wall time (median of 20).

    run.py [--guests N] [--defines N] [--qemu PATH|none]
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "support"))
from vmmd_testlib.process import rss_kib  # noqa: E402

sys.path.insert(0, os.path.join(ROOT, "tests", "daemon"))
os.environ.setdefault("VMMD", os.path.join(ROOT, "build/daemon/vmmd"))
os.environ.setdefault("VMM", os.path.join(ROOT, "build/vmm/vmm"))
os.environ.setdefault("VMCTL", os.path.join(ROOT, "build/cli/vmctl"))
os.environ.setdefault("PROBE_ELF", os.path.join(ROOT, "build/tests/guest/probe/probe.elf"))
import vmmd_harness as h  # noqa: E402


def qemu_wrapper(qemu, tmp):
    """QEMU as the worker, with `-cpu host` narrowed as this host needs (docs/FACTS.md: plain
    `-cpu host` aborts setting MSR 0x10a, IA32_ARCH_CAPABILITIES)."""
    path = os.path.join(tmp, "qemu-worker")
    with open(path, "w") as f:
        f.write("#!/bin/bash\nargs=()\nfor a in \"$@\"; do [ \"$a\" = host ] && a=host,-arch-capabilities; args+=(\"$a\"); done\n"
                f"exec {qemu} \"${{args[@]}}\"\n")
    os.chmod(path, 0o755)
    return path


def density(worker, guests):
    d = h.Daemon()
    if worker != h.VMM and os.path.basename(worker).startswith("qemu"):
        worker = qemu_wrapper(worker, d.tmp)
    if worker != h.VMM:
        d.extra_args = ["--vmm", worker]  # the last --vmm wins
    try:
        c = d.start()
        names = [f"d{i:02d}" for i in range(guests)]
        for n in names:
            c.execute("vm-define", {"definition": h.probe_definition(n)})
        clients = [d.client() for _ in names]
        errors = []
        start = time.perf_counter()

        def go(client, name):
            try:
                client.execute("vm-start", {"name": name})
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(f"{name}: {e}")

        threads = [threading.Thread(target=go, args=(cl, n)) for cl, n in zip(clients, names)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        started = time.perf_counter() - start
        if errors:
            raise RuntimeError("; ".join(errors))
        h.wait_until(lambda: all("PROBE name=ready" in h.console_log(d, n) for n in names), 120, "all ready")
        ready = time.perf_counter() - start
        vmmd_rss = rss_kib(d.proc.pid)
        workers = [c.execute("vm-info", {"name": n})["pid"] for n in names]
        worker_rss = statistics.mean(rss_kib(p) for p in workers)
        for n in names:
            c.execute("vm-destroy", {"name": n})
        return started, ready, vmmd_rss, worker_rss
    finally:
        d.cleanup()


def list_latency(defines):
    d = h.Daemon()
    try:
        c = d.start()
        for i in range(defines):
            c.execute("vm-define", {"definition": h.probe_definition(f"l{i:04d}")})
        out = {}
        for args in (["list"], ["list", "--json"]):
            times = []
            for _ in range(20):
                t = time.perf_counter()
                subprocess.run([h.VMCTL, "--socket", d.socket, *args], check=True, stdout=subprocess.DEVNULL)
                times.append(time.perf_counter() - t)
            out[" ".join(args)] = statistics.median(times)
        return out
    finally:
        d.cleanup()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--guests", type=int, default=20)
    ap.add_argument("--defines", type=int, default=1000)
    ap.add_argument("--qemu", default=shutil.which("qemu-system-x86_64") or "none")
    args = ap.parse_args()
    if (reason := h.kvm_unusable_reason()) is not None:
        print(f"{reason} (run it inside an L1: scripts/l1/run.sh -- {' '.join(sys.argv)})")
        return 1
    kinds = [("vmm", os.path.abspath(h.VMM))]
    if args.qemu != "none":
        kinds.append(("qemu", args.qemu))
    rows = {}
    for label, worker in kinds:
        rows[label] = density(worker, args.guests)
    lat = list_latency(args.defines)
    print(f"\nvmmd density: {args.guests} probe guests of 64 MiB started at once ({os.cpu_count()} host CPUs)\n")
    header = f"{'':<26}" + "".join(f"{label:>14}" for label, _ in kinds)
    print(header)
    print("-" * len(header))
    metrics = [("all vm-start answered", 0, lambda v: f"{v * 1000:.0f} ms"),
               ("all printed ready", 1, lambda v: f"{v * 1000:.0f} ms"),
               ("vmmd RSS", 2, lambda v: f"{v / 1024:.1f} MiB"),
               ("worker RSS (mean)", 3, lambda v: f"{v / 1024:.1f} MiB")]
    for name, i, fmt in metrics:
        print(f"{name:<26}" + "".join(f"{fmt(rows[label][i]):>14}" for label, _ in kinds))
    print(f"\nvmctl with {args.defines} defined VMs (median of 20 runs)")
    for k, v in lat.items():
        print(f"  vmctl {k:<14} {v * 1000:.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
