#!/usr/bin/env python3
"""The worker's QMP monitors end to end: four monitors at once (-qmp twice, -chardev + -mon, and
-chardev socket,fd=N + -mon on a listening socket bound here and passed open, as vmmd does),
events on all of them, -S/cont, bad clients (malformed JSON, a message over the 64 MiB limit, a
client that floods 100 000 commands and never reads, a client that leaves mid-command) while the
guest and the other monitors carry on, the power button through QMP, -no-shutdown, and quit.

    qmp_monitor.py VMM PROBE_ELF
"""
import os
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from vmmd_testlib.kvm_gate import require_kvm  # noqa: E402
from vmmd_testlib.process import rss_kib  # noqa: E402
from vmmd_testlib.qmp import QmpClient, connect_unix  # noqa: E402
from vmmd_testlib.tempdir import temp_dir  # noqa: E402

vmm, probe = sys.argv[1], sys.argv[2]
if (status := require_kvm()) is not None:
    sys.exit(status)
failures = []


def check(condition, what):
    print(("ok   " if condition else "FAIL ") + what)
    if not condition:
        failures.append(what)


def event(monitor, name, timeout=20):
    """The event `name` from `monitor` within `timeout` seconds, or None."""
    try:
        return monitor.wait_event(name, timeout)
    except (TimeoutError, ConnectionError):
        return None


# Under ASan every freed block first waits in a quarantine (256 MiB by default), so after a
# 64 MiB message has been buffered and dropped the RSS would measure ASan, not the worker.
worker_env = dict(os.environ)
if "ASAN_OPTIONS" in worker_env:
    worker_env["ASAN_OPTIONS"] += ":quarantine_size_mb=16:thread_local_quarantine_size_kb=64"

with temp_dir("vmm-qmp-monitor-") as tmp:
    a, b, c, d = (os.path.join(tmp, n) for n in ("a.sock", "b.sock", "c.sock", "d.sock"))
    exit_stats = os.path.join(tmp, "exit-stats.txt")
    worker_env["VMM_EXIT_STATS"] = exit_stats
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
    connect_unix(d, timeout=0).close()
    md = QmpClient.connect(d)
    console = []
    threading.Thread(target=lambda: [console.append(l) for l in proc.stdout], daemon=True).start()
    ma, mb, mc = (QmpClient.connect(path) for path in (a, b, c))
    check(ma.greeting["QMP"]["capabilities"] == ["oob"], "greeting advertises oob on every monitor")
    check(md.greeting == ma.greeting, "the monitor on the passed fd greets as the others")
    check(mb.request("query-status")["return"]["status"] == "prelaunch", "-S starts in prelaunch")
    check(mc.request("cont") == {"return": {}}, "cont on the -mon monitor")
    check(all(event(m, "RESUME") for m in (ma, mb, mc, md)), "RESUME reaches all four monitors")
    deadline = time.monotonic() + 20
    while not any("name=ready" in l for l in console) and time.monotonic() < deadline:
        time.sleep(0.02)
    check(any("name=ready" in l for l in console), "the guest runs (probe ready on the console)")

    # query-stats (QEMU's schema): vmm's exit counters, per vCPU and for the VM. The probe wrote its
    # console through port 0x3f8 from vCPU 0.
    vcpus = ma.request("query-stats", {"target": "vcpu", "providers": [{"provider": "vmm"}]})["return"]
    check([r["qom-path"] for r in vcpus] == ["/machine/unattached/device[0]", "/machine/unattached/device[1]"]
          and all(r["provider"] == "vmm" for r in vcpus), f"query-stats vcpu: one vmm entry per vCPU ({vcpus})")
    cpu0 = {s["name"]: s["value"] for s in vcpus[0]["stats"]}
    check(cpu0.get("io_exits_port_0x3f8", 0) > 0 and cpu0["exits"] >= cpu0["io_exits"] >= cpu0["io_exits_port_0x3f8"],
          f"vCPU 0 counted its console exits ({cpu0})")
    whole = ma.request("query-stats", {"target": "vm", "providers": [{"provider": "vmm", "names": ["exits"]}]})["return"]
    both = ma.request("query-stats", {"target": "vcpu"})["return"]
    check([r["provider"] for r in both] == ["kvm", "kvm", "vmm", "vmm"], f"without providers: kvm's then vmm's, QEMU's order")
    check(len(whole) == 1 and "qom-path" not in whole[0] and [s["name"] for s in whole[0]["stats"]] == ["exits"]
          and whole[0]["stats"][0]["value"] >= cpu0["exits"], f"query-stats vm, filtered by name ({whole})")
    # The kvm provider: KVM's own statistics (every exit, also those the kernel handles), as QEMU.
    kvm = ma.request("query-stats", {"target": "vcpu", "providers": [{"provider": "kvm", "names": ["exits", "io_exits"]}],
                                     "vcpus": ["/machine/unattached/device[0]"]})["return"]
    kvm0 = {s["name"]: s["value"] for s in kvm[0]["stats"]} if len(kvm) == 1 else {}
    check(kvm and kvm[0]["provider"] == "kvm" and set(kvm0) == {"exits", "io_exits"} and kvm0["exits"] >= 1,
          f"query-stats kvm for vCPU 0: KVM counted exits ({kvm})")
    kvm_vm = ma.request("query-stats", {"target": "vm", "providers": [{"provider": "kvm"}]})["return"]
    check(len(kvm_vm) == 1 and kvm_vm[0]["provider"] == "kvm" and kvm_vm[0]["stats"], f"query-stats kvm for the VM ({kvm_vm})")
    bad_target = ma.request("query-stats", {"target": "disk"})
    check(bad_target.get("error", {}).get("class") == "GenericError", f"query-stats refuses an unknown target ({bad_target})")

    # Bad clients, one after another, while monitor A keeps working.
    bad = QmpClient.connect(a)
    bad.send_raw(b'{"execute": "query-status"')  # unterminated, then garbage closing it
    bad.send_raw(b' ]}\r\n')
    reply = bad.read_message()
    check(reply and reply.get("error", {}).get("class") == "GenericError", f"malformed JSON gets GenericError ({reply})")
    check(bad.request("query-kvm") == {"return": {"enabled": True, "present": True}}, "the same client works afterwards")
    # One MiB over QEMU's 64 MiB limit. The worker lexes all of it: 2-3 minutes under ASan in an
    # emulated L1, more when that L1 shares its host: a generous hang guard.
    bad.send_raw(b'{"execute": "query-status", "id": "huge", "arguments": {"x": "' + b"a" * (65 << 20) + b'"}}\r\n',
                 timeout=480)
    reply = bad.read_message(timeout=240)
    check(reply is None or "error" in reply, f"a 65 MiB message is refused ({str(reply)[:120]})")
    check(rss_kib(proc.pid) < 200 * 1024, f"worker RSS stays bounded after it ({rss_kib(proc.pid)} KiB)")
    check(ma.request("query-status")["return"]["status"] == "running", "monitor A unaffected")

    flood = QmpClient.connect(b)
    payload = b'{"execute": "query-status"}\r\n' * 100000

    def send_flood():
        try:
            flood.send_raw(payload, timeout=30)
        except OSError:
            pass

    sender = threading.Thread(target=send_flood, daemon=True)
    sender.start()
    time.sleep(1.0)
    # Answered at all while the flood is unread: a worker that blocked on the flooding client would
    # never answer (the request times out). No bound on how soon: ASan in an emulated L1 takes
    # seconds to get through the flood it has read.
    start = time.monotonic()
    status = ma.request("query-status", timeout=60)
    check(status["return"]["running"], f"a flooding client that never reads does not stall others "
          f"(answered in {time.monotonic() - start:.1f} s)")
    check(rss_kib(proc.pid) < 200 * 1024, f"worker RSS bounded under the flood ({rss_kib(proc.pid)} KiB)")
    flood.close()

    leaver = QmpClient.connect(c)
    leaver.send_raw(b'{"execute": "query-cpus-fast"}\r\n')
    leaver.close()
    check(mc.request("query-status")["return"]["running"], "a client leaving mid-command harms nothing")

    # The power button: POWERDOWN, the probe powers off, SHUTDOWN and (-no-shutdown) STOP.
    check(ma.request("system_powerdown") == {"return": {}}, "system_powerdown")
    shutdown = event(mb, "SHUTDOWN")
    check(shutdown and shutdown["data"] == {"guest": True, "reason": "guest-shutdown"}, f"SHUTDOWN guest-shutdown ({shutdown})")
    check(event(mb, "STOP") is not None, "STOP after the guest's power-off with -no-shutdown")
    check(mc.request("query-status")["return"]["status"] == "shutdown", "status shutdown, process kept")
    reply = mc.request("cont")
    check(reply.get("error", {}).get("desc") == "Resetting the Virtual Machine is required", "cont refused after shutdown")
    check(ma.request("quit") == {"return": {}}, "quit answered")
    check(proc.wait(timeout=20) == 0, "quit exits 0")
    # VMM_EXIT_STATS: the counters at exit, in HMP `info stats` shape, per vCPU and for the VM.
    dump = open(exit_stats).read() if os.path.exists(exit_stats) else ""
    check(dump.startswith("vcpu /machine/unattached/device[0]\n  provider: vmm\n    exits (cumulative): ")
          and "\nvm\n  provider: vmm\n" in dump and "io_exits_port_0x3f8 (cumulative): " in dump,
          f"VMM_EXIT_STATS written at exit ({dump[:300]!r})")
    check(not os.path.exists(a) and os.path.exists(d), "the worker removes the sockets it bound, not the passed one")

print(f"{len(failures)} failed")
sys.exit(1 if failures else 0)
