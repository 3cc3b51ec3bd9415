#!/usr/bin/env python3
"""End to end, host level (no KVM): vmmd's networks in a fresh network namespace, as root.

Each scenario re-runs itself under `unshare -n` (nothing it does reaches the host's network) and
drives the real vmmd through vmctl and its control socket; it checks the host with `ip -j`,
`nft -j list ruleset` and /proc, and DHCP/DNS with busybox's udhcpc and nslookup in a second
namespace joined to the bridge by a veth pair.

  lifecycle  net-start default (defined on the fly), bridge + address, NAT table, dnsmasq,
             a DHCP lease and a DNS answer to a client, net-info's leases; net-stop removes it all
  isolated   an isolated network: forwarding dropped, no masquerade; mode bridge on an
             operator's bridge: nothing created, nothing removed
  kill9      vmmd killed with SIGKILL and restarted: dnsmasq re-adopted, exactly one; a dnsmasq
             killed behind vmmd's back is restarted (at most 5 times in 60 s); autostart networks come up with vmmd
  errors     non-root callers refused, malformed JSON, fields named in errors, overlapping subnets (defined networks, host
             addresses), a taken bridge name (another network's, a host link), undefine/start of
             an active network, bad names, unknown networks
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vmmd_harness import VMCTL, QmpError, cannot_run, check, wait_until, with_daemon  # noqa: E402
from vmmd_testlib.process import live_processes  # noqa: E402

BUSYBOX = shutil.which("busybox") or "/bin/busybox"
DNSMASQ = "/usr/sbin/dnsmasq"


def sh(*argv, check_rc=True):
    r = subprocess.run(list(argv), capture_output=True, text=True)
    if check_rc and r.returncode != 0:
        raise AssertionError("%s failed (%d): %s%s" % (" ".join(argv), r.returncode, r.stdout, r.stderr))
    return r


def vmctl(d, *args, rc=0):
    r = subprocess.run([VMCTL, "--socket", d.socket] + list(args), capture_output=True, text=True)
    check(r.returncode == rc, "vmctl %s: exit %d (wanted %d): %s%s" % (" ".join(args), r.returncode, rc, r.stdout, r.stderr))
    return r


def define(d, doc):
    path = os.path.join(d.tmp, "net-%s.json" % doc.get("name", "x"))
    with open(path, "w") as f:
        f.write(doc if isinstance(doc, str) else json.dumps(doc))
    return vmctl(d, "net-define", path)


def link(name):
    r = sh("ip", "-j", "addr", "show", "dev", name, check_rc=False)
    return json.loads(r.stdout)[0] if r.returncode == 0 else None


def ruleset():
    return json.loads(sh("nft", "-j", "list", "ruleset").stdout)["nftables"]


def tables():
    return {x["table"]["name"] for x in ruleset() if "table" in x}


def rules_of(table):
    return [x["rule"] for x in ruleset() if "rule" in x and x["rule"]["table"] == table]


def dnsmasq_pids(d, network):
    conf = "--conf-file=%s/networks/%s/dnsmasq.conf" % (d.state, network)
    return [pid for pid, argv in live_processes() if conf.encode() in argv]


def net_info(d, name):
    return json.loads(vmctl(d, "net-info", name, "--json").stdout)


class Client:
    """A second network namespace (a sleeping `unshare -n` process) with one end of a veth pair;
    the other end is a port of `bridge`."""

    def __init__(self, bridge, mac, tag):
        self.proc = subprocess.Popen(["unshare", "-n", "sleep", "120"])
        wait_until(lambda: os.readlink("/proc/%d/ns/net" % self.proc.pid) != os.readlink("/proc/self/ns/net"),
                   what="the client's namespace")
        self.host_end = "vh" + tag
        sh("ip", "link", "add", self.host_end, "type", "veth", "peer", "name", "eth0", "netns", str(self.proc.pid))
        sh("ip", "link", "set", self.host_end, "master", bridge, "up")
        self.run("ip", "link", "set", "lo", "up")
        self.run("ip", "link", "set", "eth0", "address", mac, "up")

    def run(self, *argv, check_rc=True):
        return sh("nsenter", "-t", str(self.proc.pid), "-n", *argv, check_rc=check_rc)

    def dhcp(self, hostname):
        # -q: exit once leased; -n: fail when no lease; the script prints the lease's address.
        script = tempfile.NamedTemporaryFile("w", suffix=".sh", delete=False)
        script.write('#!/bin/sh\n[ "$1" = bound ] && echo "leased $ip" || true\n')
        script.close()
        os.chmod(script.name, 0o755)
        try:
            r = self.run(BUSYBOX, "udhcpc", "-f", "-q", "-n", "-t", "10", "-T", "1", "-i", "eth0", "-s", script.name,
                         "-x", "hostname:" + hostname, check_rc=False)
        finally:
            os.unlink(script.name)
        check(r.returncode == 0, "udhcpc got no lease: %s%s" % (r.stdout, r.stderr))
        lines = [line for line in r.stdout.splitlines() if line.startswith("leased ")]
        check(lines, "udhcpc's script did not run: " + r.stdout + r.stderr)
        return lines[-1].split()[1]

    def close(self):
        self.proc.kill()
        self.proc.wait()
        sh("ip", "link", "del", self.host_end, check_rc=False)


def scenario_lifecycle(d):
    d.start()
    vmctl(d, "net-start", "default")
    listed = json.loads(vmctl(d, "net-list", "--json").stdout)
    check([(n["name"], n["state"], n["mode"], n["bridge"], n["subnet"]) for n in listed] ==
          [("default", "active", "nat", "vmmdbr0", "192.168.124.0/24")], "net-list: %r" % listed)
    bridge = link("vmmdbr0")
    check(bridge and "UP" in bridge["flags"], "no bridge vmmdbr0 up: %r" % bridge)
    check(any(a["family"] == "inet" and a["local"] == "192.168.124.1" and a["prefixlen"] == 24 for a in bridge["addr_info"]),
          "vmmdbr0 lacks 192.168.124.1/24: %r" % bridge)
    check(json.loads(sh("ip", "-j", "-d", "link", "show", "vmmdbr0").stdout)[0]["linkinfo"]["info_kind"] == "bridge",
          "vmmdbr0 is not a bridge")
    check("vmmd-default" in tables(), "no nftables table vmmd-default: %r" % tables())
    text = json.dumps(rules_of("vmmd-default"))
    check("masquerade" in text and "192.168.124.0" in text, "no masquerade from the subnet: " + text)
    with open("/proc/sys/net/ipv4/ip_forward") as f:
        check(f.read().strip() == "1", "IPv4 forwarding is off")
    info = net_info(d, "default")
    check(info["state"] == "active" and info["dnsmasq"]["pid"] in dnsmasq_pids(d, "default"), "net-info: %r" % info)
    check(len(dnsmasq_pids(d, "default")) == 1, "dnsmasq processes: %r" % dnsmasq_pids(d, "default"))

    gateway_mac = bridge["address"]
    check(gateway_mac.startswith("52:54:00:"), "the bridge's MAC is not vmmd's: " + gateway_mac)
    client = Client("vmmdbr0", "52:54:00:aa:00:01", "c1")
    try:
        check(link("vmmdbr0")["address"] == gateway_mac, "the bridge's MAC changed when a port joined")
        address = client.dhcp("client1")
        check(address.startswith("192.168.124."), "leased " + address)
        wait_until(lambda: any(x["mac"] == "52:54:00:aa:00:01" and x["ipv4"] == address for x in net_info(d, "default")["leases"]),
                   what="the lease in net-info")
        lease = [x for x in net_info(d, "default")["leases"] if x["mac"] == "52:54:00:aa:00:01"][0]
        check(lease["hostname"] == "client1", "lease: %r" % lease)
        client.run("ip", "addr", "add", address + "/24", "dev", "eth0")
        answer = client.run(BUSYBOX, "nslookup", "client1", "192.168.124.1", check_rc=False)
        check(address in answer.stdout, "dnsmasq's DNS does not know client1: %s%s" % (answer.stdout, answer.stderr))
        human = vmctl(d, "net-info", "default").stdout
        check(address in human and "52:54:00:aa:00:01" in human, "vmctl net-info: " + human)
    finally:
        client.close()

    dnsmasq = info["dnsmasq"]["pid"]
    vmctl(d, "net-stop", "default")
    check(link("vmmdbr0") is None, "vmmdbr0 still exists after net-stop")
    check("vmmd-default" not in tables(), "the NAT table outlived net-stop")
    wait_until(lambda: not dnsmasq_pids(d, "default"), what="dnsmasq's end", timeout=10)
    check(not os.path.exists("/proc/%d" % dnsmasq) or dnsmasq not in dnsmasq_pids(d, "default"), "dnsmasq lives on")
    check(net_info(d, "default")["state"] == "inactive", "net-info after stop")
    vmctl(d, "net-undefine", "default")
    check(json.loads(vmctl(d, "net-list", "--json").stdout) == [], "net-list after undefine")


def scenario_isolated(d):
    d.start()
    define(d, {"name": "lab", "mode": "isolated", "bridge": "vmmdlab0", "domain": "lab.internal",
               "ipv4": {"address": "10.77.0.1", "prefix": 24, "dhcp": {"start": "10.77.0.100", "end": "10.77.0.199"}}})
    vmctl(d, "net-start", "lab")
    text = json.dumps(rules_of("vmmd-lab"))
    check("masquerade" not in text and text.count('"drop"') == 2, "isolated rules: " + text)
    with open(os.path.join(d.state, "networks", "lab", "dnsmasq.conf")) as f:
        conf = f.read()
    for line in ("interface=vmmdlab0", "bind-interfaces", "except-interface=lo", "strict-order", "domain=lab.internal",
                 "dhcp-authoritative", "dhcp-range=10.77.0.100,10.77.0.199,255.255.255.0,1h", "no-resolv"):
        check(line in conf.splitlines(), "dnsmasq.conf lacks %r:\n%s" % (line, conf))
    client = Client("vmmdlab0", "52:54:00:aa:00:02", "c2")
    try:
        address = client.dhcp("labhost")
        check(address.startswith("10.77.0.") and 100 <= int(address.split(".")[3]) <= 199, "leased " + address)
    finally:
        client.close()
    vmctl(d, "net-stop", "lab")
    check(link("vmmdlab0") is None and "vmmd-lab" not in tables(), "isolated network not removed")

    # mode bridge: the operator's bridge is used as it is and left alone.
    sh("ip", "link", "add", "opbr0", "type", "bridge")
    define(d, {"name": "ops", "mode": "bridge", "bridge": "opbr0"})
    vmctl(d, "net-start", "ops")
    info = net_info(d, "ops")
    check(info["state"] == "active" and "dnsmasq" not in info and not info["bridge_created_by_vmmd"], "net-info: %r" % info)
    check("vmmd-ops" not in tables(), "mode bridge made nftables rules")
    vmctl(d, "net-stop", "ops")
    check(link("opbr0") is not None, "net-stop removed the operator's bridge")


def scenario_kill9(d):
    d.start()
    define(d, {"name": "web", "mode": "nat", "bridge": "vmmdweb0",
               "ipv4": {"address": "10.66.0.1", "prefix": 24, "dhcp": {"start": "10.66.0.10", "end": "10.66.0.50"}}})
    define(d, {"name": "boot", "mode": "isolated", "bridge": "vmmdboot0",
               "ipv4": {"address": "10.67.0.1", "prefix": 24}})
    vmctl(d, "net-autostart", "boot")
    vmctl(d, "net-start", "web")
    first = net_info(d, "web")["dnsmasq"]["pid"]
    d.kill9()
    check(dnsmasq_pids(d, "web") == [first], "dnsmasq did not outlive vmmd: %r" % dnsmasq_pids(d, "web"))
    d.start()
    info = net_info(d, "web")
    check(info["state"] == "active" and info["dnsmasq"]["pid"] == first, "not re-adopted: %r" % info)
    check(dnsmasq_pids(d, "web") == [first], "a second dnsmasq: %r" % dnsmasq_pids(d, "web"))
    check("re-adopted its dnsmasq (pid %d)" % first in d.log(), "no re-adoption in the log")
    # The autostart network came up with vmmd.
    check(net_info(d, "boot")["state"] == "active" and link("vmmdboot0"), "autostart network not started")
    check(len(dnsmasq_pids(d, "boot")) == 1, "boot's dnsmasq: %r" % dnsmasq_pids(d, "boot"))

    # A dnsmasq that dies is restarted by vmmd (even one it re-adopted).
    os.kill(first, signal.SIGKILL)
    wait_until(lambda: (net_info(d, "web")["dnsmasq"]["pid"] or first) != first, what="dnsmasq's restart", timeout=10)
    restarted = net_info(d, "web")["dnsmasq"]
    check(restarted["restarts"] == 1 and dnsmasq_pids(d, "web") == [restarted["pid"]], "after the restart: %r" % restarted)
    check("dnsmasq exited" in d.log() and "restarting it" in d.log(), "restart not logged")

    # Restarts are bounded: 5 within 60 s, then vmmd gives up and says so.
    pid = restarted["pid"]
    for _ in range(4):
        os.kill(pid, signal.SIGKILL)
        pid = wait_until(lambda: net_info(d, "web")["dnsmasq"]["pid"] not in (None, pid) and net_info(d, "web")["dnsmasq"]["pid"],
                         what="dnsmasq's restart", timeout=10)
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: net_info(d, "web")["dnsmasq"]["gave_up"], what="vmmd giving up", timeout=10)
    check(net_info(d, "web")["dnsmasq"]["pid"] is None and not dnsmasq_pids(d, "web"), "a sixth dnsmasq")
    check("not restarting it" in d.log(), "giving up not logged")
    # A stop and a start at once: one new dnsmasq, the old one's end changes nothing.
    vmctl(d, "net-stop", "web")
    vmctl(d, "net-start", "web")
    restarted = net_info(d, "web")["dnsmasq"]
    check(restarted["pid"] and not restarted["gave_up"] and dnsmasq_pids(d, "web") == [restarted["pid"]], "after net-start: %r" % restarted)

    # A clean stop and restart of vmmd: same again, and the network stays up.
    d.stop()
    d.start()
    check(dnsmasq_pids(d, "web") == [restarted["pid"]] and net_info(d, "web")["dnsmasq"]["pid"] == restarted["pid"],
          "second re-adoption")
    for name in ("web", "boot"):
        vmctl(d, "net-stop", name)
        wait_until(lambda: not dnsmasq_pids(d, name), what="dnsmasq's end", timeout=10)


def refused(client, command, args, *fragments):
    try:
        client.execute(command, args)
    except QmpError as e:
        for fragment in fragments:
            check(fragment in e.desc, "%s %r: %r lacks %r" % (command, args, e.desc, fragment))
        return
    raise AssertionError("%s %r was accepted" % (command, args))


USER = 4251  # a non-root member of the control socket's group


def as_user(d, *args):
    def become():
        os.setgroups([USER])
        os.setresgid(USER, USER, USER)
        os.setresuid(USER, USER, USER)
    return subprocess.run([VMCTL, "--socket", d.socket] + list(args), capture_output=True, text=True, preexec_fn=become)


def scenario_errors(d):
    d.extra_args = ["--group", str(USER)]
    c = d.start()
    # Networks are root's: a member of the socket's group is refused, naming why.
    for args in (["net-list"], ["net-start", "default"], ["net-info", "default"]):
        r = as_user(d, *args)
        check(r.returncode == 1 and "permission denied" in r.stderr, "%s as uid %d: %d %s%s" % (args, USER, r.returncode, r.stdout, r.stderr))
    check(json.loads(vmctl(d, "net-list", "--json").stdout) == [], "a refused net-start defined something")
    net = {"name": "a", "mode": "nat", "bridge": "vmmda0",
           "ipv4": {"address": "10.50.0.1", "prefix": 16, "dhcp": {"start": "10.50.0.10", "end": "10.50.0.20"}}}
    # vmctl: a file that is not JSON is refused before vmmd.
    bad = os.path.join(d.tmp, "bad.json")
    with open(bad, "w") as f:
        f.write("{not json")
    check("not valid JSON" in vmctl(d, "net-define", bad, rc=4).stderr, "malformed JSON")
    def field(doc, *fragments):
        refused(c, "net-define", {"definition": doc}, *fragments)
    field({"name": "x", "bridge": "b"}, "mode")
    field(dict(net, mode="routed"), "mode", "routed")
    field(dict(net, name="bad name"), "name")
    field(dict(net, name="-x"), "name")
    field(dict(net, ipv4={"address": "10.50.0.300", "prefix": 16}), "ipv4.address")
    field(dict(net, ipv4={"address": "10.50.0.1", "prefix": 31}), "ipv4.prefix")
    field(dict(net, ipv4={"address": "10.50.0.1", "prefix": 24, "dhcp": {"start": "10.51.0.2", "end": "10.50.0.9"}}),
          "ipv4.dhcp.start")
    field(dict(net, ipv4={"address": "10.50.0.1", "prefix": 24, "dhcp": {"start": "10.50.0.9", "end": "10.50.0.2"}}),
          "ipv4.dhcp.end")
    field(dict(net, bridge="a-bridge-name-too-long"), "bridge")
    field(dict(net, extra=1), "extra")
    field({"name": "b", "mode": "bridge", "bridge": "br9", "ipv4": {"address": "10.1.0.1", "prefix": 24}}, "ipv4")
    field({"name": "b", "mode": "nat", "bridge": "br9"}, "ipv4", "required")
    c.execute("net-define", {"definition": net})
    refused(c, "net-define", {"definition": net}, "already defined")
    refused(c, "net-define", {"definition": dict(net, name="b", bridge="vmmdb0",
                                                 ipv4={"address": "10.50.3.1", "prefix": 24})}, "overlaps", "'a'")
    refused(c, "net-define", {"definition": dict(net, name="b", ipv4={"address": "10.60.0.1", "prefix": 24})},
            "vmmda0", "network 'a'")
    refused(c, "net-start", {"name": "nope"}, "not defined")
    refused(c, "net-info", {"name": "nope"}, "not defined")
    refused(c, "net-autostart", {"name": "nope", "enabled": True}, "not defined")
    c.execute("net-start", {"name": "a"})
    refused(c, "net-start", {"name": "a"}, "already active")
    refused(c, "net-undefine", {"name": "a"}, "active")
    c.execute("net-stop", {"name": "a"})
    refused(c, "net-stop", {"name": "a"}, "not active")

    # At start: a host address in the subnet, a host link of the bridge's name.
    sh("ip", "link", "add", "dum0", "type", "veth", "peer", "name", "dum1")
    sh("ip", "addr", "add", "10.90.1.7/24", "dev", "dum0")
    c.execute("net-define", {"definition": dict(net, name="c", bridge="vmmdc0", ipv4={"address": "10.90.0.1", "prefix": 16})})
    refused(c, "net-start", {"name": "c"}, "overlaps", "10.90.1.7/24", "dum0")
    c.execute("net-define", {"definition": dict(net, name="d", bridge="dum0", ipv4={"address": "10.91.0.1", "prefix": 24})})
    refused(c, "net-start", {"name": "d"}, "dum0", "already exists")
    check(link("vmmdc0") is None and "vmmd-c" not in tables(), "a refused start left something behind")
    c.execute("net-define", {"definition": {"name": "e", "mode": "bridge", "bridge": "nosuchbr"}})
    refused(c, "net-start", {"name": "e"}, "nosuchbr", "does not exist")
    # "default" is defined on its first start only when no network of that name exists.
    c.execute("net-define", {"definition": dict(net, name="default", bridge="mine0", ipv4={"address": "10.92.0.1", "prefix": 24})})
    c.execute("net-start", {"name": "default"})
    check(net_info(d, "default")["bridge"] == "mine0", "the operator's 'default' was replaced")
    c.execute("net-stop", {"name": "default"})
    for name in ("a", "c", "d", "e", "default"):
        c.execute("net-undefine", {"name": name})
    refused(c, "net-undefine", {"name": "a"}, "not defined")


def without_leftovers(d, fn):
    """fn(d); then, passed or failed, no dnsmasq of this run outlives it (they outlive vmmd by
    design, and would keep the namespace alive)."""
    try:
        fn(d)
    finally:
        prefix = ("--conf-file=" + os.path.join(d.state, "networks") + "/").encode()
        for pid, argv in live_processes():
            if any(arg.startswith(prefix) for arg in argv):
                os.kill(pid, signal.SIGKILL)


def main():
    scenario = sys.argv[1] if len(sys.argv) > 1 else ""
    if "scenario_" + scenario not in globals():
        print(__doc__)
        return 2
    if os.geteuid() != 0:
        return cannot_run("network tests need root (network namespaces, bridges, nftables)")
    for tool in ("unshare", "nsenter", "ip", "nft", DNSMASQ, BUSYBOX):
        if not shutil.which(tool):
            return cannot_run(tool + " is missing (scripts/install-deps.sh installs it)")
    if os.environ.get("VMMD_NET_NETNS") != "1":
        env = dict(os.environ, VMMD_NET_NETNS="1")
        return subprocess.call(["unshare", "-n", sys.executable, os.path.abspath(__file__), scenario], env=env)
    sh("ip", "link", "set", "lo", "up")
    with_daemon(without_leftovers, globals()["scenario_" + scenario])
    print(scenario + ": ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
