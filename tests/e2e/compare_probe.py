#!/usr/bin/env python3
"""Runs the probe guest under vmm and under real QEMU (q35, KVM) with the same argv and compares
the PROBE lines: same lines, same keys, same values except the deliberate differences listed.

    compare_probe.py --runner run_probe.py --differences FILE --vmm VMM --qemu QEMU --probe ELF -- ARGS...
Exit 0 when they agree, 1 when not, 77 when /dev/kvm is unusable (1 under CI=true: tests/support/vmmd_testlib/kvm_gate.py).
"""
import argparse
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from vmmd_testlib.differences import load_differences, report  # noqa: E402
from vmmd_testlib.tempdir import temp_dir  # noqa: E402


def run(runner, dump, cmd):
    proc = subprocess.run([sys.executable, runner, "--need-kvm", "--quiet", "--dump", dump, "--"] + cmd,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=240)
    if proc.returncode == 77:
        sys.exit(77)
    if proc.returncode != 0:
        print(f"{cmd[0]} run failed:\n{proc.stdout}{proc.stderr}")
        sys.exit(1)
    with open(dump) as f:
        return json.load(f)


def by_name(lines):
    table = {}
    for fields in lines:
        table.setdefault(fields["name"], fields)
    return table


def main():
    ap = argparse.ArgumentParser()
    for opt in ("--runner", "--differences", "--vmm", "--qemu", "--probe"):
        ap.add_argument(opt, required=True)
    ap.add_argument("args", nargs=argparse.REMAINDER)
    opts = ap.parse_args()
    args = opts.args[1:] if opts.args[:1] == ["--"] else opts.args
    allowed = load_differences(opts.differences)
    common = ["-nodefaults", "-display", "none", "-serial", "stdio", "-kernel", opts.probe] + args
    with temp_dir("vmm-compare-probe-") as tmp:
        ours = by_name(run(opts.runner, os.path.join(tmp, "vmm.json"), [opts.vmm] + common))
        theirs = by_name(run(opts.runner, os.path.join(tmp, "qemu.json"),
                             [opts.qemu, "-M", "q35", "-accel", "kvm", "-cpu", "host,-arch-capabilities"] + common))
    problems = []
    for name in sorted(set(ours) | set(theirs)):
        if name not in ours or name not in theirs:
            problems.append(f"line {name}: only under {'vmm' if name in ours else 'QEMU'}")
            continue
        a, b = ours[name], theirs[name]
        if set(a) != set(b):
            problems.append(f"line {name}: keys differ: vmm {sorted(a)} QEMU {sorted(b)}")
            continue
        for key in sorted(a):
            if a[key] != b[key] and f"{name}.{key}" not in allowed:
                problems.append(f"{name}.{key}: vmm {a[key]!r} QEMU {b[key]!r}")
    compared = sum(len(v) for v in ours.values())
    return report(problems, f"vmm and QEMU agree on {len(ours)} PROBE lines ({compared} values; listed differences excepted)")


if __name__ == "__main__":
    sys.exit(main())
