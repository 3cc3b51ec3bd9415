#!/usr/bin/env python3
"""Startup benchmark: vmm against real QEMU with the same probe guest and memory, in one run.

For each VMM, N runs of:
  launch -> first guest byte on the serial port (stdout)
  launch -> QMP greeting (the monitor socket answers)          [-S: nothing runs]
  launch -> exit, with a probe that powers off at once
  peak RSS of the process (GNU time's maximum resident set size) for the power-off run
Prints one table: median and min/max of each.

    run.py [--runs N] [--vmm PATH] [--probe PATH] [--qemu PATH]
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


def first_byte(cmd):
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    proc.stdout.read(1)
    elapsed = time.perf_counter() - start
    proc.kill()
    proc.wait()
    return elapsed


def qmp_ready(cmd, path):
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    elapsed = None
    try:
        QmpClient.connect(path, connect_timeout=20, retry_interval=0.0002, negotiate=False).close()
        elapsed = time.perf_counter() - start
    except OSError:
        pass
    proc.kill()
    proc.wait()
    return elapsed


def until_exit(cmd):
    # Peak RSS through GNU time: ru_maxrss of a child forked straight from this Python process
    # would also count the Python pages the child held before exec (~15 MiB).
    start = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-f", "MAXRSS %M"] + cmd, stdin=subprocess.DEVNULL,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - start
    peak_kib = next((int(line.split()[1]) for line in proc.stderr.splitlines() if line.startswith("MAXRSS ")), 0)
    return elapsed, peak_kib, proc.returncode


def stats(values, unit_scale, fmt):
    values = [v for v in values if v is not None]
    if not values:
        return "n/a"
    med = statistics.median(values) * unit_scale
    return f"{fmt.format(med)} ({fmt.format(min(values) * unit_scale)}-{fmt.format(max(values) * unit_scale)})"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--vmm", default=os.path.join(ROOT, "build", "vmm", "vmm"))
    ap.add_argument("--probe", default=os.path.join(ROOT, "build", "tests", "guest", "probe", "probe.elf"))
    ap.add_argument("--qemu", default="qemu-system-x86_64")
    ap.add_argument("--memory", default="128")
    opts = ap.parse_args()

    base = ["-nodefaults", "-display", "none", "-m", opts.memory, "-smp", "1", "-kernel", opts.probe]
    vmms = [
        ("vmm", [opts.vmm] + base),
        ("qemu microvm", [opts.qemu, "-M", "microvm,rtc=on", "-accel", "kvm", "-cpu", "host,-arch-capabilities"] + base),
        ("qemu q35", [opts.qemu, "-M", "q35", "-accel", "kvm", "-cpu", "host,-arch-capabilities"] + base),
    ]
    rows = []
    with temp_dir("vmm-bench-") as tmp:
        for name, cmd in vmms:
            byte_times, qmp_times, exit_times, rss = [], [], [], []
            for i in range(opts.runs):
                byte_times.append(first_byte(cmd + ["-serial", "stdio", "-append", "nochecks idle"]))
                qmp_path = os.path.join(tmp, f"qmp-{i}.sock")
                qmp_times.append(qmp_ready(cmd + ["-S", "-qmp", f"unix:{qmp_path},server=on,wait=off"], qmp_path))
                elapsed, peak, status = until_exit(cmd + ["-serial", "null", "-append", "nochecks poweroff"])
                if status != 0:
                    print(f"warning: {name} exited with status {status}")
                exit_times.append(elapsed)
                rss.append(peak)
            rows.append((name, stats(byte_times, 1000, "{:.1f}"), stats(qmp_times, 1000, "{:.1f}"),
                         stats(exit_times, 1000, "{:.1f}"), stats([r / 1024 for r in rss], 1, "{:.1f}")))
    header = ("VMM", "launch->1st serial byte ms", "launch->QMP greeting ms", "launch->exit ms", "peak RSS MiB")
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    print(f"startup, probe guest, -m {opts.memory} -smp 1, {opts.runs} runs each: median (min-max)")
    for r in [header] + rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)))


if __name__ == "__main__":
    main()
