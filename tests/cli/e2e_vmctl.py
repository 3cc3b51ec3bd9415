#!/usr/bin/env python3
"""End-to-end tests of vmctl against a real vmmd, vmm workers and probe guests.

usage: e2e_vmctl.py SCENARIO   (lifecycle, parallel, errors, libvirt_xml, firmware_definition, stdio_bridge)"""
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "daemon"))
from vmmd_harness import VMCTL, VMM, check, probe_definition, scenario_main, wait_until  # noqa: E402


def vmctl(d, *args, stdin=None, timeout=60):
    p = subprocess.run([VMCTL, "--socket", d.socket, *args], input=stdin, capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def ok(d, *args):
    rc, out, err = vmctl(d, *args)
    check(rc == 0, f"vmctl {' '.join(args)} -> {rc}: {err}")
    return out


def write_def(d, name, **extra):
    path = os.path.join(d.tmp, name + ".json")
    with open(path, "w") as f:
        json.dump(probe_definition(name, **extra), f)
    return path


def scenario_lifecycle(d):
    d.start()
    out = ok(d, "define", write_def(d, "web1", vcpus=2))
    check("defined web1" in out, out)
    check("started" in ok(d, "start", "web1"), "start output")
    table = ok(d, "list").splitlines()
    check(table[0].split() == ["NAME", "STATE", "VCPUS", "MEMORY", "UPTIME", "IPV4"], table[0])
    row = table[1].split()
    check(row[:4] == ["web1", "running", "2", "64"], f"list row {row}")
    listed = json.loads(ok(d, "list", "--json"))
    check(listed[0]["name"] == "web1" and listed[0]["state"] == "running", listed)
    # The console (through vmmd's relay) shows the guest's marker even though it printed before we attached.
    con = subprocess.Popen([VMCTL, "--socket", d.socket, "console", "web1"], stdin=subprocess.PIPE,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    seen = b""
    deadline = time.monotonic() + 20
    os.set_blocking(con.stdout.fileno(), False)
    while b"PROBE name=ready" not in seen and time.monotonic() < deadline:
        chunk = con.stdout.read()
        if chunk:
            seen += chunk
        else:
            time.sleep(0.05)
    check(b"PROBE name=ready" in seen, f"console output: {seen!r}")
    # Ctrl-] detaches with exit code 0, and the guest keeps running.
    con.stdin.write(b"\x1d")
    con.stdin.flush()
    check(con.wait(5) == 0, "console did not detach on Ctrl-]")
    info = json.loads(ok(d, "info", "web1", "--json"))
    check(info["state"] == "running" and info["vcpus"] == 2, info)
    status = json.loads(ok(d, "qmp", "web1", '{"execute": "query-status"}'))
    check(status["status"] == "running", status)
    ok(d, "pause", "web1")
    check(json.loads(ok(d, "info", "web1", "--json"))["state"] == "paused", "paused")
    ok(d, "resume", "web1")
    # An events listener sees the shutdown's state changes.
    ev = subprocess.Popen([VMCTL, "--socket", d.socket, "events"], stdout=subprocess.PIPE, text=True)
    time.sleep(0.3)
    out = ok(d, "shutdown", "web1", "--timeout", "20")
    check("web1 shut off" in out, out)
    check(json.loads(ok(d, "info", "web1", "--json"))["state"] == "shut-off", "state after shutdown")
    time.sleep(0.2)
    ev.terminate()
    events = ev.communicate(5)[0]
    check("web1 shutting-down" in events and "web1 shut-off" in events, f"events: {events!r}")
    # shutdown --force on a guest that ignores the power button ("idle" mode) destroys it after the timeout.
    ok(d, "define", write_def(d, "deaf", cmdline="nochecks idle"))
    ok(d, "start", "deaf")
    rc, out, err = vmctl(d, "shutdown", "deaf", "--timeout", "1")
    check(rc == 1 and "VM 'deaf' did not power off within 1 s" in err, f"{rc} {err}")
    out = ok(d, "shutdown", "deaf", "--timeout", "1", "--force")
    check("destroyed after the shutdown timeout" in out, out)
    ok(d, "undefine", "deaf")
    check("deaf" not in ok(d, "list"), "undefined VM still listed")


def scenario_parallel(d):
    """20 vmctl processes at once: defines, starts, lists and infos all answered correctly."""
    d.start()
    paths = [write_def(d, f"par{i:02d}") for i in range(20)]

    def one(i):
        rc, _, err = vmctl(d, "define", paths[i])
        if rc:
            return f"define {i}: {err}"
        for args in (("list", "--json"), ("info", f"par{i:02d}", "--json")):
            rc, out, err = vmctl(d, *args)
            if rc:
                return f"{args}: {err}"
            json.loads(out)
        return None

    with ThreadPoolExecutor(20) as pool:
        errors = [e for e in pool.map(one, range(20)) if e]
    check(not errors, errors)
    check(len(json.loads(ok(d, "list", "--json"))) == 20, "not 20 VMs defined")
    # Five guests started by five concurrent vmctl processes, then listed by 20 at once.
    with ThreadPoolExecutor(5) as pool:
        results = list(pool.map(lambda i: vmctl(d, "start", f"par{i:02d}"), range(5)))
    check(all(r[0] == 0 for r in results), results)
    with ThreadPoolExecutor(20) as pool:
        lists = list(pool.map(lambda _: vmctl(d, "list", "--json"), range(20)))
    for rc, out, err in lists:
        check(rc == 0, err)
        states = {vm["name"]: vm["state"] for vm in json.loads(out)}
        check(sum(s == "running" for s in states.values()) == 5, states)
    with ThreadPoolExecutor(5) as pool:
        results = list(pool.map(lambda i: vmctl(d, "destroy", f"par{i:02d}"), range(5)))
    check(all(r[0] == 0 for r in results), results)


def scenario_errors(d):
    # vmmd not running: exit code 3 and the socket named.
    rc, _, err = vmctl(d, "list")
    check(rc == 3 and d.socket in err, f"{rc} {err}")
    d.start()
    rc, _, err = vmctl(d, "info", "ghost")
    check(rc == 1 and err.strip() == "vmctl: VM 'ghost' is not defined", f"{rc} {err!r}")
    rc, _, err = vmctl(d, "start", "ghost")
    check(rc == 1 and "VM 'ghost' is not defined" in err, err)
    path = write_def(d, "dup")
    ok(d, "define", path)
    rc, _, err = vmctl(d, "define", path)
    check(rc == 1 and "VM 'dup' is already defined" in err, err)
    rc, _, err = vmctl(d, "define", write_def(d, "nok", kernel="/no/such/kernel"))
    check(rc == 1 and "VM 'nok': kernel: /no/such/kernel: No such file or directory" in err, err)
    bad = os.path.join(d.tmp, "bad.json")
    with open(bad, "w") as f:
        f.write('{"schema": 1, "name": ')
    rc, _, err = vmctl(d, "define", bad)
    check(rc == 4 and "not valid JSON" in err, f"{rc} {err}")
    rc, _, err = vmctl(d, "define", "-", stdin='{"schema": 1, "name": "m", "memory": 1, "kernel": "/x"}')
    check(rc == 1 and "memory" in err, f"{rc} {err}")
    rc, _, err = vmctl(d, "define", os.path.join(d.tmp, "missing.json"))
    check(rc == 4 and "missing.json" in err, f"{rc} {err}")
    for args in (("frobnicate",), ("start",), ("shutdown", "dup", "--timeout", "soon"), ("qmp", "dup", "{nope"), ()):
        rc, _, err = vmctl(d, *args)
        check(rc == 2 and err.startswith("vmctl: "), f"{args}: {rc} {err}")
    rc, _, err = vmctl(d, "console", "dup")
    check(rc == 1 and "VM 'dup' has no console" in err, f"{rc} {err}")
    rc, _, err = vmctl(d, "qmp", "dup", '{"execute": "query-status"}')
    check(rc == 1 and "VM 'dup' is not running" in err, f"{rc} {err}")
    rc, out, _ = vmctl(d, "--help")
    check(rc == 0 and "Exit codes" in out, "help")


def xml_round_trip(d, name, xml, definition):
    """libvirt's schema accepts `xml` (vmctl dumpxml NAME); the VM undefined and defined again from
    it has `definition` again."""
    xml_path = os.path.join(d.tmp, name + ".xml")
    with open(xml_path, "w") as f:
        f.write(xml)
    # libvirt's own schema (libvirt-clients): fails when the tool is missing under CI=true.
    validate = subprocess.run(["virt-xml-validate", xml_path, "domain"], capture_output=True, text=True)
    check(validate.returncode == 0, f"virt-xml-validate: {validate.stdout}{validate.stderr}")
    ok(d, "undefine", name)
    check(f"defined {name}" in ok(d, "define", xml_path), "define from XML")
    check(json.loads(ok(d, "info", name, "--json"))["definition"] == definition, "XML round trip changed the definition")


def scenario_libvirt_xml(d):
    """vmctl dumpxml writes libvirt XML that libvirt's schema accepts; vmctl define takes it back
    as the same definition, and the VM it defines runs; bad XML is refused naming the element."""
    d.start()
    ok(d, "define", write_def(d, "x1", vcpus=2, agent=True, autostart=True))
    original = json.loads(ok(d, "info", "x1", "--json"))["definition"]
    xml = ok(d, "dumpxml", "x1")
    check(xml.startswith("<domain type=\"kvm\"") or xml.startswith("<domain type='kvm'"), xml[:80])
    check(os.path.abspath(VMM) in xml, "emulator path missing from dumpxml")
    xml_round_trip(d, "x1", xml, original)
    ok(d, "undefine", "x1")
    # The imported definition runs (the agent port is there; the probe answers no agent).
    xml_run = xml.replace("<name>x1</name>", "<name>x2</name>")
    xml_run = "\n".join(line for line in xml_run.splitlines() if "<uuid>" not in line)
    rc, out, err = vmctl(d, "define", "-", stdin=xml_run)
    check(rc == 0 and "defined x2" in out, f"{rc} {out} {err}")
    check("started" in ok(d, "start", "x2"), "start of an XML-defined VM")
    check(json.loads(ok(d, "info", "x2", "--json"))["state"] == "running", "x2 not running")
    ok(d, "destroy", "x2")
    # Refusals name the element; malformed XML its line.
    bad = xml.replace("</devices>", "<graphics type='vnc'/></devices>").replace("<name>x1</name>", "<name>x3</name>")
    rc, _, err = vmctl(d, "define", "-", stdin=bad)
    check(rc == 1 and "/domain/devices/graphics" in err, f"{rc} {err}")
    rc, _, err = vmctl(d, "define", "-", stdin="<domain type='kvm'><name>x4</name>")
    check(rc == 1 and "line" in err, f"{rc} {err}")
    rc, _, err = vmctl(d, "dumpxml", "ghost")
    check(rc == 1 and "VM 'ghost' is not defined" in err, f"{rc} {err}")


def scenario_firmware_definition(d):
    """A definition without a kernel boots through firmware from its disks: vmctl info says how,
    dumpxml puts <boot order> on the disk (libvirt's schema accepts it) and imports back to the same
    definition; a boot order naming no disk is refused naming the field. Starts no guest (the
    firmware boot itself is the nested tier's: tests/nested/firmware.sh)."""
    d.start()
    images = []
    for name in ("data.raw", "system.qcow2"):
        images.append(os.path.join(d.tmp, name))
    with open(images[0], "wb") as f:
        f.truncate(1 << 20)
    # vm-define opens each disk as its owner and reads a qcow2's header (its backing chain).
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", images[1], "1M"], check=True)
    definition = {"schema": 1, "name": "fw1", "memory": 128,
                  "disks": [{"path": images[0], "format": "raw"}, {"id": "root", "path": images[1], "format": "qcow2"}],
                  "boot": {"firmware": "bios", "order": ["root"]}}
    path = os.path.join(d.tmp, "fw1.json")
    with open(path, "w") as f:
        json.dump(definition, f)
    check("defined fw1" in ok(d, "define", path), "define without a kernel")
    check("firmware bios from root" in ok(d, "info", "fw1"), "vmctl info shows the boot")
    info = json.loads(ok(d, "info", "fw1", "--json"))
    check(info["boot"] == "firmware bios from root", info)
    check(info["definition"]["boot"] == {"firmware": "bios", "order": ["root"]} and "kernel" not in info["definition"],
          info["definition"])
    xml = ok(d, "dumpxml", "fw1")
    check("<boot order=\"1\"/>" in xml and "<kernel>" not in xml, xml)
    xml_round_trip(d, "fw1", xml, info["definition"])
    definition.update(name="fw2", boot={"order": ["cdrom"]})
    with open(path, "w") as f:
        json.dump(definition, f)
    rc, _, err = vmctl(d, "define", path)
    check(rc == 1 and "boot.order[0]: no disk with id 'cdrom'" in err, f"{rc} {err}")


def scenario_stdio_bridge(d):
    """vmctl stdio-bridge carries a QMP conversation with vmmd (what a migration's source runs on
    the destination through ssh): the requests written before stdin ends are answered, the end of
    stdin reaches vmmd as a half-close, and the bridge ends when vmmd closes. Starts no guest."""
    c = d.start()
    c.execute("vm-define", {"definition": probe_definition("b1")})
    requests = '{"execute": "qmp_capabilities"}\n{"execute": "vm-list", "id": 7}\n'
    p = subprocess.run([VMCTL, "--socket", d.socket, "stdio-bridge"], input=requests, capture_output=True, text=True, timeout=30)
    check(p.returncode == 0, f"stdio-bridge -> {p.returncode}: {p.stderr}")
    replies = [json.loads(line) for line in p.stdout.splitlines() if line.strip()]
    check(len(replies) == 3 and "QMP" in replies[0] and replies[1] == {"return": {}}, f"bridge output: {p.stdout}")
    check(replies[2]["id"] == 7 and [vm["name"] for vm in replies[2]["return"]] == ["b1"], f"vm-list through the bridge: {replies[2]}")
    # A request bigger than one read and one socket buffer arrives whole (vmmd parses all of it
    # and answers about its content).
    big = json.dumps({"execute": "vm-define", "arguments": {"definition": probe_definition("b2", cmdline="x " * 60000)}})
    p = subprocess.run([VMCTL, "--socket", d.socket, "stdio-bridge"], input='{"execute": "qmp_capabilities"}\n' + big + "\n",
                       capture_output=True, text=True, timeout=30)
    last = p.stdout.splitlines()[-1] if p.stdout else ""
    check(p.returncode == 0 and "cmdline: must be at most 2047 bytes" in last, f"a 120 KB request: {p.returncode} {last} {p.stderr}")
    rc, _, err = vmctl(d, "--socket", os.path.join(d.tmp, "nothing.sock"), "stdio-bridge")
    check(rc == 3 and "stdio-bridge: cannot connect to" in err, f"missing socket: {rc} {err}")
    rc, _, err = vmctl(d, "stdio-bridge", "extra")
    check(rc == 2 and "usage: vmctl [--socket PATH] stdio-bridge" in err, f"usage: {rc} {err}")


def main():
    return scenario_main(globals(), __doc__, without_kvm=("firmware_definition", "stdio_bridge"))


if __name__ == "__main__":
    sys.exit(main())
