"""The one QMP client of the tests and benchmarks, over a Unix stream socket.

It speaks to every peer that frames JSON messages one a line: the `vmm` worker, real QEMU, vmmd's
control socket (QMP framing, vmmd's own commands) and qemu-ga (no greeting; its
guest-sync-delimited replies start with a 0xff byte, which reading skips). Every read has a
timeout: a silent peer ends in TimeoutError, never a hang.

    c = QmpClient.connect(path)                 # greeting read, qmp_capabilities sent
    c.execute("query-status")                   # the "return" value, or QmpError(class, desc)
    c.request("query-status")                   # the whole reply, {"return": ...} or {"error": ...}
    c.wait_event("STOP", timeout=5)             # events seen on the way are kept in c.events
    c.send_raw(b"[1]\\r\\n"); c.read_message()   # malformed input and what comes back
"""
import json
import socket
import time

DEFAULT_TIMEOUT = 20


class QmpError(Exception):
    """An {"error": {"class": ..., "desc": ...}} reply."""

    def __init__(self, cls, desc):
        super().__init__(f"{cls}: {desc}")
        self.cls = cls
        self.desc = desc


def connect_unix(path, timeout=20, interval=0.01, alive=None):
    """A stream socket connected to `path`, retried until `timeout` seconds have passed (the
    server may not be listening yet); timeout=0 tries once. alive(): False when the server's
    process has gone, which ends the retries at once."""
    deadline = time.monotonic() + timeout
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
            return s
        except OSError:
            s.close()
            if time.monotonic() >= deadline or (alive is not None and not alive()):
                raise
            time.sleep(interval)


class QmpClient:
    """A blocking client on a connected socket. Replies are matched to requests by their "id"
    where one was sent; events that arrive meanwhile are kept in self.events, oldest first."""

    def __init__(self, sock, timeout=DEFAULT_TIMEOUT):
        self.sock = sock
        self.timeout = timeout
        self.buffer = b""
        self.events = []
        self.greeting = None
        self._next_id = 0
        self._sock_timeout = None
        self._set_timeout(timeout)

    @classmethod
    def connect(cls, path, timeout=DEFAULT_TIMEOUT, connect_timeout=20, greeting=True, negotiate=True,
                retry_interval=0.01, alive=None):
        """Connects (retrying as connect_unix does), reads the greeting (greeting=False: a peer
        without one, qemu-ga) and sends qmp_capabilities (negotiate=False: not yet)."""
        client = cls(connect_unix(path, connect_timeout, retry_interval, alive), timeout)
        try:
            if greeting:
                # QEMU 7.2 can send an event before its greeting to a client that connects while
                # it starts (its RESUME raced the greeting in CI): kept like any other event.
                deadline = time.monotonic() + timeout
                client.greeting = client.read_message()
                while isinstance(client.greeting, dict) and "event" in client.greeting:
                    client.events.append(client.greeting)
                    client.greeting = client.read_message(max(0.001, deadline - time.monotonic()))
                if not client.greeting or "QMP" not in client.greeting:
                    raise ConnectionError(f"{path}: not a QMP greeting: {client.greeting!r}")
            if negotiate:
                client.execute("qmp_capabilities")
        except BaseException:
            client.close()
            raise
        return client

    # -- reading --------------------------------------------------------------------------------
    def read_line(self, timeout=None):
        """The next line as bytes, without its newline; None when the peer has closed. TimeoutError
        (socket.timeout) after `timeout` (default: the client's) seconds without a whole line."""
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buffer:
            self._set_timeout(timeout)
            chunk = self.sock.recv(1 << 16)
            timeout = max(0.001, deadline - time.monotonic())
            if not chunk:
                return None
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line

    def read_message(self, timeout=None):
        """The next message, parsed (a leading 0xff delimiter skipped); None when the peer has
        closed; ValueError when the line is not JSON."""
        line = self.read_line(timeout)
        if line is None:
            return None
        return json.loads(line.lstrip(b"\xff"))

    def reply(self, timeout=None):
        """The next message that is not an event (events seen on the way are kept); None at EOF."""
        while True:
            msg = self.read_message(timeout)
            if msg is None or "event" not in msg:
                return msg
            self.events.append(msg)

    # -- writing --------------------------------------------------------------------------------
    def send_raw(self, data, timeout=None):
        """Sends bytes as they are (malformed input, floods); `timeout` bounds the whole send."""
        self._set_timeout(self.timeout if timeout is None else timeout)
        self.sock.sendall(data)

    def _set_timeout(self, seconds):
        # Only when it changes: each settimeout is a system call, and the QMP benchmark times
        # round trips of a few microseconds through this client.
        if seconds != self._sock_timeout:
            self.sock.settimeout(seconds)
            self._sock_timeout = seconds

    def send(self, command, arguments=None, ident=None):
        request = {"execute": command}
        if arguments is not None:
            request["arguments"] = arguments
        if ident is not None:
            request["id"] = ident
        self.send_raw(json.dumps(request).encode() + b"\r\n")

    # -- commands -------------------------------------------------------------------------------
    def request(self, command, arguments=None, ident=None, timeout=None, match_id=True):
        """Sends a command and returns its whole reply ({"return": ...} or {"error": ...}), or
        None when the peer closed first. With match_id (the default) the command carries an id
        (`ident`, else a fresh number, taken out of the reply again) and replies without it are
        passed over: a malformed input can draw several error replies. match_id=False returns
        the next reply whatever it is, and sends an id only when `ident` is given."""
        own_id = match_id and ident is None
        if own_id:
            self._next_id += 1
            ident = self._next_id
        self.send(command, arguments, ident)
        while True:
            reply = self.reply(timeout)
            if reply is None or not match_id:
                return reply
            if reply.get("id") == ident:
                if own_id:
                    del reply["id"]
                return reply

    def execute(self, command, arguments=None, timeout=None):
        """The command's "return" value; QmpError for an error reply; ConnectionError when the
        peer closed before answering."""
        reply = self.request(command, arguments, timeout=timeout)
        if reply is None:
            raise ConnectionError(f"the peer closed the connection before answering {command}")
        if "error" in reply:
            raise QmpError(reply["error"].get("class"), reply["error"].get("desc"))
        return reply["return"]

    # -- events ---------------------------------------------------------------------------------
    def wait_event(self, match, timeout=DEFAULT_TIMEOUT):
        """The first event (kept or new) that `match` accepts: an event name or a predicate on
        the event; it is taken out of self.events. TimeoutError when none comes within `timeout`
        seconds; ConnectionError when the peer closes first."""
        accepts = (lambda e: e.get("event") == match) if isinstance(match, str) else match
        deadline = time.monotonic() + timeout
        while True:
            for i, e in enumerate(self.events):
                if accepts(e):
                    return self.events.pop(i)
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no matching event within {timeout} s; last seen {self.events[-5:]}")
            try:
                msg = self.read_message(left)
            except socket.timeout:
                continue
            if msg is None:
                raise ConnectionError(f"the peer closed the connection; last events {self.events[-5:]}")
            if "event" in msg:
                self.events.append(msg)

    def take_events(self, count, timeout=DEFAULT_TIMEOUT):
        """Up to `count` events (kept ones first), waiting at most `timeout` seconds for them or
        until the peer closes; they are taken out of self.events."""
        deadline = time.monotonic() + timeout
        while len(self.events) < count:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                msg = self.read_message(min(1.0, left))
            except socket.timeout:
                continue
            if msg is None:
                break
            if "event" in msg:
                self.events.append(msg)
        taken, self.events = self.events[:count], self.events[count:]
        return taken

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
