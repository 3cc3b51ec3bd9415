#!/usr/bin/env python3
"""Run a VMM with the probe guest, parse its PROBE lines from the serial port on stdout, and
check expectations. Exit status 0 when every check holds, 1 otherwise.

    run_probe.py [options] -- VMM [VMM ARGS...]

The VMM's serial port must be on its stdout (`-serial stdio`). By default a run passes when the
VMM exits with status 0 within the timeout, at least one `PROBE name=done` line was printed,
every `done` line says failures=0 and no line says ok=0.

Expectations (--expect, --reject), one line must (must not) match:
    NAME                       a line with name=NAME exists
    NAME.KEY<op>VALUE          ... whose KEY compares so with VALUE
    NAME:K1<op>V1,K2<op>V2     ... several conditions on the same line
  <op> is one of = != >= <= > <; numbers (decimal or 0x..) compare as numbers.
Examples: --expect cpus:madt=4,started=4  --expect memmap.total_kib>=60000  --expect reset.boot=2

--qmp PATH --powerdown: once `PROBE name=ready` appears, send `system_powerdown` over the VMM's
QMP socket (`--on-ready CMD` sends another QMP command instead, e.g. `quit`) (start the VMM with `-qmp unix:PATH,server=on,wait=off`). With `--qmp auto` a fresh
short path in a temporary folder is used, and `@QMP@` in the VMM's arguments is replaced by it.

--need-kvm: exit 77 (CTest's skip code here) when /dev/kvm is not usable; 1 under CI=true
(tests/support/vmmd_testlib/kvm_gate.py).
"""
import argparse
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "support"))
from vmmd_testlib.kvm_gate import require_kvm  # noqa: E402
from vmmd_testlib.qmp import QmpClient, QmpError  # noqa: E402
from vmmd_testlib.tempdir import temp_dir  # noqa: E402

OPS = ("!=", ">=", "<=", "=", ">", "<")


def parse_line(line):
    """'PROBE name=x ok=1 value="a b"' -> {'name': 'x', 'ok': '1', 'value': 'a b'}; None if no PROBE line."""
    idx = line.find("PROBE ")
    if idx < 0:
        return None
    try:
        words = shlex.split(line[idx + 6:])
    except ValueError:
        words = line[idx + 6:].split()
    fields = {}
    for w in words:
        k, sep, v = w.partition("=")
        if sep:
            fields[k] = v
    return fields if "name" in fields else None


def to_num(s):
    try:
        return int(s, 0)
    except (TypeError, ValueError):
        return None


def compare(actual, op, want):
    if actual is None:
        return False
    a, w = to_num(actual), to_num(want)
    if a is not None and w is not None:
        actual, want = a, w
    elif op not in ("=", "!="):
        return False
    return {"=": actual == want, "!=": actual != want, ">=": actual >= want, "<=": actual <= want,
            ">": actual > want, "<": actual < want}[op]


def parse_expr(expr):
    """Returns (name, [(key, op, value)])."""
    if ":" in expr:
        name, rest = expr.split(":", 1)
        conds_src = rest.split(",")
    elif "." in expr:
        name, rest = expr.split(".", 1)
        conds_src = [rest]
    else:
        return expr, []
    conds = []
    for c in conds_src:
        m = re.match(r"^([A-Za-z0-9_]+)(!=|>=|<=|=|>|<)(.*)$", c)
        if not m:
            raise SystemExit(f"run_probe: bad condition '{c}' in '{expr}'")
        conds.append((m.group(1), m.group(2), m.group(3)))
    return name, conds


def matches(fields, name, conds):
    return fields.get("name") == name and all(compare(fields.get(k), op, v) for k, op, v in conds)


def qmp_send(path, command, deadline):
    """Connects to a QMP socket, negotiates capabilities and sends one command (no arguments)."""
    timeout = max(1.0, deadline - time.monotonic())
    with QmpClient.connect(path, timeout=timeout, connect_timeout=timeout, retry_interval=0.05) as qmp:
        try:
            qmp.execute(command)
        except OSError:
            if command != "quit":  # the VMM may close the socket before answering
                raise


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds before the VMM is killed (default 60)")
    ap.add_argument("--expect", action="append", default=[], help="a line must match (see above)")
    ap.add_argument("--reject", action="append", default=[], help="no line may match")
    ap.add_argument("--exit-code", default="0", help="expected exit status of the VMM, or 'any' (default 0)")
    ap.add_argument("--allow-failures", action="store_true", help="do not require ok=1 and failures=0")
    ap.add_argument("--qmp", help="path of the VMM's QMP unix socket")
    ap.add_argument("--powerdown", action="store_true", help="send system_powerdown via --qmp once ready")
    ap.add_argument("--on-ready", metavar="CMD", help="send this QMP command via --qmp once ready")
    ap.add_argument("--need-kvm", action="store_true", help="exit 77 (skip; 1 under CI=true) when /dev/kvm is unusable")
    ap.add_argument("--log", help="write the VMM's stdout here")
    ap.add_argument("--dump", help="write the parsed PROBE lines here as JSON")
    ap.add_argument("--timestamps", action="store_true", help="prefix echoed lines with seconds since launch")
    ap.add_argument("--quiet", action="store_true", help="print only the verdict")
    ap.add_argument("cmd", nargs=argparse.REMAINDER, help="-- VMM [ARGS...]")
    args = ap.parse_args()
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not cmd:
        ap.error("no VMM command given")
    if args.powerdown:
        args.on_ready = "system_powerdown"
    if args.on_ready and not args.qmp:
        ap.error("--powerdown/--on-ready need --qmp PATH")
    if args.need_kvm and (status := require_kvm()) is not None:
        return status
    if args.qmp != "auto":
        return run(args, cmd)
    with temp_dir("probe-") as tmp:
        args.qmp = os.path.join(tmp, "qmp.sock")
        return run(args, cmd)


def run(args, cmd):
    """Runs the VMM, watches its PROBE lines and returns the exit status of the verdict."""
    if args.qmp:
        cmd = [a.replace("@QMP@", args.qmp) for a in cmd]
        if os.path.exists(args.qmp):
            os.unlink(args.qmp)

    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    out_lines, err_chunks = [], []
    ready = threading.Event()
    halted = threading.Event()  # the probe gave up (its last lines say why): stop waiting

    def read_stdout():
        for raw in proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            out_lines.append(line)
            if not args.quiet:
                print(f"[{time.monotonic() - start:7.3f}] {line}" if args.timestamps else line, flush=True)
            f = parse_line(line)
            if f and f["name"] == "ready":
                ready.set()
            if f and f["name"] == "halted":
                halted.set()

    def read_stderr():
        for raw in proc.stderr:
            err_chunks.append(raw.decode("utf-8", "replace"))

    threads = [threading.Thread(target=read_stdout, daemon=True), threading.Thread(target=read_stderr, daemon=True)]
    for t in threads:
        t.start()

    problems = []
    deadline = start + args.timeout
    powered_down = False
    timed_out = False
    halted_at = None
    while proc.poll() is None:
        if halted.is_set() and halted_at is None:
            halted_at = time.monotonic()
        expired = time.monotonic() > deadline
        if expired or (halted_at is not None and time.monotonic() > halted_at + 1.0):
            timed_out = True
            if expired:
                problems.append(f"timeout: the VMM ran longer than {args.timeout:g} s; killed")
            else:
                problems.append("the probe halted without powering off (PROBE name=halted); killed")
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(2)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            break
        if args.on_ready and ready.is_set() and not powered_down:
            powered_down = True
            try:
                qmp_send(args.qmp, args.on_ready, deadline)
                if not args.quiet:
                    print(f"run_probe: sent {args.on_ready} at {time.monotonic() - start:.2f} s", flush=True)
            except (OSError, ValueError, QmpError) as e:
                problems.append(f"QMP {args.on_ready} failed: {e}")
        time.sleep(0.01)
    proc.wait()
    for t in threads:
        t.join(2)
    elapsed = time.monotonic() - start

    parsed = [f for f in (parse_line(l) for l in out_lines) if f]
    if args.log:
        with open(args.log, "w") as fh:
            fh.write("\n".join(out_lines) + "\n")
    if args.dump:
        with open(args.dump, "w") as fh:
            json.dump(parsed, fh, indent=1)

    if args.exit_code != "any" and not timed_out and proc.returncode != int(args.exit_code):
        problems.append(f"exit status {proc.returncode}, expected {args.exit_code}")
    if not args.allow_failures:
        dones = [f for f in parsed if f["name"] == "done"]
        if not dones:
            problems.append("no 'PROBE name=done' line")
        for f in dones:
            if f.get("failures") != "0":
                problems.append(f"done line reports failures={f.get('failures')}")
        for f in parsed:
            if f.get("ok") == "0":
                problems.append("check failed: " + " ".join(f"{k}={v}" for k, v in f.items()))
    if args.on_ready and not powered_down:
        problems.append(f"the probe never printed 'PROBE name=ready', so {args.on_ready} was not sent")
    for e in args.expect:
        name, conds = parse_expr(e)
        if not any(matches(f, name, conds) for f in parsed):
            problems.append(f"expected a line matching '{e}'")
    for e in args.reject:
        name, conds = parse_expr(e)
        if any(matches(f, name, conds) for f in parsed):
            problems.append(f"unexpected line matching '{e}'")

    stderr_text = "".join(err_chunks).strip()
    if problems:
        print(f"run_probe: FAIL after {elapsed:.2f} s: {shlex.join(cmd)}", flush=True)
        for p in problems:
            print(f"run_probe:   {p}")
        if stderr_text:
            print("run_probe: VMM stderr:\n" + stderr_text)
        return 1
    print(f"run_probe: OK in {elapsed:.2f} s ({len(parsed)} PROBE lines, exit {proc.returncode})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
