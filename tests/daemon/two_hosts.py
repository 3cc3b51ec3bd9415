"""Two hosts on one machine for the migration tests over ssh: this process's network namespace
is host A (the caller runs under `unshare -n`), a second one (a sleeping `unshare -n` process) is
host B, a veth pair joins them (10.77.0.1 and 10.77.0.2), and each runs a real ssh server,
dropbear, in the foreground on port 2222 with a throwaway host key. Root's authorized_keys is a
file of the test's: each dropbear runs in a mount namespace of its own where a temporary
directory is bound over /root, so the machine's /root/.ssh is never read or written."""
import os
import shutil
import signal
import subprocess

from vmmd_harness import check, wait_until

ADDRESSES = {"a": "10.77.0.1", "b": "10.77.0.2"}
PORT = 2222
TOOLS = ("unshare", "nsenter", "ip", "mount", "dropbear", "dropbearkey", "ssh", "ssh-keygen")


def missing_tool():
    return next((tool for tool in TOOLS if not shutil.which(tool)), None)


def sh(*argv):
    p = subprocess.run(list(argv), capture_output=True, text=True, timeout=30)
    check(p.returncode == 0, f"{' '.join(argv)}: exit {p.returncode}: {p.stdout}{p.stderr}")
    return p.stdout


class TwoHosts:
    def __init__(self, tmp):
        self.tmp = tmp
        self.procs = []
        self.servers = {}
        sh("ip", "link", "set", "lo", "up")
        self.b_holder = subprocess.Popen(["unshare", "-n", "sleep", "3600"])
        self.procs.append(self.b_holder)
        wait_until(lambda: os.readlink(f"/proc/{self.b_holder.pid}/ns/net") != os.readlink("/proc/self/ns/net"), 10,
                   "host B's network namespace")
        sh("ip", "link", "add", "hosta", "type", "veth", "peer", "name", "hostb", "netns", str(self.b_holder.pid))
        sh("ip", "addr", "add", ADDRESSES["a"] + "/24", "dev", "hosta")
        sh("ip", "link", "set", "hosta", "up")
        for args in (["link", "set", "lo", "up"], ["addr", "add", ADDRESSES["b"] + "/24", "dev", "hostb"], ["link", "set", "hostb", "up"]):
            sh(*self.on("b"), "ip", *args)
        # The source's key (authorized on both hosts) and one that is authorized nowhere.
        self.key = os.path.join(tmp, "id_ed25519")
        self.wrong_key = os.path.join(tmp, "wrong_ed25519")
        for key in (self.key, self.wrong_key):
            sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "vmmd-test", "-f", key)
        self.known_hosts = os.path.join(tmp, "known_hosts")
        self.host_keys = {}
        for host in ("a", "b"):
            home = os.path.join(tmp, "home-" + host)
            os.makedirs(os.path.join(home, ".ssh"), mode=0o700)
            os.chmod(home, 0o700)
            shutil.copy(self.key + ".pub", os.path.join(home, ".ssh", "authorized_keys"))
            host_key = os.path.join(tmp, "hostkey-" + host)
            sh("dropbearkey", "-t", "ed25519", "-f", host_key)
            public = [line for line in sh("dropbearkey", "-y", "-f", host_key).splitlines() if line.startswith("ssh-")][0]
            self.host_keys[host] = public
            with open(self.known_hosts, "a") as f:
                f.write(f"[{ADDRESSES[host]}]:{PORT} {' '.join(public.split()[:2])}\n")
            self.start_server(host)

    def on(self, host):
        """The command prefix that runs a command on `host` (its network namespace)."""
        return [] if host == "a" else ["nsenter", "--net=/proc/%d/ns/net" % self.b_holder.pid]

    def start_server(self, host):
        home = os.path.join(self.tmp, "home-" + host)
        log = open(os.path.join(self.tmp, "dropbear-" + host + ".log"), "ab")
        # -F foreground, -E log to stderr, -s no password logins, -m no motd, -K 2: a keepalive every
        # 2 s, so a session whose client is gone (the link went down) ends after 3 missed answers, as
        # sshd's ClientAliveInterval would end it.
        script = 'mount --bind "$0" /root && exec dropbear -F -E -s -m -K 2 -p "$1" -r "$2" -P "$3"'
        proc = subprocess.Popen(self.on(host) + ["unshare", "-m", "sh", "-c", script, home, f"{ADDRESSES[host]}:{PORT}",
                                                 os.path.join(self.tmp, "hostkey-" + host), os.path.join(self.tmp, "dropbear-" + host + ".pid")],
                                stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        self.procs.append(proc)
        self.servers[host] = proc
        probe = "exec 3<>/dev/tcp/%s/%d" % (ADDRESSES[host], PORT)
        wait_until(lambda: proc.poll() is None and subprocess.run(self.on(host) + ["bash", "-c", probe], capture_output=True).returncode == 0,
                   10, f"dropbear on host {host}")

    def stop_server(self, host):
        """The listener goes (sessions it forked before would stay; there are none between migrations)."""
        proc = self.servers.pop(host)
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)

    def link(self, state):
        """The veth pair down (both ends lose their carrier) or up again."""
        sh("ip", "link", "set", "hosta", state)
        if state == "up":
            wait_until(lambda: "state UP" in sh("ip", "link", "show", "hosta"), 10, "the link up again")

    def uri(self, host, socket, key=None, verify=True):
        params = f"socket={socket}&keyfile={key or self.key}"
        params += f"&known_hosts={self.known_hosts}" if verify else "&no_verify=1"
        return f"ssh://root@{ADDRESSES[host]}:{PORT}?{params}"

    def server_log(self):
        out = ""
        for host in ("a", "b"):
            try:
                with open(os.path.join(self.tmp, "dropbear-" + host + ".log"), errors="replace") as f:
                    out += f"--- dropbear on host {host} ---\n" + f.read()[-3000:]
            except OSError:
                pass
        return out

    def close(self):
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
