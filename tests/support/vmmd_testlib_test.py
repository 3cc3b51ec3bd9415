#!/usr/bin/env python3
"""Tests of the shared test library (tests/support/vmmd_testlib): the QMP client against real
QEMU (-machine none: no guest, no KVM) and against scripted peers for what no real server sends
(silence, a malformed reply, a closed connection, qemu-ga's 0xff delimiter); the temp-dir helper,
the waits and the differences list.

    vmmd_testlib_test.py [unittest options]
QEMU's cases skip when qemu-system-x86_64 is not installed (fail under CI=true: kvm_gate.py).
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vmmd_testlib import process, tempdir  # noqa: E402
from vmmd_testlib.differences import load_differences  # noqa: E402
from vmmd_testlib.kvm_gate import must_not_skip  # noqa: E402
from vmmd_testlib.qmp import QmpClient, QmpError, connect_unix  # noqa: E402

QEMU = os.environ.get("QEMU_SYSTEM_X86_64") or shutil.which("qemu-system-x86_64")


class ScriptedPeer:
    """A Unix socket server that accepts one client and runs `script(conn)` on it."""

    def __init__(self, path, script):
        self.srv = socket.socket(socket.AF_UNIX)
        self.srv.bind(path)
        self.srv.listen(1)
        self.received = b""
        self.thread = threading.Thread(target=self._serve, args=(script,), daemon=True)
        self.thread.start()

    def _serve(self, script):
        conn, _ = self.srv.accept()
        with conn:
            conn.settimeout(10)
            try:
                script(self, conn)
            except OSError:
                pass

    def close(self):
        self.srv.close()
        self.thread.join(10)


GREETING = b'{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}}, "capabilities": []}}\r\n'


def answer(peer, conn, reply_text):
    """Reads one request and sends `reply_text`, the request's "id" put in for @ID@."""
    request = conn.recv(4096)
    peer.received += request
    ident = json.dumps(json.loads(request).get("id"))
    conn.sendall(reply_text.replace(b"@ID@", ident.encode()))


def negotiated(peer, conn):
    """Greets and answers qmp_capabilities, as QEMU would."""
    conn.sendall(GREETING)
    answer(peer, conn, b'{"return": {}, "id": @ID@}\r\n')


class WithTempDir(unittest.TestCase):
    def setUp(self):
        self.tmp = tempdir.TempDir("vmmd-testlib-")
        self.addCleanup(self.tmp.remove)

    def path(self, name):
        return os.path.join(self.tmp.path, name)


class AgainstQemu(WithTempDir):
    """The client against real QEMU's monitor."""

    def setUp(self):
        if not QEMU:
            if must_not_skip():
                self.fail("qemu-system-x86_64 is not installed (CI=true: a skipped test is a failure)")
            self.skipTest("qemu-system-x86_64 is not installed")
        super().setUp()
        sock = self.path("qmp.sock")
        self.proc = subprocess.Popen([QEMU, "-machine", "none", "-nodefaults", "-display", "none",
                                      "-qmp", f"unix:{sock},server=on,wait=off"],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.addCleanup(lambda: (process.stop(self.proc, 5), self.proc.stderr.close()))
        self.qmp = QmpClient.connect(sock, timeout=10, alive=lambda: self.proc.poll() is None)
        self.addCleanup(self.qmp.close)

    def test_greeting_and_negotiation(self):
        self.assertEqual(self.qmp.greeting["QMP"]["capabilities"], ["oob"])
        self.assertIn("qemu", self.qmp.greeting["QMP"]["version"])
        self.assertEqual(self.qmp.execute("query-status")["status"], "running")

    def test_error_reply_raises_with_class_and_description(self):
        with self.assertRaises(QmpError) as caught:
            self.qmp.execute("frobnicate")
        self.assertEqual(caught.exception.cls, "CommandNotFound")
        self.assertEqual(caught.exception.desc, "The command frobnicate has not been found")

    def test_request_returns_the_whole_reply(self):
        self.assertEqual(self.qmp.request("query-kvm"), {"return": {"enabled": False, "present": True}})
        reply = self.qmp.request("query-kvm", ident={"a": [1, None]}, match_id=False)
        self.assertEqual(reply["id"], {"a": [1, None]})

    def test_malformed_input_draws_an_error_and_the_session_goes_on(self):
        self.qmp.send_raw(b"[1]\r\n")
        self.assertEqual(self.qmp.reply()["error"]["class"], "GenericError")
        self.assertEqual(self.qmp.execute("query-status")["status"], "running")

    def test_events_are_kept_and_waited_for(self):
        self.qmp.execute("stop")
        self.qmp.execute("cont")
        self.assertEqual(self.qmp.wait_event("RESUME", 5)["event"], "RESUME")
        self.assertEqual(self.qmp.take_events(1, 5)[0]["event"], "STOP")
        with self.assertRaises(TimeoutError):
            self.qmp.wait_event(lambda e: e["event"] == "SHUTDOWN", 0.3)

    def test_quit_then_the_peer_is_gone(self):
        self.assertEqual(self.qmp.execute("quit"), {})
        self.assertEqual(self.proc.wait(10), 0)
        with self.assertRaises(OSError):
            self.qmp.execute("query-status")


class AgainstScriptedPeers(WithTempDir):
    def serve(self, name, script):
        """A scripted peer listening at socket `name` in the test's directory."""
        peer = ScriptedPeer(self.path(name), script)
        self.addCleanup(peer.close)
        return peer

    def client(self, name, **options):
        """A client of the peer at `name` (options: QmpClient.connect's; timeout 5 s)."""
        client = QmpClient.connect(self.path(name), **{"timeout": 5, **options})
        self.addCleanup(client.close)
        return client

    def test_silent_server_times_out(self):
        self.serve("silent.sock", lambda p, c: time.sleep(3))
        start = time.monotonic()
        with self.assertRaises(TimeoutError):
            QmpClient.connect(self.path("silent.sock"), timeout=0.3)
        self.assertLess(time.monotonic() - start, 2)

    def test_malformed_reply_is_an_error(self):
        def script(peer, conn):
            negotiated(peer, conn)
            conn.recv(4096)
            conn.sendall(b'{"return": {"a": [1,,]}}\r\n')
            time.sleep(1)
        self.serve("bad.sock", script)
        client = self.client("bad.sock")
        with self.assertRaises(ValueError):
            client.execute("query-status")

    def test_not_a_greeting_is_refused(self):
        self.serve("notqmp.sock", lambda p, c: c.sendall(b'{"hello": 1}\n'))
        with self.assertRaises(ConnectionError):
            QmpClient.connect(self.path("notqmp.sock"), timeout=5)

    def test_an_event_before_the_greeting_is_kept(self):
        def script(peer, conn):
            conn.sendall(b'{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "RESUME"}\r\n')
            negotiated(peer, conn)
            time.sleep(1)
        self.serve("early.sock", script)
        client = self.client("early.sock")
        self.assertIn("QMP", client.greeting)
        self.assertEqual([e["event"] for e in client.events], ["RESUME"])

    def test_peer_closing_before_the_reply(self):
        def script(peer, conn):
            negotiated(peer, conn)
            conn.recv(4096)
            conn.sendall(b'{"return": {"ver')
        peer = self.serve("vanish.sock", script)
        client = self.client("vanish.sock")
        with self.assertRaises(ConnectionError):
            client.execute("query-version")
        self.assertIn(b'"execute": "qmp_capabilities"', peer.received)

    def test_replies_are_matched_by_id_and_events_kept(self):
        def script(peer, conn):
            negotiated(peer, conn)
            answer(peer, conn, b'{"error": {"class": "GenericError", "desc": "stray"}}\r\n'
                               b'{"event": "STOP", "timestamp": {}}\r\n'
                               b'{"return": 7, "id": @ID@}\r\n')
            time.sleep(1)
        self.serve("ids.sock", script)
        client = self.client("ids.sock")
        self.assertEqual(client.execute("query-anything"), 7)
        self.assertEqual([e["event"] for e in client.events], ["STOP"])

    def test_agent_framing_without_greeting_and_with_delimiter(self):
        def script(peer, conn):
            peer.received += conn.recv(4096)
            conn.sendall(b'\xff{"return": 42}\n')
            time.sleep(1)
        peer = self.serve("qga.sock", script)
        client = self.client("qga.sock", greeting=False, negotiate=False)
        self.assertEqual(client.request("guest-sync-delimited", {"id": 42}, match_id=False), {"return": 42})
        self.assertEqual(peer.received, b'{"execute": "guest-sync-delimited", "arguments": {"id": 42}}\r\n')

    def test_connect_retries_until_the_server_listens(self):
        path = self.path("late.sock")
        threading.Timer(0.2, lambda: ScriptedPeer(path, negotiated)).start()
        client = QmpClient.connect(path, timeout=5, connect_timeout=5)
        client.close()

    def test_connect_gives_up(self):
        start = time.monotonic()
        with self.assertRaises(FileNotFoundError):
            connect_unix(self.path("never.sock"), timeout=0.2)
        with self.assertRaises(FileNotFoundError):
            connect_unix(self.path("never.sock"), timeout=30, alive=lambda: False)
        self.assertLess(time.monotonic() - start, 2)


class Helpers(unittest.TestCase):
    def test_temp_dir_is_removed(self):
        with tempdir.temp_dir("vmmd-testlib-") as path:
            open(os.path.join(path, "f"), "w").close()
        self.assertFalse(os.path.exists(path))

    def test_temp_dir_is_kept_after_a_failure_only_when_asked(self):
        for keep, exists in (("1", True), ("", False)):
            os.environ["VMMD_KEEP_TMP"] = keep
            try:
                with self.assertRaises(RuntimeError), tempdir.temp_dir("vmmd-testlib-") as path:
                    raise RuntimeError("failed")
            finally:
                del os.environ["VMMD_KEEP_TMP"]
            self.assertEqual(os.path.exists(path), exists)
            shutil.rmtree(path, ignore_errors=True)

    def test_wait_until(self):
        values = iter([0, 0, 5])
        self.assertEqual(process.wait_until(lambda: next(values), 5, "third value", interval=0.01), 5)
        with self.assertRaises(TimeoutError):
            process.wait_until(lambda: False, 0.1, "never")

    def test_stop_kills_what_ignores_the_signal(self):
        proc = subprocess.Popen(["sh", "-c", "trap '' TERM; exec sleep 30"])
        time.sleep(0.2)  # the trap is set
        self.assertEqual(process.stop(proc, timeout=0.3), -9)

    def test_differences(self):
        with tempdir.temp_dir("vmmd-testlib-") as path:
            name = os.path.join(path, "d.txt")
            with open(name, "w") as f:
                f.write("# comment\n\nquery-kvm/return/*  timestamps differ\nx  y z\n")
            self.assertEqual(load_differences(name), {"query-kvm/return/*": "timestamps differ", "x": "y z"})


if __name__ == "__main__":
    unittest.main()
