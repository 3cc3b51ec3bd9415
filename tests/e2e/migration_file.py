#!/usr/bin/env python3
"""Saved state files and fast restore: the probe guest dirtying and checking its memory ("dirty":
every page must hold what it last wrote, bad=0) saved with `migrate file:PATH` and restored with
`-incoming file:PATH`, as a plain stream and with the mapped-ram capability (RAM mapped from
the file, not copied).

  plain:     migrate file: -> PATH (no PATH.partial left) -> -incoming file:PATH: memory intact
  mapped:    mapped-ram on, migrate file: -> a sparse file -> -incoming file:PATH: memory intact;
             saved again to the same PATH by the restored guest (whose RAM is mapped from it),
             restored again, then live-migrated over unix: (dirty logging on mapped RAM):
             memory intact at every step; -incoming defer + migrate-incoming file:
  sandbox:   mapped-ram through fd: on a regular file, both ends under -sandbox on
  refused:   mapped-ram with unix:, a mapped-ram file through a pipe (exec:cat), a truncated file
             (in the RAM slots, in the device state), a flipped layout byte, a destination with
             other RAM, a missing file, file: with offset=: a clear error, exit status 1, never
             a crash, the guest never runs

    migration_file.py VMM PROBE_ELF
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from vmmd_testlib.kvm_gate import require_kvm  # noqa: E402
from vmmd_testlib.probe_vm import ProbeVm, check, failures, wait_migration, wait_status  # noqa: E402
from vmmd_testlib.qmp import QmpError  # noqa: E402
from vmmd_testlib.tempdir import temp_dir  # noqa: E402

vmm, probe = sys.argv[1], sys.argv[2]
if (status := require_kvm()) is not None:
    sys.exit(status)


def save(vm, path, label, mapped, uri=None):
    """Saves `vm` to `path` (file:, or `uri`); returns the last round the source printed."""
    vm.qmp.execute("migrate-set-capabilities", {"capabilities": [{"capability": "mapped-ram", "state": mapped}]})
    vm.qmp.execute("migrate", {"uri": uri or f"file:{path}"})
    info = wait_migration(vm)
    check(info.get("status") == "completed", f"{label}: saved ({info.get('status')} {info.get('error-desc', '')})")
    check(wait_status(vm, "postmigrate") == "postmigrate", f"{label}: the source ends in postmigrate")
    check(not os.path.exists(path + ".partial"), f"{label}: no {path}.partial left")
    return vm.counts()[-1]


def check_resumed(vm, last_src, label):
    """The restored guest runs and dirties on from the saved round, every page as it left it."""
    check(wait_status(vm, "running") == "running", f"{label}: the restored guest runs")
    check(vm.wait_count(last_src + 5) is not None, f"{label}: the restored guest dirties on past round {last_src + 5}")
    lines = vm.lines()
    check(lines and lines[0][0] >= last_src and all(bad == 0 for _, bad in lines),
          f"{label}: every page holds what the guest last wrote (saved at round {last_src}, restored {lines[:2]})")


with temp_dir("vmm-migration-file-") as tmp:
    vms = []

    def new_vm(name, extra=(), **kwargs):
        vm = ProbeVm(vmm, probe, tmp, name, extra, action="dirty", **kwargs)
        vms.append(vm)
        return vm

    def refused(name, extra, reason, label, mem=64):
        bad = ProbeVm(vmm, probe, tmp, name, extra, wait_qmp=False, action="dirty", mem=mem)
        vms.append(bad)
        code = bad.wait_exit()
        check(code == 1 and reason in bad.stderr() and not bad.lines(),
              f"refused: {label}: exit 1 naming the problem, the guest never ran ({code}: {bad.stderr().strip()[-300:]})")

    try:
        # ---- plain stream in a file ---------------------------------------------------------
        plain = os.path.join(tmp, "plain.state")
        src = new_vm("plain-src")
        check(src.wait_count(3) is not None, "plain: the source's guest dirties memory")
        last = save(src, plain, "plain", mapped=False)
        src.kill()
        dst = new_vm("plain-dst", ["-incoming", f"file:{plain}"])
        check_resumed(dst, last, "plain")
        dst.kill()

        # ---- mapped-ram ---------------------------------------------------------------------
        mapped = os.path.join(tmp, "mapped.state")
        src = new_vm("mapped-src")
        check(src.wait_count(3) is not None, "mapped: the source's guest dirties memory")
        try:
            src.qmp.execute("migrate-set-capabilities", {"capabilities": [{"capability": "mapped-ram", "state": True}]})
            src.qmp.execute("migrate", {"uri": f"unix:{tmp}/nobody.mig"})
            check(False, "mapped: migrate unix: with mapped-ram is refused")
        except QmpError as e:
            check("mapped-ram" in e.desc and "file:" in e.desc, f"mapped: unix: with mapped-ram refused: {e.desc}")
        caps = {c["capability"]: c["state"] for c in src.qmp.execute("query-migrate-capabilities")}
        check(caps.get("mapped-ram") is True, "mapped: query-migrate-capabilities shows mapped-ram on")
        last = save(src, mapped, "mapped", mapped=True)
        info = src.qmp.execute("query-migrate")
        size = os.path.getsize(mapped)
        blocks = os.stat(mapped).st_blocks * 512
        check(size > 64 << 20 and blocks < size // 2, f"mapped: the file has a slot for every page ({size} bytes), zero pages as holes ({blocks} allocated)")
        print(f"     figures: save total-time {info.get('total-time')} ms, {info.get('ram', {}).get('transferred')} bytes written")
        src.kill()
        with open(mapped, "rb") as f:
            original = f.read()

        r1 = new_vm("mapped-r1", ["-incoming", f"file:{mapped}"])
        check_resumed(r1, last, "mapped restore")
        dst_info = r1.qmp.execute("query-migrate")
        check(dst_info.get("status") == "completed", f"mapped restore: the destination's query-migrate says completed ({dst_info.get('status')})")
        with open(mapped, "rb") as f:
            check(f.read() == original, "mapped restore: the guest's writes never reach the file (copy-on-write)")

        # The restored guest (RAM mapped from mapped.state) saved again over the same path.
        last = save(r1, mapped, "mapped again", mapped=True)
        with open(mapped, "rb") as f:
            check(f.read() != original, "mapped again: a new file is in place")
        r2 = new_vm("mapped-r2", ["-incoming", "defer"])
        check(r2.status() == "inmigrate", "mapped again: -incoming defer waits")
        r2.qmp.execute("migrate-incoming", {"uri": f"file:{mapped}"})
        check_resumed(r2, last, "mapped again (migrate-incoming file:)")
        r1.kill()

        # A restored guest migrates live again: dirty logging over its mapped RAM. What is checked is
        # that the passes run and the copy is whole, not how fast it converges (tests/e2e/migration.py
        # does that): a 5 s downtime limit, since in an L1 of one vCPU the guest's dirtying loop and
        # the migration share that vCPU (seen: 6.8 MB/s sent against 4 MiB dirtied a pass, which
        # the default 300 ms limit never let end).
        r3 = new_vm("mapped-r3", ["-incoming", f"unix:{tmp}/r3.mig"])
        r2.qmp.execute("migrate-set-capabilities", {"capabilities": [{"capability": "mapped-ram", "state": False}]})
        r2.qmp.execute("migrate-set-parameters", {"downtime-limit": 5000})
        r2.qmp.execute("migrate", {"uri": f"unix:{tmp}/r3.mig"})
        info = wait_migration(r2)
        check(info.get("status") == "completed", f"restored then migrated: completed ({info.get('status')} {info.get('error-desc', '')})")
        check(info.get("ram", {}).get("dirty-sync-count", 0) >= 1, "restored then migrated: dirty passes ran")
        check_resumed(r3, r2.counts()[-1], "restored then migrated over unix:")
        r2.kill()
        r3.kill()

        # ---- sandbox: mapped-ram through fd: on regular files -----------------------------------
        boxed = os.path.join(tmp, "boxed.state")
        out_fd = os.open(boxed, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        src = new_vm("sandbox-src", ["-sandbox", "on"], pass_fds=[out_fd])
        os.close(out_fd)
        check(src.wait_count(3) is not None, "sandbox: the source's guest dirties memory")
        try:
            src.qmp.execute("migrate", {"uri": f"file:{boxed}"})
            check(False, "sandbox: file: is refused")
        except QmpError as e:
            check("-sandbox on" in e.desc and "fd:" in e.desc, f"sandbox: file: refused: {e.desc}")
        last = save(src, boxed, "sandbox", mapped=True, uri=f"fd:{out_fd}")
        in_fd = os.open(boxed, os.O_RDONLY)
        dst = new_vm("sandbox-dst", ["-sandbox", "on", "-incoming", f"fd:{in_fd}"], pass_fds=[in_fd])
        os.close(in_fd)
        check_resumed(dst, last, "sandbox")
        for vm in (src, dst):
            check(vm.proc.poll() is None and "seccomp" not in vm.stderr(),
                  f"sandbox: {vm.name} alive, no forbidden system call ({vm.stderr().strip()[-200:]})")
        src.kill()
        dst.kill()

        # ---- refused ------------------------------------------------------------------------
        layout_at = original.index(bytes([5, 0, 0, 0]), 16)  # the RamLayout section's type
        cases = {
            "cut-ram": (original[:(4 << 20) + 12345], "ended early"),
            "cut-state": (original[:len(original) - 100], "ended early"),
            "flipped-layout": (original[:layout_at + 12] + bytes([original[layout_at + 12] ^ 1]) + original[layout_at + 13:], "checksum mismatch"),
        }
        for label, (content, reason) in cases.items():
            path = os.path.join(tmp, label + ".state")
            with open(path, "wb") as f:
                f.write(content)
            refused(label, ["-incoming", f"file:{path}"], reason, label)
        refused("pipe", ["-incoming", f"exec:cat {mapped}"], "regular file", "a mapped-ram file through a pipe")
        refused("other-ram", ["-incoming", f"file:{mapped}"], "RAM size differs", "a destination with 128 MiB", mem=128)
        refused("missing", ["-incoming", f"file:{tmp}/none.state"], "Failed to open file", "a missing file")
        refused("offset", ["-incoming", f"file:{mapped},offset=4096"], "offset= is not supported", "file: with offset=")
    finally:
        for vm in vms:
            vm.kill()

print(f"{len(failures)} failure(s)" if failures else "all file migration checks passed")
sys.exit(1 if failures else 0)
