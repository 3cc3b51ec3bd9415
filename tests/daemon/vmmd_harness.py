"""Shared driver for the end-to-end daemon tests: a real vmmd in temporary state/run dirs, a
blocking QMP client for its control socket, probe-guest definitions, and waits with deadlines.

Paths come from the environment (set by CTest): VMMD, VMM, VMCTL, PROBE_ELF."""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from kvm_gate import cannot_run, kvm_unusable_reason, require_kvm  # noqa: E402,F401

VMMD = os.environ.get("VMMD", "build/daemon/vmmd")
VMM = os.environ.get("VMM", "build/vmm/vmm")
VMCTL = os.environ.get("VMCTL", "build/cli/vmctl")
PROBE_ELF = os.environ.get("PROBE_ELF", "build/tests/guest/probe/probe.elf")


class QmpError(Exception):
    def __init__(self, cls, desc):
        super().__init__(f"{cls}: {desc}")
        self.cls = cls
        self.desc = desc


class Client:
    """A blocking QMP client; events are kept in self.events."""

    def __init__(self, path, timeout=10):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.buf = b""
        self.events = []
        self.next_id = 1
        greeting = self._read()
        assert "QMP" in greeting, greeting
        self.execute("qmp_capabilities")

    def _read(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("vmmd closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def execute(self, _command, _timeout=90, **arguments):
        msg = {"execute": _command, "id": self.next_id}
        self.next_id += 1
        if arguments:
            msg["arguments"] = arguments
        self.sock.settimeout(_timeout)
        self.sock.sendall(json.dumps(msg).encode() + b"\r\n")
        while True:
            reply = self._read()
            if "event" in reply:
                self.events.append(reply)
                continue
            if reply.get("id") != msg["id"]:
                continue
            if "error" in reply:
                raise QmpError(reply["error"]["class"], reply["error"]["desc"])
            return reply["return"]

    def wait_event(self, predicate, timeout=30):
        deadline = time.monotonic() + timeout
        for e in self.events:
            if predicate(e):
                self.events.remove(e)
                return e
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                e = self._read()
            except socket.timeout:
                break
            if "event" in e and predicate(e):
                return e
            if "event" in e:
                self.events.append(e)
        raise TimeoutError("no matching event within %ss; seen %s" % (timeout, self.events[-5:]))

    def close(self):
        self.sock.close()


def probe_definition(name, **extra):
    d = {"schema": 1, "name": name, "memory": 64, "vcpus": 1, "kernel": os.path.abspath(PROBE_ELF),
         "cmdline": "nochecks powerbutton"}
    d.update(extra)
    return d


class Daemon:
    """vmmd in its own temporary directories; restartable with the same ones."""

    def __init__(self, tmp=None, extra_args=()):
        self.tmp = tmp or tempfile.mkdtemp(prefix="vmmd-e2e-")
        self.state = os.path.join(self.tmp, "state")
        self.run = os.path.join(self.tmp, "run")
        self.socket = os.path.join(self.run, "vmmd.sock")
        self.log_path = os.path.join(self.tmp, "vmmd.log")
        self.extra_args = list(extra_args)
        self.proc = None

    def start(self, timeout=10):
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([VMMD, "--state-dir", self.state, "--run-dir", self.run, "--vmm",
                                      os.path.abspath(VMM), "--foreground"] + self.extra_args,
                                     stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("vmmd exited with %s:\n%s" % (self.proc.returncode, self.log()))
            try:
                c = Client(self.socket, timeout=2)
                return c
            except (FileNotFoundError, ConnectionRefusedError):
                time.sleep(0.02)
        raise TimeoutError("vmmd did not come up:\n" + self.log())

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill9()

    def client(self):
        return Client(self.socket)

    def cleanup(self):
        """Stops vmmd and kills every worker it left (they outlive it by design)."""
        self.stop()
        pids = []
        vms = os.path.join(self.run, "vms")
        if os.path.isdir(vms):
            for name in os.listdir(vms):
                try:
                    with open(os.path.join(vms, name, "pid")) as f:
                        pids.append(int(f.read().strip()))
                except (OSError, ValueError):
                    pass
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(self.tmp, ignore_errors=True)


def wait_until(predicate, timeout=30, what="condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(0.05)
    raise TimeoutError("timed out waiting for %s (last: %r)" % (what, last))


def state_of(client, name):
    return client.execute("vm-info", name=name)["state"]


def console_log(daemon, name):
    try:
        with open(os.path.join(daemon.run, "vms", name, "console.log"), errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open("/proc/%d/stat" % pid) as f:
        return f.read().rsplit(")", 1)[1].split()[0] != "Z"


def check(cond, message):
    if not cond:
        raise AssertionError(message)




def check_sanitizers(daemon):
    """In a sanitizer build, vmmd's reports go to its log: any of them fails the test."""
    log = daemon.log()
    for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
        check(marker not in log, "sanitizer report in vmmd's log:\n" + log)


def with_daemon(fn, *args):
    """Runs fn(daemon, *args) against a fresh vmmd in temporary dirs. vmmd must outlive the test
    and its log must carry no sanitizer report; on any failure the log is printed."""
    d = Daemon()
    try:
        fn(d, *args)
        check(d.proc is None or d.proc.poll() is None, "vmmd exited during the test")
        d.stop()
        check_sanitizers(d)
    except BaseException:
        print("--- vmmd log ---\n" + d.log(), file=sys.stderr)
        raise
    finally:
        d.cleanup()


def scenario_main(namespace, doc, without_kvm=()):
    """main() of an e2e script: runs scenario_NAME(daemon) for NAME = argv[1] through with_daemon;
    skips (CTest code 77; a failure under CI=true) without a usable /dev/kvm unless NAME is in
    without_kvm."""
    scenario = sys.argv[1] if len(sys.argv) > 1 else ""
    fn = namespace.get("scenario_" + scenario)
    if not fn:
        print(doc)
        return 2
    if scenario not in without_kvm and (status := require_kvm()) is not None:
        return status
    with_daemon(fn)
    print(f"{scenario}: ok")
    return 0
