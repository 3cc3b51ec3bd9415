#!/usr/bin/env python3
"""The worker under -sandbox on (seccomp, vmm/sandbox) with every kind of host end: the probe guest
boots with its console on a socket chardev, a virtio-blk disk, a virtio-net NIC on a tap (made
by the worker in a private network namespace) and a virtio-serial port; QMP is served (status,
stop/cont, set_link, query-*), system_reset starts new vCPU threads under the main loop's filter,
and quit ends the worker with status 0. Every thread runs under the process filter and its role's,
and the worker's log holds no seccomp report.

    sandbox_worker.py VMM PROBE_ELF
"""
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from vmmd_testlib.kvm_gate import cannot_run, require_kvm  # noqa: E402
from vmmd_testlib.process import seccomp_filters_per_thread, stop, wait_until  # noqa: E402
from vmmd_testlib.qmp import QmpClient, connect_unix  # noqa: E402
from vmmd_testlib.tempdir import temp_dir  # noqa: E402

vmm, probe = sys.argv[1], sys.argv[2]
if (status := require_kvm()) is not None:
    sys.exit(status)
if os.geteuid() != 0 or not shutil.which("unshare") or not os.path.exists("/dev/net/tun"):
    sys.exit(cannot_run("needs root, unshare and /dev/net/tun for a tap in a private network namespace"))

failures = []


def check(condition, what):
    print(("ok   " if condition else "FAIL ") + what, flush=True)
    if not condition:
        failures.append(what)


def all_confined(pid, at_least):
    filters = seccomp_filters_per_thread(pid)
    return filters if filters and all(n >= at_least for n in filters.values()) else None


with temp_dir("vmm-sandbox-") as tmp:
    qmp_path, console_path, port_path, disk = (os.path.join(tmp, n) for n in ("qmp.sock", "console.sock", "port.sock", "disk.raw"))
    with open(disk, "wb") as f:
        f.truncate(1 << 20)
    log_path = os.path.join(tmp, "worker.log")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            ["unshare", "--net", vmm, "-sandbox", "on", "-nodefaults", "-m", "64", "-smp", "2", "-kernel", probe,
             "-append", "idle", "-qmp", f"unix:{qmp_path},server=on,wait=off",
             "-chardev", f"socket,id=con0,path={console_path},server=on,wait=off", "-serial", "chardev:con0",
             "-drive", f"file={disk},format=raw,if=none,id=d0", "-device", "virtio-blk-pci,drive=d0",
             "-netdev", "tap,id=n0,ifname=sbtap0,script=no,downscript=no", "-device", "virtio-net-pci,netdev=n0",
             "-device", "virtio-serial-pci",
             "-chardev", f"socket,id=p0,path={port_path},server=on,wait=off",
             "-device", "virtserialport,chardev=p0,name=org.test.0,id=port0"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log)
    console_text = b""
    try:
        console = connect_unix(console_path, alive=lambda: proc.poll() is None)
        console.settimeout(0.2)

        def console_has(marker, count=1):
            global console_text
            try:
                chunk = console.recv(65536)
                console_text += chunk
            except TimeoutError:
                pass
            return console_text.count(marker) >= count

        monitor = QmpClient.connect(qmp_path)
        wait_until(lambda: console_has(b"PROBE name=ready"), 30, "the probe's ready line on the console socket")
        check(True, "the guest booted; its serial console reached the socket chardev")
        worker_pid = proc.pid  # unshare (without --fork) executed vmm in its own process
        with open(f"/proc/{worker_pid}/status") as f:
            status_text = f.read()
        check("Seccomp:\t2" in status_text and "NoNewPrivs:\t1" in status_text, "the worker is in seccomp filter mode with no_new_privs")
        filters = all_confined(worker_pid, 2)
        check(filters is not None, f"every thread runs under the process filter and its role's ({seccomp_filters_per_thread(worker_pid)})")

        check(monitor.request("query-status")["return"]["status"] == "running", "query-status: running")
        for command in ("query-cpus-fast", "query-block", "query-chardev", "query-version"):
            check("return" in monitor.request(command), f"{command} answered")
        check("return" in monitor.request("set_link", {"name": "n0", "up": False}), "set_link n0 off")
        check("return" in monitor.request("set_link", {"name": "n0", "up": True}), "set_link n0 on")
        port = connect_unix(port_path)  # the virtio-serial port's host end accepts a client
        check("return" in monitor.request("stop"), "stop")
        check(monitor.request("query-status")["return"]["status"] == "paused", "query-status: paused")
        check("return" in monitor.request("cont"), "cont")
        check("return" in monitor.request("system_reset"), "system_reset")
        wait_until(lambda: console_has(b"PROBE name=ready", 2), 30, "the probe's second boot")
        check(True, "the guest booted again after the reset (new vCPU threads)")
        check(all_confined(worker_pid, 2) is not None,
              f"after the reset too ({seccomp_filters_per_thread(worker_pid)})")
        port.close()
        monitor.request("quit", timeout=10)
        proc.wait(timeout=20)
        check(proc.returncode == 0, f"quit: the worker exited with status {proc.returncode}")
    finally:
        if proc.poll() is None:
            stop(proc)
    with open(log_path, errors="replace") as f:
        log_text = f.read()
    check("seccomp" not in log_text, "no seccomp report in the worker's log")
    if failures:
        print("worker log:\n" + log_text[-3000:])

if failures:
    print(f"{len(failures)} check(s) failed: {failures}")
    sys.exit(1)
print("all checks passed")
