"""One rule for the tests that need something a host may lack (a usable /dev/kvm, qemu-ga...).

A developer's run skips them (exit 77, CTest's SKIP_RETURN_CODE here) and says why. Under CI=true
(or VMMD_NO_SKIP=1) the same test fails instead: a green CI run must mean every test ran.
scripts/test.sh runs the KVM tests (label "kvm") inside an L1 that has /dev/kvm when the host has
none, so they never need to skip there.
"""
import fcntl
import os
import sys

SKIP = 77
_KVM_GET_API_VERSION = 0xAE00
_KVM_CREATE_VM = 0xAE01


def _cpu_has_virtualization():
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "")
    except OSError:
        return False
    return " vmx" in flags or " svm" in flags


def kvm_unusable_reason():
    """None when /dev/kvm opens read-write, speaks API version 12 and creates a VM; else why not
    (and what to do). scripts/kvm-check says the same."""
    try:
        fd = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        if _cpu_has_virtualization():
            return "/dev/kvm is missing: load the KVM module (modprobe kvm_intel or kvm_amd)"
        return "/dev/kvm is missing and the CPU has no vmx/svm (this host is itself a VM without nested virtualization)"
    except PermissionError:
        return "/dev/kvm is not accessible to this user: join the 'kvm' group or run as root"
    except OSError as e:
        return f"/dev/kvm cannot be opened: {e.strerror}"
    try:
        try:
            version = fcntl.ioctl(fd, _KVM_GET_API_VERSION, 0)
        except OSError as e:
            return f"/dev/kvm is not a KVM device (KVM_GET_API_VERSION: {e.strerror})"
        if version != 12:
            return f"/dev/kvm speaks KVM API version {version}, not 12"
        try:
            os.close(fcntl.ioctl(fd, _KVM_CREATE_VM, 0))
        except OSError as e:
            return f"/dev/kvm does not create a VM: {e.strerror}"
    finally:
        os.close(fd)
    return None


def must_not_skip():
    return os.environ.get("CI") == "true" or os.environ.get("VMMD_NO_SKIP") == "1"


def cannot_run(reason):
    """Prints REASON and returns the exit status for a test that cannot run here."""
    if must_not_skip():
        print(f"FAIL: this test cannot run: {reason} (CI=true: a skipped test is a failure; "
              "scripts/test.sh runs the KVM tests in an L1 when the host has no usable /dev/kvm)")
        sys.stdout.flush()
        return 1
    print(f"SKIP: {reason}")
    sys.stdout.flush()
    return SKIP


def require_kvm():
    """None when KVM is usable; else the exit status the test should end with."""
    reason = kvm_unusable_reason()
    return None if reason is None else cannot_run(reason)
