#!/usr/bin/env python3
"""QMP round-trip benchmark: N sequential query-status round trips after negotiation, against vmm
and against real QEMU (same argv, paused with -S, the probe guest), in one run; a Python stdlib
client, as the reference figures in ../../../../shared/docs/FACTS.md were measured. Prints a table.

    run.py [--count N] [--runs R] [--vmm PATH] [--qemu PATH] [--probe PATH]
"""
import argparse
import os
import socket
import statistics
import subprocess
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))


def connect(path, deadline):
    while True:
        s = socket.socket(socket.AF_UNIX)
        try:
            s.connect(path)
            return s
        except OSError:
            s.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.005)


def measure(argv, path, count):
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        s = connect(path, time.monotonic() + 20)
        f = s.makefile("rb")
        f.readline()  # greeting
        s.sendall(b'{"execute": "qmp_capabilities"}\r\n')
        f.readline()
        request = b'{"execute": "query-status"}\r\n'
        samples = []
        for _ in range(count):
            start = time.perf_counter_ns()
            s.sendall(request)
            f.readline()
            samples.append((time.perf_counter_ns() - start) / 1000.0)
        s.sendall(b'{"execute": "quit"}\r\n')
        s.close()
        return samples
    finally:
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


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
    tmp = tempfile.mkdtemp(prefix="vmm-qmp-bench-")
    common = ["-M", "microvm,rtc=on", "-accel", "kvm", "-cpu", "host,-arch-capabilities", "-m", "64", "-nodefaults",
              "-display", "none", "-S", "-kernel", opts.probe]
    results = {}
    for run in range(opts.runs):  # alternate, so both see the same machine load
        for name, binary in (("vmm", opts.vmm), ("qemu", opts.qemu)):
            path = os.path.join(tmp, f"{name}-{run}.sock")
            results.setdefault(name, []).append(measure([binary] + common + ["-qmp", f"unix:{path},server=on,wait=off"], path, opts.count))
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
