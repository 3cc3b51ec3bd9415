#!/usr/bin/env python3
"""VMs with NICs on vmmd's networks, end to end: the real vmmd (its NetworkManager: bridge, nftables,
dnsmasq), real vmm workers and probe guests, vmctl.

usage: e2e_network_vms.py SCENARIO
  nics     net-start default; a VM with {"network": "default"}: its tap made at start, on the
           bridge, up, held by the worker (-netdev tap,fd=N); vmctl list/info show the network and
           MAC, then the address once dnsmasq has leased it (to a veth client in another namespace
           running udhcpc with the VM's MAC: the probe guest has no DHCP client); the tap gone after
           vm-destroy and after a SIGKILL of the worker; net-stop of a network in use refused naming
           the VM; a start on an inactive network refused naming the NIC and the network; an
           unknown network refused at define; the static lease released at undefine
  agent    the address from the guest agent (guest-network-get-interfaces; source "agent"), the
           real qemu-ga standing at the VM's agent socket
  restart  vmmd killed with SIGKILL and started again: the worker is re-attached with its tap
           (which lives with the worker), and the tap goes when the VM is destroyed after that
Needs root, /dev/kvm (label kvm), unshare, nsenter, ip, dnsmasq, busybox (udhcpc) and qemu-ga: it runs in
a fresh network namespace (it re-executes itself under unshare --net), so the host's links
are never touched."""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e_network import Client  # noqa: E402
from vmmd_harness import (VMCTL, QmpError, cannot_run, check, console_log, probe_definition,  # noqa: E402
                          require_kvm, scenario_main, state_of, wait_until)

BRIDGE = "vmmdbr0"  # the default network's, as libvirt's virbr0
MAC = "52:54:00:4e:00:01"
INNER = "VMMD_NETWORK_VMS_NETNS"


def ip_json(*args):
    out = subprocess.run(["ip", "-j", "-d", *args], capture_output=True, text=True, check=True).stdout
    return json.loads(out) if out.strip() else []


def taps_on_bridge():
    """Names of the tun/tap links enslaved to the default network's bridge, and whether each is up."""
    return {link["ifname"]: "UP" in link.get("flags", [])
            for link in ip_json("link", "show", "master", BRIDGE)
            if link.get("linkinfo", {}).get("info_kind") == "tun"}


def link_exists(name):
    return subprocess.run(["ip", "link", "show", "dev", name], capture_output=True).returncode == 0


def worker_taps(pid):
    """The taps the process holds open (/dev/net/tun fds; fdinfo names the interface)."""
    names = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") != "/dev/net/tun":
                continue
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                m = re.search(r"^iff:\s*(\S+)", f.read(), re.M)
        except OSError:
            continue
        if m:
            names.append(m.group(1))
    return names


def vmctl(d, *args):
    p = subprocess.run([VMCTL, "--socket", d.socket, *args], capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


def ok(d, *args):
    rc, out, err = vmctl(d, *args)
    check(rc == 0, f"vmctl {' '.join(args)} -> {rc}: {err}")
    return out


def error_of(c, command, args):
    try:
        c.execute(command, args)
    except QmpError as e:
        return e.desc
    raise AssertionError(f"{command} {args} was accepted")


def start_running(d, c, name):
    c.execute("vm-start", {"name": name})
    wait_until(lambda: "PROBE name=ready" in console_log(d, name), 20, f"{name} ready")
    return c.execute("vm-info", {"name": name})["pid"]


def the_new_tap(before):
    taps = taps_on_bridge()
    new = [t for t in taps if t not in before]
    check(len(new) == 1, f"one new tap on {BRIDGE} expected: {taps} (before: {before})")
    check(taps[new[0]], f"tap {new[0]} is not up")
    return new[0]


def define_on_default(c, name, **extra):
    c.execute("vm-define", {"definition": probe_definition(name, nics=[{"network": "default", "mac": MAC}], **extra)})


def scenario_nics(d):
    c = d.start()
    # Defined on first start, as libvirt's default network.
    c.execute("net-start", {"name": "default"})
    err = error_of(c, "vm-define", {"definition": probe_definition("x", nics=[{"network": "nope"}])})
    check("nics[0].network" in err and "'nope'" in err, err)
    err = error_of(c, "vm-define", {"definition": probe_definition("x", nics=[{"network": "default", "ifname": "t0"}])})
    check("nics[0].network: cannot be combined with ifname" in err, err)
    define_on_default(c, "n1")
    info = c.execute("vm-info", {"name": "n1"})
    check(info["nics"] == [{"mac": MAC, "network": "default"}], info["nics"])

    before = taps_on_bridge()
    pid = start_running(d, c, "n1")
    tap = the_new_tap(before)
    check(worker_taps(pid) == [tap], f"worker {pid} holds taps {worker_taps(pid)}, not [{tap}]")
    argv = open(f"/proc/{pid}/cmdline").read().split("\0")
    check(any(re.fullmatch(r"tap,id=net0,fd=\d+", a) for a in argv), f"no -netdev tap,fd=N in {argv}")
    check(f"virtio-net-pci,netdev=net0,mac={MAC}" in argv, argv)

    # Before any lease: the network, MAC and tap, no address.
    listed = json.loads(ok(d, "list", "--json"))
    check(listed[0]["nics"] == [{"mac": MAC, "network": "default", "tap": tap}], listed)
    table = ok(d, "list").splitlines()
    check(table[0].split()[-1] == "IPV4" and table[1].split()[-1] == "-", table)
    check(re.search(rf"^nic0:\s+{MAC} network default \(tap {tap}\)$", ok(d, "info", "n1"), re.M), ok(d, "info", "n1"))

    # A DHCP client with the VM's MAC in its own namespace, on the bridge through a veth pair:
    # dnsmasq gives it the VM's static lease, as it would the guest.
    client = Client(BRIDGE, MAC, "n1")
    try:
        address = client.dhcp("n1")
    finally:
        client.close()
    static = {lease["mac"]: lease["ipv4"] for lease in c.execute("net-info", {"name": "default"})["static_leases"]}
    check(static.get(MAC) == address, f"leased {address}, static leases {static}")
    wait_until(lambda: c.execute("vm-info", {"name": "n1"})["nics"][0].get("ipv4") == address, 10, "address in vm-info")
    nic = c.execute("vm-info", {"name": "n1"})["nics"][0]
    check(nic == {"mac": MAC, "network": "default", "tap": tap, "ipv4": address, "source": "dhcp-lease"}, nic)
    check(json.loads(ok(d, "list", "--json"))[0]["nics"][0]["ipv4"] == address, "vmctl list --json")
    check(ok(d, "list").splitlines()[1].split()[-1] == address, ok(d, "list"))
    check(re.search(rf"^nic0:\s+{MAC} network default \(tap {tap}\) {re.escape(address)} \(dhcp-lease\)$",
                    ok(d, "info", "n1"), re.M),
          ok(d, "info", "n1"))

    # A network in use stays up.
    err = error_of(c, "net-stop", {"name": "default"})
    check("n1" in err, err)

    c.execute("vm-destroy", {"name": "n1"})
    wait_until(lambda: not link_exists(tap), 5, f"tap {tap} removed after vm-destroy")
    check(c.execute("vm-info", {"name": "n1"})["nics"] == [{"mac": MAC, "network": "default"}], "no address while off")

    # A crash: the tap goes with the worker.
    before = taps_on_bridge()
    pid = start_running(d, c, "n1")
    tap = the_new_tap(before)
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: state_of(c, "n1") != "running", 10, "n1 noticed dead")
    wait_until(lambda: not link_exists(tap), 5, f"tap {tap} removed after the worker's SIGKILL")
    check(not taps_on_bridge(), f"taps left on the bridge: {taps_on_bridge()}")

    # On an inactive network a start fails, naming the NIC and the network.
    c.execute("net-stop", {"name": "default"})
    err = error_of(c, "vm-start", {"name": "n1"})
    check("nics[0]" in err and "default" in err and "not active" in err, err)
    check(state_of(c, "n1") == "shut-off", state_of(c, "n1"))

    # Undefine gives the static lease back.
    c.execute("net-start", {"name": "default"})
    c.execute("vm-undefine", {"name": "n1"})
    statics = c.execute("net-info", {"name": "default"})["static_leases"]
    check(all(lease["mac"] != MAC for lease in statics), statics)


def scenario_agent(d):
    """The guest agent's word wins over the leases: the real qemu-ga (on the host, in this
    namespace, where a veth link has the VM's MAC and an address) stands at the VM's agent socket."""
    c = d.start()
    c.execute("net-start", {"name": "default"})
    define_on_default(c, "a1", agent=True)
    before = taps_on_bridge()
    start_running(d, c, "a1")
    tap = the_new_tap(before)
    for args in (["link", "add", "agentd0", "type", "veth", "peer", "name", "agentd1"],
                 ["link", "set", "agentd0", "address", MAC, "up"],
                 ["addr", "add", "10.77.0.5/24", "dev", "agentd0"]):
        subprocess.run(["ip", *args], check=True)
    qga_socket = os.path.join(d.run, "vms", "a1", "qga.sock")
    os.unlink(qga_socket)  # the worker's listener (its guest has no agent) leaves the path to qemu-ga
    qga_state = os.path.join(d.tmp, "qga-state")
    os.makedirs(qga_state)
    agent = subprocess.Popen([shutil.which("qemu-ga") or "/usr/sbin/qemu-ga", "-m", "unix-listen", "-p", qga_socket,
                              "-t", qga_state, "-l", os.path.join(d.tmp, "qga.log")])
    try:
        wait_until(lambda: os.path.exists(qga_socket), 10, "qemu-ga listening")
        # Any agent command makes the channel; vm-info then asks the agent in the background.
        wait_until(lambda: vmctl(d, "agent", "a1", '{"execute": "guest-ping"}')[0] == 0, 20, "agent answering")
        want = {"mac": MAC, "network": "default", "tap": tap, "ipv4": "10.77.0.5", "source": "agent"}
        wait_until(lambda: c.execute("vm-info", {"name": "a1"})["nics"] == [want], 20, "the agent's address in vm-info")
        check(json.loads(ok(d, "list", "--json"))[0]["nics"] == [want], "vmctl list --json")
        check(re.search(rf"^nic0:\s+{MAC} network default \(tap {tap}\) 10\.77\.0\.5 \(agent\)$", ok(d, "info", "a1"), re.M),
              ok(d, "info", "a1"))
    finally:
        agent.kill()
        agent.wait()


def scenario_restart(d):
    c = d.start()
    c.execute("net-start", {"name": "default"})
    define_on_default(c, "r1")
    before = taps_on_bridge()
    pid = start_running(d, c, "r1")
    tap = the_new_tap(before)
    d.kill9()
    check(link_exists(tap) and worker_taps(pid) == [tap], "the tap lives with the worker while vmmd is down")
    c = d.start()
    wait_until(lambda: state_of(c, "r1") == "running", 20, "r1 re-attached")
    info = c.execute("vm-info", {"name": "r1"})
    check(info["pid"] == pid, f"re-attached to {info.get('pid')}, not {pid}")
    # Its tap found again (the worker's argv and fds).
    check(info["nics"] == [{"mac": MAC, "network": "default", "tap": tap}], info["nics"])
    check(taps_on_bridge() == {tap: True}, taps_on_bridge())
    err = error_of(c, "net-stop", {"name": "default"})
    check("r1" in err, f"the users query after a restart: {err}")
    c.execute("vm-destroy", {"name": "r1"})
    wait_until(lambda: not link_exists(tap), 5, f"tap {tap} removed after vm-destroy")


def in_fresh_namespace():
    """Re-executes this script as root in a new network namespace (lo up); returns its exit
    status. None when already there."""
    if os.environ.get(INNER) == "1":
        return None
    if os.geteuid() != 0:
        return cannot_run("needs root: it makes a network namespace with a bridge, dnsmasq and taps")
    for tool in ("unshare", "nsenter", "ip", "busybox", "qemu-ga"):
        if not shutil.which(tool):
            return cannot_run(f"needs {tool}")
    if not os.path.exists("/usr/sbin/dnsmasq"):
        return cannot_run("needs dnsmasq (Debian package dnsmasq-base)")
    if (status := require_kvm()) is not None:
        return status
    env = dict(os.environ, **{INNER: "1"})
    return subprocess.run(["unshare", "--net", "sh", "-c", 'ip link set lo up && exec "$@"', "sh", sys.executable,
                           os.path.abspath(__file__), *sys.argv[1:]], env=env).returncode


if __name__ == "__main__":
    status = in_fresh_namespace()
    sys.exit(status if status is not None else scenario_main(globals(), __doc__))
