#!/usr/bin/env python3
"""Prints where L1's CPU went per L2 boot (tests/bench/boot/run.sh --cpu) from L1's console log.

  cpu_table.py LOG "KERNELS" "KINDS" [GUEST]

One table per kernel, one row per VMM kind, medians over the runs of the CPU lines that
l1/boot-bench.sh prints with BENCH_CPU=1: launch -> userspace (L1 ms) and L1's time split by
/proc/stat (10 ms ticks shown as ms): the VMM's own user time, L2 guest time, L1 kernel time,
idle; L1's huge-page and page faults. Exit status 1 when a run failed.
"""
import re
import statistics
import sys

def parse(log):
    boots = {}
    for line in open(log, errors="replace"):
        m = re.search(r"CPU vmm=(\S+) kernel=(\S+) run=\d+ ready_ms=(\S+)(.*)", line.rstrip("\r\n"))
        if not m:
            continue
        values = dict(re.findall(r"(\w+)=([\d.]+)", m[4]))
        boots.setdefault((m[2], m[1]), []).append(None if m[3] == "fail" else (float(m[3]), values))
    return boots


def main():
    log, kernels, kinds = sys.argv[1], sys.argv[2].split(), sys.argv[3].split()
    guest = sys.argv[4] if len(sys.argv) > 4 else "debian guest"
    boots = parse(log)
    failed = 0
    print(f"Where L1's CPU goes in an L2 boot ({guest}, quiet, killed at userspace); medians, ms of L1")
    for kernel in kernels:
        print(f"\nkernel {kernel}")
        print(f"{'vmm':<22} {'runs':>4} {'->userspace':>11} {'vmm user':>8} {'L2 guest':>8} {'L1 kernel':>9} {'idle':>6} "
              f"{'thp faults':>10} {'page faults':>11}")
        for kind in kinds:
            samples = boots.get((kernel, kind), [])
            ok = [s for s in samples if s is not None]
            failed += len(samples) - len(ok)
            if not ok:
                print(f"{kind:<22} {0:>4} {'-':>11}")
                continue

            def med(name, scale=1):
                values = [float(v[name]) * scale for _, v in ok if name in v]
                return statistics.median(values) if values else float("nan")

            ready = statistics.median(r for r, _ in ok)
            print(f"{kind:<22} {len(ok):>4} {ready:>11.0f} {med('user', 10):>8.0f} {med('l2', 10):>8.0f} "
                  f"{med('sys', 10):>9.0f} {med('idle', 10):>6.0f} {med('thp'):>10.0f} {med('pgfault'):>11.0f}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
