"""Shared driver for the end-to-end daemon tests: a real vmmd in temporary state/run dirs (a
client of its control socket from tests/support/vmmd_testlib/qmp.py), probe-guest definitions.

Paths come from the environment (set by CTest): VMMD, VMM, VMCTL, PROBE_ELF."""
import os
import signal
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from vmmd_testlib.kvm_gate import cannot_run, kvm_unusable_reason, require_kvm  # noqa: E402,F401
from vmmd_testlib.process import live_processes, stop, wait_until  # noqa: E402,F401
from vmmd_testlib.qmp import QmpClient, QmpError  # noqa: E402,F401
from vmmd_testlib.tempdir import TempDir  # noqa: E402

VMMD = os.environ.get("VMMD", "build/daemon/vmmd")
VMM = os.environ.get("VMM", "build/vmm/vmm")
VMCTL = os.environ.get("VMCTL", "build/cli/vmctl")
PROBE_ELF = os.environ.get("PROBE_ELF", "build/tests/guest/probe/probe.elf")
# vmmd's commands may take long (vm-shutdown waits for the guest): the default reply timeout.
REPLY_TIMEOUT = 90


def connect(path, connect_timeout=0, timeout=REPLY_TIMEOUT):
    """A negotiated QMP client of vmmd's control socket at `path`."""
    return QmpClient.connect(path, timeout=timeout, connect_timeout=connect_timeout)


def probe_definition(name, **extra):
    d = {"schema": 1, "name": name, "memory": 64, "vcpus": 1, "kernel": os.path.abspath(PROBE_ELF),
         "cmdline": "nochecks powerbutton"}
    d.update(extra)
    return d


class Daemon:
    """vmmd in its own temporary directories; restartable with the same ones."""

    def __init__(self, tmp=None, extra_args=()):
        self.tmp_dir = None if tmp else TempDir("vmmd-e2e-")
        self.tmp = tmp or self.tmp_dir.path
        # Traversable (not readable) by others: a root vmmd runs its workers as unprivileged uids,
        # and a wrapper script (--vmm) placed here must be executable by them. The VM's files need
        # no such thing: vmmd opens them and passes the fds.
        os.chmod(self.tmp, 0o711)
        self.state = os.path.join(self.tmp, "state")
        self.run = os.path.join(self.tmp, "run")
        self.socket = os.path.join(self.run, "vmmd.sock")
        self.log_path = os.path.join(self.tmp, "vmmd.log")
        self.extra_args = list(extra_args)
        self.proc = None
        self.cgroup = None  # a cgroup v2 directory vmmd starts in (as systemd's Delegate=yes would)
        self.prefix = []  # a command vmmd runs under (nsenter into another host's network namespace)

    def start(self, timeout=10):
        log = open(self.log_path, "ab")
        cgroup = self.cgroup

        def join_cgroup():
            if cgroup:
                with open(os.path.join(cgroup, "cgroup.procs"), "w") as f:
                    f.write(str(os.getpid()))
        self.proc = subprocess.Popen(self.prefix + [VMMD, "--state-dir", self.state, "--run-dir", self.run, "--vmm",
                                      os.path.abspath(VMM), "--foreground"] + self.extra_args,
                                     stdout=log, stderr=log, stdin=subprocess.DEVNULL, preexec_fn=join_cgroup)
        try:
            return QmpClient.connect(self.socket, timeout=REPLY_TIMEOUT, connect_timeout=timeout, retry_interval=0.02,
                                     alive=lambda: self.proc.poll() is None)
        except (FileNotFoundError, ConnectionRefusedError):
            if self.proc.poll() is not None:
                raise RuntimeError("vmmd exited with %s:\n%s" % (self.proc.returncode, self.log()))
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
        if self.proc:
            stop(self.proc, 10)

    def client(self):
        return connect(self.socket)

    def cleanup(self, failed=False):
        """Stops vmmd and kills every worker and network dnsmasq it left (they outlive it by
        design; a dnsmasq left behind also holds one of root's 128 inotify instances); the
        temporary dirs go too (kept after a failure with VMMD_KEEP_TMP=1)."""
        self.stop()
        conf_prefix = ("--conf-file=" + os.path.join(self.state, "networks") + "/").encode()
        pids = [pid for pid, argv in live_processes() if any(arg.startswith(conf_prefix) for arg in argv)]
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
        if self.tmp_dir:
            self.tmp_dir.remove(failed)


def state_of(client, name):
    return client.execute("vm-info", {"name": name})["state"]


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
    failed = True
    try:
        fn(d, *args)
        check(d.proc is None or d.proc.poll() is None, "vmmd exited during the test")
        d.stop()
        check_sanitizers(d)
        failed = False
    except BaseException:
        print("--- vmmd log ---\n" + d.log(), file=sys.stderr)
        raise
    finally:
        d.cleanup(failed)


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
