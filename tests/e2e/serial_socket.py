#!/usr/bin/env python3
"""The serial console on a Unix socket: with server=on,wait=on vmm waits for a client before the
guest starts, so the client sees the whole console; a second client is turned away while the
first is attached; the guest's power-off ends the worker with status 0.

    serial_socket.py VMM PROBE_ELF
"""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from vmmd_testlib.kvm_gate import require_kvm  # noqa: E402
from vmmd_testlib.qmp import connect_unix  # noqa: E402
from vmmd_testlib.tempdir import temp_dir  # noqa: E402

vmm, probe = sys.argv[1], sys.argv[2]
if (status := require_kvm()) is not None:
    sys.exit(status)

with temp_dir("vmm-serial-socket-") as tmp:
    path = os.path.join(tmp, "console.sock")
    proc = subprocess.Popen([vmm, "-nodefaults", "-m", "64", "-smp", "2", "-kernel", probe,
                             "-chardev", f"socket,id=con0,path={path},server=on,wait=on", "-serial", "chardev:con0"],
                            stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 20
    while not os.path.exists(path):
        if time.monotonic() > deadline or proc.poll() is not None:
            sys.exit(f"FAIL: console socket never appeared (status {proc.poll()})")
        time.sleep(0.01)
    time.sleep(0.3)
    # wait=on: nothing may have run yet, so the worker is alive and silent.
    if proc.poll() is not None:
        sys.exit(f"FAIL: worker exited ({proc.returncode}) before a console client attached")
    client = connect_unix(path, timeout=0)
    second = connect_unix(path, timeout=0)  # accepted by the kernel backlog, then closed by vmm: one client at a time
    second.settimeout(5)
    data = b""
    client.settimeout(30)
    while b"name=poweroff" not in data:
        chunk = client.recv(65536)
        if not chunk:
            break
        data += chunk
    status = proc.wait(timeout=30)
    text = data.decode(errors="replace")
    second_got = second.recv(100)
    problems = []
    if status != 0:
        problems.append(f"exit status {status}: {proc.stderr.read()}")
    if "PROBE name=start ok=1" not in text:
        problems.append("the first console line is missing (output before the client attached was lost?)")
    if "PROBE name=done failures=0" not in text:
        problems.append("probe did not finish cleanly")
    if second_got:
        problems.append(f"second client received console data: {second_got!r}")
    if problems:
        print("FAIL:\n  " + "\n  ".join(problems) + "\nconsole:\n" + text)
        sys.exit(1)
    print(f"ok: {len(text.splitlines())} console lines over the socket; second client turned away; exit 0")
