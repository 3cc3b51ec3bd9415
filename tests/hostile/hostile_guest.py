#!/usr/bin/env python3
"""A hostile guest (hostile_guest.c, misbehaving as GUEST_WORDS say) on the real worker under
real KVM: for SECONDS it checks that query-status is answered within 100 ms every time, that
the worker's RSS stays bounded, that its log (stderr, vmmd's worker.log) stays small, that the
guest-triggered events reaching the QMP client are bounded (VSERPORT_CHANGE at most one per port
and second, no BLOCK_IO_ERROR for the guest's own bad requests), and that the guest kept
misbehaving all along.

    hostile_guest.py VMM HOSTILE_ELF "GUEST WORDS" [VMM_OPTION...]

VMM_OPTIONs are added to the worker's command line (-sandbox on: the same checks with the
worker confined by seccomp, which must also end without a violation in its log).
"""
import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from vmmd_testlib.kvm_gate import require_kvm  # noqa: E402
from vmmd_testlib.process import rss_kib, seccomp_filters_per_thread, stop  # noqa: E402
from vmmd_testlib.qmp import QmpClient  # noqa: E402
from vmmd_testlib.tempdir import temp_dir  # noqa: E402

SECONDS = 10
# 100 ms on a KVM host. Inside an L1 (scripts/l1/run.sh sets VMMD_IN_L1) every process, the
# worker's main loop and this script included, runs under QEMU's emulator, about ten times slower.
QUERY_LIMIT_S = 0.100 * (10 if os.environ.get("VMMD_IN_L1") else 1)
RSS_GROWTH_LIMIT_KIB = 16 * 1024
# An AddressSanitizer worker keeps freed memory in its quarantine (256 MiB by default) and grows
# shadow memory with it, so its RSS follows the allocation churn, not what it holds: the bound
# that means something is the release build's; the sanitizer run gets ASan's own headroom.
RSS_GROWTH_LIMIT_ASAN_KIB = 320 * 1024


def runs_under_asan(pid):
    with open(f"/proc/{pid}/maps") as maps:
        return any("libasan" in line for line in maps)

LOG_LIMIT_BYTES = 16 * 1024  # a few KiB when messages are thinned to the 1st, 2nd, 4th...

vmm, guest, words, extra_options = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
# With the guest word "mmio": a microvm, the same devices on virtio-mmio transports.
microvm = "mmio" in words.split()
bus = "device" if microvm else "pci"
if (status := require_kvm()) is not None:
    sys.exit(status)
failures = []


def check(condition, what):
    print(("ok   " if condition else "FAIL ") + what, flush=True)
    if not condition:
        failures.append(what)


with temp_dir("vmm-hostile-") as tmp:
    qmp_path, port_path, disk = (os.path.join(tmp, n) for n in ("qmp.sock", "port.sock", "disk.raw"))
    with open(disk, "wb") as f:
        f.truncate(1 << 20)
    log_path = os.path.join(tmp, "worker.log")
    log = open(log_path, "wb")
    proc = subprocess.Popen(
        [vmm, "-M", "microvm" if microvm else "pc",
         "-nodefaults", "-m", "64", "-smp", "1", "-kernel", guest, "-append", words, "-serial", "stdio",
         "-qmp", f"unix:{qmp_path},server=on,wait=off",
         "-drive", f"file={disk},format=raw,if=none,id=d0", "-device", f"virtio-blk-{bus},drive=d0",
         "-device", f"virtio-rng-{bus}",
         "-device", f"virtio-serial-{bus},max_ports=2",
         "-chardev", f"socket,id=p0,path={port_path},server=on,wait=off",
         "-device", "virtserialport,chardev=p0,name=org.hostile.0,id=port1", *extra_options],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log, text=True)
    console = []
    threading.Thread(target=lambda: [console.append(line.strip()) for line in proc.stdout], daemon=True).start()
    try:
        monitor = QmpClient.connect(qmp_path)
        deadline = time.monotonic() + 30
        while "HOSTILE ready" not in console and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.02)
        check("HOSTILE ready" in console, f"the hostile guest set its devices up ({console[-3:]})")
        time.sleep(1)  # let the misbehaviour get going before the baseline
        rss_start = rss_kib(proc.pid)
        slowest, queries, rss_peak = 0.0, 0, rss_start
        end = time.monotonic() + SECONDS
        while time.monotonic() < end:
            started = time.monotonic()
            try:
                status = monitor.request("query-status", timeout=5)["return"]["status"]
            except Exception as e:  # noqa: BLE001 - any failure to answer is the finding
                status = f"no answer: {e!r}"
            took = time.monotonic() - started
            slowest = max(slowest, took)
            queries += 1
            if status != "running":
                check(False, f"query-status answered 'running' (got {status})")
                break
            rss_peak = max(rss_peak, rss_kib(proc.pid))
            time.sleep(0.05)
        rounds = [int(line.split("round=")[1]) for line in console if line.startswith("HOSTILE round=")]
        events = list(monitor.events)
        monitor.events.clear()
        log.flush()
        log_bytes = os.path.getsize(log_path)
        print(f"queries={queries} slowest={slowest * 1000:.1f} ms rss_start={rss_start} KiB rss_peak={rss_peak} KiB "
              f"log={log_bytes} B guest_rounds>={max(rounds, default=0)} events={len(events)}", flush=True)
        check(proc.poll() is None, "the worker is still running")
        check(queries > 0 and slowest < QUERY_LIMIT_S, f"every query-status answered within {QUERY_LIMIT_S * 1000:.0f} ms (slowest {slowest * 1000:.1f} ms)")
        limit_kib = RSS_GROWTH_LIMIT_ASAN_KIB if runs_under_asan(proc.pid) else RSS_GROWTH_LIMIT_KIB
        check(rss_peak - rss_start < limit_kib, f"RSS grew by {rss_peak - rss_start} KiB (< {limit_kib // 1024} MiB)")
        check(log_bytes < LOG_LIMIT_BYTES, f"the worker's log holds {log_bytes} bytes (< 16 KiB)")
        check(max(rounds, default=0) >= 64, "the guest kept misbehaving (at least 64 rounds)")
        port_changes = [e for e in events if e.get("event") == "VSERPORT_CHANGE"]
        io_errors = [e for e in events if e.get("event") == "BLOCK_IO_ERROR"]
        if "ports" in words.split():
            check(1 <= len(port_changes) <= SECONDS + 3,
                  f"{len(port_changes)} VSERPORT_CHANGE in {SECONDS} s: at most one per port and second")
        check(not io_errors, f"no BLOCK_IO_ERROR for the guest's own bad requests (got {len(io_errors)})")
        if "-sandbox" in extra_options:
            filters = seccomp_filters_per_thread(proc.pid)
            check(filters and all(n >= 2 for n in filters.values()),
                  f"every worker thread runs under the process filter and its role's (Seccomp_filters {filters})")
        monitor.request("quit", timeout=10)
        proc.wait(timeout=20)
        check(proc.returncode == 0, f"the worker quit cleanly (exit status {proc.returncode})")
        with open(log_path, errors="replace") as f:
            check("seccomp" not in f.read(), "no seccomp violation in the worker's log")
    finally:
        if proc.poll() is None:
            stop(proc)
        log.close()
        with open(log_path, errors="replace") as f:
            head = f.read(2000)
        if head:
            print("worker log (start):\n" + head)

if failures:
    print(f"{len(failures)} check(s) failed: {failures}")
    sys.exit(1)
print("all checks passed")
