#!/usr/bin/env python3
"""QMP round-trip benchmark: N sequential query-status round trips after negotiation, against vmm
and against real QEMU (same argv, paused with -S, the probe guest), in one run; a Python stdlib
client, as the reference figures in ../../../../shared/docs/FACTS.md were measured. Prints a table.

    run.py [--count N] [--runs R] [--vmm PATH] [--qemu PATH] [--probe PATH]
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "support"))
from vmmd_testlib.process import stop  # noqa: E402
from vmmd_testlib.qmp import QmpClient  # noqa: E402
from vmmd_testlib.tempdir import temp_dir  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
REQUEST = b'{"execute": "query-status"}\r\n'


def measure(argv, path, count):
    """COUNT round trips of REQUEST, microseconds each: raw bytes out, one line back, so that the
    figure is the VMM's and the socket's, not JSON encoding in this client."""
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        qmp = QmpClient.connect(path, connect_timeout=20, retry_interval=0.005)
        samples = []
        for _ in range(count):
            start = time.perf_counter_ns()
            qmp.send_raw(REQUEST)
            qmp.read_line()
            samples.append((time.perf_counter_ns() - start) / 1000.0)
        qmp.send_raw(b'{"execute": "quit"}\r\n')
        qmp.close()
        return samples
    finally:
        stop(proc, timeout=5, sig=None)  # it quits on its own


def p99(values):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=2000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--vmm", default=os.path.join(ROOT, "build", "vmm", "vmm"))
    ap.add_argument("--qemu", default="qemu-system-x86_64")
    ap.add_argument("--probe", default=os.path.join(ROOT, "build", "tests", "guest", "probe", "probe.elf"))
    opts = ap.parse_args()
    common = ["-M", "microvm,rtc=on", "-accel", "kvm", "-cpu", "host,-arch-capabilities", "-m", "64", "-nodefaults",
              "-display", "none", "-S", "-kernel", opts.probe]
    results = {}
    with temp_dir("vmm-qmp-bench-") as tmp:
        for run in range(opts.runs):  # alternate, so both see the same machine load
            for name, binary in (("vmm", opts.vmm), ("qemu", opts.qemu)):
                path = os.path.join(tmp, f"{name}-{run}.sock")
                argv = [binary] + common + ["-qmp", f"unix:{path},server=on,wait=off"]
                results.setdefault(name, []).append(measure(argv, path, opts.count))
    print(f"QMP query-status round trip, {opts.count} sequential requests, {opts.runs} runs each, stdlib Python client")
    print(f"{'VMM':6} {'mean us':>9} {'median us':>10} {'p99 us':>8}   per-run means")
    for name in ("vmm", "qemu"):
        all_samples = [v for run in results[name] for v in run]
        means = " ".join(f"{statistics.mean(run):.0f}" for run in results[name])
        print(f"{name:6} {statistics.mean(all_samples):9.1f} {statistics.median(all_samples):10.1f} {p99(all_samples):8.1f}   {means}")
    ratio = statistics.mean(v for run in results["vmm"] for v in run) / statistics.mean(v for run in results["qemu"] for v in run)
    print(f"vmm/qemu mean ratio: {ratio:.2f}")


if __name__ == "__main__":
    main()
