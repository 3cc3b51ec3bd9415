#!/usr/bin/env python3
"""Prints the boot benchmark's tables from L1's console log (tests/bench/boot/run.sh).

  table.py LOG RUNS MEM "KERNELS" "KINDS" [SMP] [APPEND] [GUEST]

One table per kernel, one row per VMM kind: medians over the runs (min-max for launch ->
userspace), the ratio of launch -> userspace to QEMU of the same machine type and to QEMU
microvm, and KVM's exit counters at userspace (query-stats provider kvm), with vmm's own count
of the exits that reached it (provider vmm) where the kind is vmm. Exit status 1 when a run failed.
"""
import json
import re
import statistics
import sys


def median(values):
    return statistics.median(values) if values else None


def parse(log):
    boots, stats = {}, {}
    for line in open(log, errors="replace"):
        line = line.rstrip("\r\n")
        m = re.search(r"BENCH vmm=(\S+) kernel=(\S+) run=(\d+) ready_ms=(\S+)(?: guest_s=(\S+))?(?: vm_ns=(\d+))?", line)
        if m:
            ready = None if m[4] == "fail" else float(m[4])
            guest = float(m[5]) * 1000 if m[5] else None
            vm = float(m[6]) / 1e6 if m[6] else None
            boots.setdefault((m[2], m[1]), []).append((ready, guest, vm))
            continue
        m = re.search(r"BENCH-QMP vmm=(\S+) kernel=(\S+) run=(\d+) (\{.*)", line)
        if m:
            try:
                reply = json.loads(m[4])["return"]
            except (ValueError, KeyError):
                continue
            sample = stats.setdefault((m[2], m[1], m[3]), {})
            for result in reply:
                for s in result["stats"]:
                    if isinstance(s["value"], int) and not isinstance(s["value"], bool):
                        key = f'{result["provider"]}.{s["name"]}'
                        sample[key] = sample.get(key, 0) + s["value"]
    return boots, stats


def main():
    log, runs, mem, kernels, kinds = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4].split(), sys.argv[5].split()
    smp = sys.argv[6] if len(sys.argv) > 6 else "1"
    append = f" {sys.argv[7]}" if len(sys.argv) > 7 and sys.argv[7] else ""
    guest = sys.argv[8] if len(sys.argv) > 8 else "debian guest"
    boots, stats = parse(log)
    failed = 0
    print(f"L2 boot in the nested tier: {guest}, {runs} runs each, -m {mem} -smp {smp}, quiet{append}; L1 ms (L1 = QEMU TCG); "
          "medians, launch->userspace also min-max")
    for kernel in kernels:
        print(f"\nkernel {kernel}")
        header = (f"{'vmm':<22} {'->VM':>6} {'VM->kernel':>10} {'->kernel':>8} {'guest':>7} {'->userspace':>11} {'min-max':>13} {'fail':>4} "
                  f"{'/qemu same':>10} {'/q-microvm':>10} {'exits':>7} {'pio+mmio':>8} {'vmm saw':>7} {'npf':>7} "
                  f"{'4k maps':>7} {'2M maps':>7}")
        print(header)
        ready_median = {}
        for kind in kinds:
            ok = [r for r, _, _ in boots.get((kernel, kind), []) if r is not None]
            ready_median[kind] = median(ok)
        for kind in kinds:
            samples = boots.get((kernel, kind), [])
            ok = [(r, g, v) for r, g, v in samples if r is not None]
            fails = len(samples) - len(ok)
            failed += fails
            if not ok:
                print(f"{kind:<22} {'-':>6} {'-':>10} {'-':>8} {'-':>7} {'-':>11} {'-':>13} {fails:>4}")
                continue
            ready = [r for r, _, _ in ok]
            guest = [g for _, g, _ in ok if g is not None]
            to_kernel = [r - g for r, g, _ in ok if g is not None]
            vm_to_kernel = [v for _, g, v in ok if g is not None and v is not None]
            to_vm = [r - g - v for r, g, v in ok if g is not None and v is not None]

            def ms(values, width):
                return f"{median(values):>{width}.0f}" if values else f"{'-':>{width}}"

            machine = "microvm" if "microvm" in kind.split(":")[0] else "pc"
            same = ready_median.get(f"qemu-{machine}")
            micro = ready_median.get("qemu-microvm")
            ratio_same = f"{median(ready) / same:.2f}x" if same and not kind.startswith("qemu") else "-"
            ratio_micro = f"{median(ready) / micro:.2f}x" if micro else "-"
            per_run = [v for (k, n, _), v in stats.items() if k == kernel and n == kind]

            def counter(name):
                values = [s[name] for s in per_run if name in s]
                return f"{median(values):>7.0f}" if values else f"{'-':>7}"

            to_vmm = [s["kvm.io_exits"] + s["kvm.mmio_exits"] for s in per_run if "kvm.io_exits" in s and "kvm.mmio_exits" in s]
            to_vmm_text = f"{median(to_vmm):>8.0f}" if to_vmm else f"{'-':>8}"
            print(f"{kind:<22} {ms(to_vm, 6)} {ms(vm_to_kernel, 10)} {median(to_kernel) or 0:>8.0f} {median(guest) or 0:>7.0f} {median(ready):>11.0f} "
                  f"{f'{min(ready):.0f}-{max(ready):.0f}':>13} {fails:>4} {ratio_same:>10} {ratio_micro:>10} "
                  f"{counter('kvm.exits')} {to_vmm_text} {counter('vmm.exits')} {counter('kvm.pf_fixed')} "
                  f"{counter('kvm.pages_4k')} {counter('kvm.pages_2m')}")
    print("\n->kernel: launch -> the guest's clock start (launch->userspace less the guest's uptime there): VMM start,\n"
          "  loading, the decompressor (bzImage) and the kernel's setup before its clock runs, split by the guest's\n"
          "  kvm-clock at that point (ns since KVM_CREATE_VM) into ->VM (launch -> the VM's creation: the VMM process\n"
          "  starting) and VM->kernel (loading, firmware, decompressor, early kernel). guest: the guest's uptime\n"
          "  at userspace. exits: KVM's count for the vCPU at userspace (every exit, also those the kernel handles);\n"
          "  pio+mmio: KVM's io_exits + mmio_exits (port and MMIO exits, in-kernel devices included); vmm saw: vmm's own count (query-stats\n"
          "  provider vmm); npf: nested page faults KVM fixed; 4k/2M maps: KVM's page-table entries of the VM.")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
