#!/usr/bin/env python3
"""The worker's QMP monitors end to end: four monitors at once (-qmp twice, -chardev + -mon, and
-chardev socket,fd=N + -mon on a listening socket bound here and passed open, as vmmd does),
events on all of them, -S/cont, bad clients (malformed JSON, a 100 MiB message, a client that
floods 100 000 commands and never reads, a client that leaves mid-command) while the guest and
the other monitors carry on, the power button through QMP, -no-shutdown, and quit.

    qmp_monitor.py VMM PROBE_ELF
"""
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from kvm_gate import require_kvm  # noqa: E402

vmm, probe = sys.argv[1], sys.argv[2]
if (status := require_kvm()) is not None:
    sys.exit(status)
failures = []


def check(condition, what):
    print(("ok   " if condition else "FAIL ") + what)
    if not condition:
        failures.append(what)


class Client:
    def __init__(self, path, negotiate=True):
        deadline = time.monotonic() + 20
        while True:
            self.sock = socket.socket(socket.AF_UNIX)
            try:
                self.sock.connect(path)
                break
            except OSError:
                self.sock.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
        self.sock.settimeout(20)
        self.buffer = b""
        self.events = []
        self.greeting = self.message()
        if negotiate:
            self.execute("qmp_capabilities")

    def message(self):
        while b"\n" not in self.buffer:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                return None
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return json.loads(line)

    def execute(self, name, args=None):
        """Sends one command with a fresh id; skips events and stray replies (a malformed input
        can draw several error replies, as from QEMU) until the reply carrying that id."""
        self.counter = getattr(self, "counter", 0) + 1
        request = {"execute": name, "id": self.counter}
        if args is not None:
            request["arguments"] = args
        self.sock.sendall(json.dumps(request).encode() + b"\r\n")
        while True:
            msg = self.message()
            if msg is None:
                return None
            if "event" in msg:
                self.events.append(msg)
                continue
            if msg.get("id") == self.counter:
                msg.pop("id")
                return msg

    def wait_event(self, name, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for i, e in enumerate(self.events):
                if e["event"] == name:
                    return self.events.pop(i)
            self.sock.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                msg = self.message()
            except socket.timeout:
                break
            if msg is None:
                break
            if "event" in msg:
                self.events.append(msg)
        self.sock.settimeout(20)
        return None


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


# Under ASan every freed block first waits in a quarantine (256 MiB by default), so after a
# 64 MiB message has been buffered and dropped the RSS would measure ASan, not the worker.
worker_env = dict(os.environ)
if "ASAN_OPTIONS" in worker_env:
    worker_env["ASAN_OPTIONS"] += ":quarantine_size_mb=16:thread_local_quarantine_size_kb=64"

with tempfile.TemporaryDirectory() as tmp:
    a, b, c, d = (os.path.join(tmp, n) for n in ("a.sock", "b.sock", "c.sock", "d.sock"))
    passed = socket.socket(socket.AF_UNIX)
    passed.bind(d)
    passed.listen(4)
    proc = subprocess.Popen([vmm, "-nodefaults", "-m", "64", "-smp", "2", "-kernel", probe, "-append", "nochecks powerbutton",
                             "-serial", "stdio", "-S", "-no-shutdown",
                             "-qmp", f"unix:{a},server=on,wait=off", "-qmp", f"unix:{b},server=on,wait=off",
                             "-chardev", f"socket,id=mon2,path={c},server=on,wait=off", "-mon", "chardev=mon2,mode=control",
                             "-chardev", f"socket,id=mon3,fd={passed.fileno()},server=on,wait=off",
                             "-mon", "chardev=mon3,mode=control"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=worker_env,
                            pass_fds=(passed.fileno(),))
    passed.close()
    # The passed socket listens from before the worker runs: the first connect succeeds.
    early = socket.socket(socket.AF_UNIX)
    early.connect(d)
    early.close()
    md = Client(d)
    console = []
    threading.Thread(target=lambda: [console.append(l) for l in proc.stdout], daemon=True).start()
    ma, mb, mc = Client(a), Client(b), Client(c)
    check(ma.greeting["QMP"]["capabilities"] == ["oob"], "greeting advertises oob on every monitor")
    check(md.greeting == ma.greeting, "the monitor on the passed fd greets as the others")
    check(mb.execute("query-status")["return"]["status"] == "prelaunch", "-S starts in prelaunch")
    check(mc.execute("cont") == {"return": {}}, "cont on the -mon monitor")
    check(all(m.wait_event("RESUME") for m in (ma, mb, mc, md)), "RESUME reaches all four monitors")
    deadline = time.monotonic() + 20
    while not any("name=ready" in l for l in console) and time.monotonic() < deadline:
        time.sleep(0.02)
    check(any("name=ready" in l for l in console), "the guest runs (probe ready on the console)")

    # Bad clients, one after another, while monitor A keeps working.
    bad = Client(a)
    bad.sock.sendall(b'{"execute": "query-status"')  # unterminated, then garbage closing it
    bad.sock.sendall(b' ]}\r\n')
    reply = bad.message()
    check(reply and reply.get("error", {}).get("class") == "GenericError", f"malformed JSON gets GenericError ({reply})")
    check(bad.execute("query-kvm") == {"return": {"enabled": True, "present": True}}, "the same client works afterwards")
    # The worker lexes all 100 MiB (slowly under ASan on a busy machine): a generous hang guard.
    bad.sock.settimeout(180)
    bad.sock.sendall(b'{"execute": "query-status", "id": "huge", "arguments": {"x": "' + b"a" * (100 << 20) + b'"}}\r\n')
    reply = bad.message()
    bad.sock.settimeout(20)
    check(reply is None or "error" in reply, f"a 100 MiB message is refused ({str(reply)[:120]})")
    check(rss_kib(proc.pid) < 200 * 1024, f"worker RSS stays bounded after it ({rss_kib(proc.pid)} KiB)")
    check(ma.execute("query-status")["return"]["status"] == "running", "monitor A unaffected")

    flood = Client(b)
    payload = b'{"execute": "query-status"}\r\n' * 100000
    flood.sock.settimeout(30)

    def send_flood():
        try:
            flood.sock.sendall(payload)
        except OSError:
            pass

    sender = threading.Thread(target=send_flood, daemon=True)
    sender.start()
    time.sleep(1.0)
    start = time.monotonic()
    status = ma.execute("query-status")
    check(status["return"]["running"] and time.monotonic() - start < 5, "a flooding client that never reads does not stall others")
    check(rss_kib(proc.pid) < 200 * 1024, f"worker RSS bounded under the flood ({rss_kib(proc.pid)} KiB)")
    flood.sock.close()

    leaver = Client(c)
    leaver.sock.sendall(b'{"execute": "query-cpus-fast"}\r\n')
    leaver.sock.close()
    check(mc.execute("query-status")["return"]["running"], "a client leaving mid-command harms nothing")

    # The power button: POWERDOWN, the probe powers off, SHUTDOWN and (-no-shutdown) STOP.
    check(ma.execute("system_powerdown") == {"return": {}}, "system_powerdown")
    shutdown = mb.wait_event("SHUTDOWN")
    check(shutdown and shutdown["data"] == {"guest": True, "reason": "guest-shutdown"}, f"SHUTDOWN guest-shutdown ({shutdown})")
    check(mb.wait_event("STOP") is not None, "STOP after the guest's power-off with -no-shutdown")
    check(mc.execute("query-status")["return"]["status"] == "shutdown", "status shutdown, process kept")
    reply = mc.execute("cont")
    check(reply.get("error", {}).get("desc") == "Resetting the Virtual Machine is required", "cont refused after shutdown")
    check(ma.execute("quit") == {"return": {}}, "quit answered")
    check(proc.wait(timeout=20) == 0, "quit exits 0")
    check(not os.path.exists(a) and os.path.exists(d), "the worker removes the sockets it bound, not the passed one")

print(f"{len(failures)} failed")
sys.exit(1 if failures else 0)
