#!/usr/bin/env python3
"""End-to-end tests of the guest-agent commands (vmctl agent/exec/cp, vmmd's vm-agent-command).

usage: e2e_agent.py SCENARIO
  host   the real qemu-ga on this host (qemu-ga -m unix-listen), reached with vmctl --socket:
         ping, info, osinfo, exec, a 5 MiB copy in and out, agent restarted, no agent answering
  vmmd   vmmd with a probe-guest VM that has the agent channel but no agent in it: the "not
         connected" answers of vm-agent-command, vm-shutdown mode agent, vm-info (needs /dev/kvm)
The guest side with a real Linux and qemu-ga is the nested tier's vmmd-agent scenario."""
import filecmp
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from vmmd_testlib.qmp import QmpClient  # noqa: E402
from vmmd_testlib.tempdir import temp_dir  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "daemon"))
from vmmd_harness import (QmpError, VMCTL, cannot_run, check, probe_definition,  # noqa: E402
                          require_kvm, state_of, with_daemon)


def run(*args, timeout=120):
    p = subprocess.run([VMCTL, *args], capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def expect(rc_want, *args, timeout=120):
    rc, out, err = run(*args, timeout=timeout)
    check(rc == rc_want, f"vmctl {' '.join(args)} -> {rc} (want {rc_want}): {out} {err}")
    return out, err


def expect_ping_after_busy(agent):
    """After clients queued behind a busy qemu-ga gave up: qemu-ga -m unix-listen stops listening
    while it serves a client, and qemu-ga 7.2 may exit once it accepts a queued client that has
    already gone (its reply hits a closed socket). Neither is our client's doing, so refused
    connects are retried and a qemu-ga that exited is started again; then the ping must work."""
    deadline = time.monotonic() + 10
    while True:
        rc, out, err = run("agent", "--socket", agent.socket, '{"execute": "guest-ping"}')
        if rc == 0 or "Connection refused" not in err or time.monotonic() > deadline:
            break
        if agent.proc.poll() is not None:
            print(f"qemu-ga exited ({agent.proc.returncode}) after its queued clients left; restarting it")
            agent.start()
        time.sleep(0.1)
    check(rc == 0, f"vmctl agent --socket {agent.socket} guest-ping -> {rc} (want 0): {out} {err}")


def find_qemu_ga():
    for p in ("/usr/sbin/qemu-ga", "/usr/bin/qemu-ga"):
        if os.access(p, os.X_OK):
            return p
    return shutil.which("qemu-ga")


class HostAgent:
    """qemu-ga -m unix-listen on the host, in a temporary directory."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.socket = os.path.join(tmp, "qga.sock")
        os.makedirs(os.path.join(tmp, "state"), exist_ok=True)
        self.proc = None

    def start(self):
        if os.path.exists(self.socket):
            os.unlink(self.socket)
        self.proc = subprocess.Popen([find_qemu_ga(), "-m", "unix-listen", "-p", self.socket,
                                      "-t", os.path.join(self.tmp, "state"),
                                      "-l", os.path.join(self.tmp, "qga.log")])
        deadline = time.monotonic() + 10
        while not os.path.exists(self.socket):
            check(time.monotonic() < deadline and self.proc.poll() is None, "qemu-ga did not start")
            time.sleep(0.01)

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()


class FakePeer:
    """A socket that accepts and then does what `behaviour` says: for what no real agent sends."""

    def __init__(self, path, behaviour):
        self.srv = socket.socket(socket.AF_UNIX)
        self.srv.bind(path)
        self.srv.listen(4)
        self.behaviour = behaviour
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        conn, _ = self.srv.accept()
        try:
            conn.settimeout(30)
            data = conn.recv(65536)
            if self.behaviour == "garbage":
                conn.sendall(b"\x00\x01{{{ not json ]]]" * 1000)
                time.sleep(5)
            else:
                # Answer the sync as an agent would, then reply badly to the command.
                sync = json.loads(data.lstrip(b"\xff").split(b"\n")[0])
                conn.sendall(b"\xff" + json.dumps({"return": sync["arguments"]["id"]}).encode() + b"\n")
                conn.recv(65536)
                if self.behaviour == "malformed":
                    conn.sendall(b'{"return": {"a": [1,,]}}\n')
                    time.sleep(1)
                else:  # "vanish": half a reply, then the connection closes
                    conn.sendall(b'{"return": {"ver')
        except OSError:
            pass
        finally:
            conn.close()

    def close(self):
        self.srv.close()


def scenario_host(tmp):
    if not find_qemu_ga():
        return cannot_run("qemu-ga is not installed (scripts/install-deps.sh)")
    agent = HostAgent(tmp)
    agent.start()
    s = agent.socket
    try:
        out, _ = expect(0, "agent", "--socket", s, '{"execute": "guest-ping"}')
        check(json.loads(out) == {}, out)
        info = json.loads(expect(0, "agent", "--socket", s, '{"execute": "guest-info"}')[0])
        check(any(c["name"] == "guest-exec" for c in info["supported_commands"]), "guest-info lists guest-exec")
        osinfo = json.loads(expect(0, "agent", "--socket", s, '{"execute": "guest-get-osinfo"}')[0])
        check(osinfo["kernel-release"] == os.uname().release, osinfo)
        # The agent's own errors: exit 1 with its description.
        _, err = expect(1, "agent", "--socket", s, '{"execute": "guest-no-such-thing"}')
        check("guest agent: The command guest-no-such-thing has not been found" in err, err)

        # exec: stdout, stderr and the exit code are the guest command's.
        rc, out, err = run("exec", "--socket", s, "--", "sh", "-c", "echo to-out; echo to-err >&2; exit 42")
        check((rc, out, err) == (42, "to-out\n", "to-err\n"), (rc, out, err))
        rc, out, _ = run("exec", "--socket", s, "--", "printf", "%s|", "a b", "--json", "-x")
        check((rc, out) == (0, "a b|--json|-x|"), (rc, out))
        rc, _, _ = run("exec", "--socket", s, "--", "sh", "-c", "kill -TERM $$")
        check(rc == 128 + signal.SIGTERM, rc)
        rc, _, err = run("exec", "--socket", s, "--", "/no/such/program")
        check(rc == 125 and "vmctl: exec:" in err, (rc, err))

        # A 5 MiB file in and out, unchanged; checked by size and the guest's sha256sum.
        src = os.path.join(tmp, "random.bin")
        with open(src, "wb") as f:
            f.write(os.urandom(5 * 1024 * 1024 + 123))
        guest = os.path.join(tmp, "in-guest.bin")
        out, _ = expect(0, "cp", "--socket", s, src, ":" + guest)
        check("copied 5243003 bytes" in out and "sha256" in out, out)
        check(filecmp.cmp(src, guest, shallow=False), "file copied in differs")
        back = os.path.join(tmp, "back.bin")
        out, _ = expect(0, "cp", "--socket", s, ":" + guest, back)
        check(filecmp.cmp(src, back, shallow=False), "file copied out differs")
        check(not os.path.exists(back + ".vmctl-partial"), "partial file left behind")
        _, err = expect(1, "cp", "--socket", s, ":" + os.path.join(tmp, "missing"), os.path.join(tmp, "x"))
        check("guest agent:" in err and not os.path.exists(os.path.join(tmp, "x")), err)
        expect(4, "cp", "--socket", s, os.path.join(tmp, "no-local-file"), ":" + guest)
        expect(2, "cp", "--socket", s, src, guest)  # neither side remote

        # A client that leaves half a request behind; the next one resynchronises.
        with QmpClient.connect(s, timeout=5, connect_timeout=0, greeting=False, negotiate=False) as c:
            c.send_raw(b'{"execute": "guest-ping"}\n{"execute": "guest-inf')
            c.read_line()  # read the ping's reply: qemu-ga exits when a client resets the connection
        expect(0, "agent", "--socket", s, '{"execute": "guest-ping"}')

        # Agent killed: a clear error at once; restarted: reached again.
        agent.kill()
        t0 = time.monotonic()
        _, err = expect(5, "agent", "--socket", s, "--timeout", "3", '{"execute": "guest-ping"}')
        check("guest agent is not connected" in err and time.monotonic() - t0 < 10, err)
        agent.start()
        expect(0, "agent", "--socket", s, '{"execute": "guest-ping"}')

        # Socket accepted but nobody answering (qemu-ga serves one client at a time).
        with QmpClient.connect(s, timeout=5, connect_timeout=0, greeting=False, negotiate=False) as holder:
            holder.send_raw(b'\xff{"execute": "guest-sync-delimited", "arguments": {"id": 1}}\n')
            holder.read_line()  # qemu-ga has this client now (its first answer: the 0xff is a parse error)
            t0 = time.monotonic()
            _, err = expect(5, "agent", "--socket", s, "--timeout", "1", '{"execute": "guest-ping"}')
            check("guest agent is not connected (no answer to guest-sync-delimited within 1000 ms)" in err, err)
            check(time.monotonic() - t0 < 10, "took too long")
            expect(125, "exec", "--socket", s, "--timeout", "1", "--", "true")
        expect_ping_after_busy(agent)
    finally:
        agent.kill()

    # Peers that misbehave: garbage without a sync reply, a malformed reply, a reply cut short.
    for behaviour, rc, text in (("garbage", 5, "guest agent is not connected"),
                                ("malformed", 5, "malformed reply from the guest agent"),
                                ("vanish", 5, "closed")):
        path = os.path.join(tmp, behaviour + ".sock")
        peer = FakePeer(path, behaviour)
        try:
            _, err = expect(rc, "agent", "--socket", path, "--timeout", "2", '{"execute": "guest-info"}')
            check(text in err, f"{behaviour}: {err}")
        finally:
            peer.close()
    return 0


def scenario_vmmd(tmp):
    if (status := require_kvm()) is not None:
        return status

    def run(d):
        c = d.start()
        c.execute("vm-define", {"definition": probe_definition("ga1", agent=True)})
        c.execute("vm-define", {"definition": probe_definition("plain")})
        c.execute("vm-start", {"name": "ga1"})
        c.execute("vm-start", {"name": "plain"})
        info = c.execute("vm-info", {"name": "ga1"})
        check(info["agent"] == "disconnected" and info["qga"].endswith("qga.sock"), info)
        check("agent" not in c.execute("vm-info", {"name": "plain"}), "no agent state without a channel")

        # The probe guest never opens the port: not connected, within the timeout, exit code 5.
        t0 = time.monotonic()
        _, err = expect(5, "--socket", d.socket, "agent", "ga1", "--timeout", "1", '{"execute": "guest-ping"}')
        check("VM 'ga1': guest agent is not connected" in err and time.monotonic() - t0 < 15, err)
        expect(125, "--socket", d.socket, "exec", "ga1", "--", "true")
        with open(os.path.join(tmp, "x"), "w") as f:
            f.write("x")
        expect(5, "--socket", d.socket, "cp", "--timeout", "1", os.path.join(tmp, "x"), "ga1:/tmp/x")
        # Commands queue per VM and vmmd stays responsive while they wait.
        procs = [subprocess.Popen([VMCTL, "--socket", d.socket, "agent", "ga1", "--timeout", "1",
                                   '{"execute": "guest-ping"}'], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL) for _ in range(3)]
        check(state_of(c, "ga1") == "running", "vm-info while agent commands wait")
        check([p.wait(60) for p in procs] == [5, 5, 5], "queued commands")

        # Bad requests.
        for cmd, want in (("[1]", "Parameter 'command'"), ('{"arguments": {}}', "Parameter 'command'"),
                          ('{"execute": "guest-ping", "id": 1}', "unexpected member 'id'")):
            try:
                c.execute("vm-agent-command", {"name": "ga1", "command": json.loads(cmd)})
                check(False, "accepted " + cmd)
            except QmpError as e:
                check(want in e.desc, e.desc)
        try:
            c.execute("vm-agent-command", {"name": "ga1", "command": '{"execute": "guest-ping"', "timeout": 1})
            check(False, "accepted broken JSON text")
        except QmpError as e:
            check("not valid JSON" in e.desc, e.desc)
        try:
            c.execute("vm-agent-command", {"name": "plain", "command": {"execute": "guest-ping"}})
            check(False, "agent command on a VM without a channel")
        except QmpError as e:
            check("has no guest agent channel" in e.desc, e.desc)
        expect(1, "--socket", d.socket, "agent", "nosuchvm", '{"execute": "guest-ping"}')

        # Shutdown through the agent fails clearly when there is none; the VM keeps running.
        _, err = expect(1, "--socket", d.socket, "shutdown", "ga1", "--mode", "agent", "--timeout", "30")
        check("guest agent is not connected" in err, err)
        check(state_of(c, "ga1") == "running", "still running after a failed agent shutdown")
        expect(2, "--socket", d.socket, "shutdown", "ga1", "--mode", "bogus")
        # The default (ACPI) still works: the probe guest powers off on the button.
        expect(0, "--socket", d.socket, "shutdown", "ga1", "--timeout", "30")
        check(state_of(c, "ga1") == "shut-off", "shut off")
        check("agent" not in c.execute("vm-info", {"name": "ga1"}), "no agent state when shut off")
        c.execute("vm-destroy", {"name": "plain"})

    with_daemon(run)
    return 0


def main():
    scenario = sys.argv[1] if len(sys.argv) > 1 else ""
    fn = globals().get("scenario_" + scenario)
    if not fn:
        print(__doc__)
        return 2
    with temp_dir("vmmd-agent-e2e-") as tmp:
        rc = fn(tmp)
    if rc == 0:
        print(f"{scenario}: ok")
    return rc


if __name__ == "__main__":
    sys.exit(main())
