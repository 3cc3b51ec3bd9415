"""Waiting with deadlines and looking at processes: what tests that run vmm, vmmd or QEMU share."""
import os
import signal
import subprocess
import time


def wait_until(predicate, timeout=30, what="condition", interval=0.05):
    """predicate()'s first true value within `timeout` seconds; TimeoutError naming `what` and
    the last value otherwise."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise TimeoutError("timed out waiting for %s (last: %r)" % (what, last))


def stop(proc, timeout=10, sig=signal.SIGTERM):
    """Ends a child: `sig` (None: none, it is on its way out), then SIGKILL when it has not exited
    within `timeout` seconds. Its exit status."""
    if proc.poll() is not None:
        return proc.returncode
    if sig is not None:
        proc.send_signal(sig)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


def live_processes():
    """(pid, argv as a list of bytes) of every process that is alive (not a zombie); processes
    that end while being read are left out."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % entry, "rb") as f:
                argv = f.read().split(b"\0")
            with open("/proc/%s/stat" % entry) as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    continue
        except OSError:
            continue
        yield int(entry), argv


def rss_kib(pid):
    """The resident set of process `pid` (VmRSS), KiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def seccomp_filters_per_thread(pid):
    """{"NAME/TID": Seccomp_filters} for every thread of process `pid` (threads gone meanwhile are
    left out): how many seccomp filters each runs under."""
    found = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as status:
                fields = dict(line.split(":", 1) for line in status if ":" in line)
        except FileNotFoundError:
            continue
        found[f"{fields['Name'].strip()}/{tid}"] = int(fields.get("Seccomp_filters", "0"))
    return found
