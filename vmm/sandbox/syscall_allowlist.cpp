#include "vmm/sandbox/syscall_allowlist.h"

#include <asm/ioctls.h>
#include <linux/if_tun.h>
#include <linux/kvm.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/prctl.h>

#include <cerrno>
#include <cstring>

#include "vmm/kvm/ioctl_numbers.h"

namespace vmmd::sandbox {
namespace {

// ioctl(2) takes an unsigned int request in the kernel: only the low 32 bits of the argument count.
constexpr scmp_datum_t kRequestMask = 0xffffffff;

// Every thread: memory, futexes, time, signals, the log (write to stderr), exiting. The clock
// calls are syscalls only where the vDSO cannot serve them (seen in an L1 under TCG, whose
// clocksource the vDSO cannot read: QMP's event timestamps made gettimeofday(2) calls).
constexpr int kEveryThread[] = {
    SCMP_SYS(gettimeofday), SCMP_SYS(time), SCMP_SYS(clock_getres),
    SCMP_SYS(read), SCMP_SYS(write), SCMP_SYS(readv), SCMP_SYS(writev), SCMP_SYS(futex),
    SCMP_SYS(rt_sigreturn), SCMP_SYS(rt_sigprocmask), SCMP_SYS(restart_syscall), SCMP_SYS(exit),
    SCMP_SYS(exit_group), SCMP_SYS(brk), SCMP_SYS(munmap), SCMP_SYS(madvise), SCMP_SYS(mremap),
    SCMP_SYS(clock_gettime), SCMP_SYS(clock_nanosleep), SCMP_SYS(nanosleep), SCMP_SYS(gettid),
    SCMP_SYS(getpid), SCMP_SYS(tgkill), SCMP_SYS(sched_yield), SCMP_SYS(getrandom),
};

// The main loop: libuv (epoll, eventfds, signals through a pipe), the QMP and chardev sockets,
// the tap, the devices' eventfds, and a reset, which makes a new KVM VM and new vCPU threads.
constexpr int kMainLoop[] = {
    SCMP_SYS(epoll_wait), SCMP_SYS(epoll_pwait), SCMP_SYS(epoll_ctl), SCMP_SYS(accept4),
    SCMP_SYS(recvmsg), SCMP_SYS(sendmsg), SCMP_SYS(recvfrom), SCMP_SYS(sendto), SCMP_SYS(shutdown),
    SCMP_SYS(getsockopt), SCMP_SYS(getsockname), SCMP_SYS(getpeername),
    SCMP_SYS(fcntl), SCMP_SYS(pipe2), SCMP_SYS(rt_sigaction),
    SCMP_SYS(set_robust_list), SCMP_SYS(rseq), SCMP_SYS(sched_getaffinity), SCMP_SYS(fstat),
    SCMP_SYS(newfstatat), SCMP_SYS(lseek), SCMP_SYS(unlink), SCMP_SYS(dup2), SCMP_SYS(dup3),
    SCMP_SYS(pread64),  // a reset loads the kernel and initrd again from their open files
    // QMP's internal snapshots (blockdev-snapshot-*-internal-sync) rewrite qcow2 metadata on the
    // main loop, synchronously as in QEMU: table writes, barriers, freed clusters, file size.
    SCMP_SYS(preadv), SCMP_SYS(pwrite64), SCMP_SYS(pwritev), SCMP_SYS(fdatasync), SCMP_SYS(fallocate),
    SCMP_SYS(ftruncate),
};

// vCPU threads: KVM_RUN and what device emulation does on them (IRQ lines, MSI routes, the
// ioeventfds and irqfds a driver sets up when it enables a queue, the serial port's bytes sent
// straight to its console socket).
constexpr int kVcpu[] = {SCMP_SYS(eventfd2), SCMP_SYS(close), SCMP_SYS(sendto), SCMP_SYS(sendmsg)};

// The I/O pool: block requests on already open image files.
constexpr int kIoPool[] = {
    SCMP_SYS(pread64), SCMP_SYS(pwrite64), SCMP_SYS(preadv), SCMP_SYS(pwritev), SCMP_SYS(preadv2),
    SCMP_SYS(pwritev2), SCMP_SYS(fdatasync), SCMP_SYS(fsync), SCMP_SYS(fallocate), SCMP_SYS(ftruncate),
    SCMP_SYS(fstat), SCMP_SYS(newfstatat), SCMP_SYS(lseek),
};

// The migration thread (vmm/migration, started by the main loop for migrate / -incoming): the
// stream on an already open descriptor (fd:, the only kind allowed under the sandbox): poll with
// the cancel timeout, send/recv on a socket, read/write on a pipe or file, getsockopt(SO_TYPE)
// to tell a socket, shutdown(SHUT_WR) at the end of the stream, fcntl on an inherited fd:N (is
// it open, close-on-exec), close of the stream when done. A mapped-ram file (fd: naming a
// regular file): its size and position (fstat, lseek), pages written to their slots (pwrite64),
// holes sized and punched back (ftruncate, fallocate), and on restore the RAM mapped from it
// (mmap, allowed to every thread without PROT_EXEC). Socket creation, connect, bind, listen,
// accept, open and fork/execve (unix:, tcp:, exec:, file:) stay forbidden.
constexpr int kMigration[] = {
    SCMP_SYS(poll), SCMP_SYS(ppoll), SCMP_SYS(sendto), SCMP_SYS(recvfrom), SCMP_SYS(sendmsg),
    SCMP_SYS(recvmsg), SCMP_SYS(getsockopt), SCMP_SYS(shutdown), SCMP_SYS(fcntl), SCMP_SYS(close),
    SCMP_SYS(fstat), SCMP_SYS(newfstatat), SCMP_SYS(lseek), SCMP_SYS(pwrite64), SCMP_SYS(ftruncate),
    SCMP_SYS(fallocate),
};

// Its KVM dirty logging on the source: the log flag set and cleared on each memory slot
// (KVM_SET_USER_MEMORY_REGION, same slot and address), and the bitmap fetched and cleared per
// pass (KVM_GET_DIRTY_LOG; vmm/kvm does not use manual-protect, so no KVM_CLEAR_DIRTY_LOG).
// The state is saved and loaded on the main loop (kMainIoctls).
constexpr unsigned long kMigrationIoctls[] = {KVM_SET_USER_MEMORY_REGION, KVM_GET_DIRTY_LOG};

constexpr unsigned long kVcpuIoctls[] = {
    KVM_RUN, KVM_GET_REGS, KVM_GET_SREGS, KVM_IRQ_LINE, KVM_IRQ_LINE_STATUS, KVM_SIGNAL_MSI,
    KVM_IRQFD, KVM_IOEVENTFD, kvm::kSetGsiRouting, TUNSETOFFLOAD,
};

// The main loop's beyond the vCPU list: what a reset asks of KVM (vmm/kvm/kvm.cpp: a new VM and
// vCPUs), plus libuv's, the chardevs' and the tap's own.
constexpr unsigned long kMainIoctls[] = {
    KVM_GET_API_VERSION, KVM_CHECK_EXTENSION, KVM_CREATE_VM, KVM_GET_VCPU_MMAP_SIZE,
    kvm::kGetSupportedCpuid, KVM_CREATE_IRQCHIP, KVM_CREATE_PIT2, KVM_CREATE_VCPU, KVM_ENABLE_CAP,
    KVM_SET_IDENTITY_MAP_ADDR, KVM_SET_TSS_ADDR, KVM_SET_USER_MEMORY_REGION, kvm::kSetCpuid2,
    KVM_SET_FPU, KVM_SET_REGS, KVM_SET_SREGS, kvm::kSetMsrs, KVM_SET_XCRS, KVM_SET_LAPIC,
    KVM_GET_LAPIC, KVM_SET_MP_STATE, KVM_GET_MP_STATE,
    KVM_GET_STATS_FD,  // a new VM and its vCPUs get their statistics fds (query-stats)
    // Machine::saveState/loadState (migration, snapshots), from the main loop.
    kvm::kGetMsrIndexList, kvm::kGetMsrs, kvm::kGetXsave, kvm::kGetXsave2, kvm::kSetXsave, KVM_GET_SREGS2,
    KVM_SET_SREGS2, KVM_GET_FPU, KVM_GET_XCRS, KVM_GET_VCPU_EVENTS, KVM_SET_VCPU_EVENTS, KVM_GET_DEBUGREGS,
    KVM_SET_DEBUGREGS, KVM_GET_TSC_KHZ, KVM_SET_TSC_KHZ, KVM_GET_CLOCK, KVM_SET_CLOCK, KVM_GET_IRQCHIP,
    KVM_SET_IRQCHIP, KVM_GET_PIT2, KVM_SET_PIT2,
    TUNSETVNETHDRSZ, TUNGETIFF, FIONBIO, FIOCLEX, FIONREAD, TCGETS, TCSETS,
};

#ifdef VMMD_SANITIZER_SYSCALLS
// AddressSanitizer and UndefinedBehaviorSanitizer runtimes (sanitizer build only): they read
// /proc/self/maps and symbolize on a report, and LeakSanitizer stops the world at exit with a
// tracer (clone without CLONE_THREAD, ptrace, waitpid) that lists /proc/self/task with the old
// getdents(2). The tracer blocks SIGSYS, so a call missing here kills it silently and the
// worker then waits for it forever at exit: the ASan runs of vmm_sandbox_worker catch that.
constexpr int kSanitizerRuntime[] = {
    SCMP_SYS(openat), SCMP_SYS(open), SCMP_SYS(close), SCMP_SYS(fstat), SCMP_SYS(newfstatat),
    SCMP_SYS(getdents), SCMP_SYS(getdents64), SCMP_SYS(readlink), SCMP_SYS(readlinkat), SCMP_SYS(sigaltstack),
    SCMP_SYS(rt_sigaction), SCMP_SYS(prctl), SCMP_SYS(ptrace), SCMP_SYS(wait4),
    SCMP_SYS(sched_getaffinity), SCMP_SYS(getppid), SCMP_SYS(lseek), SCMP_SYS(pipe2),
    SCMP_SYS(dup2), SCMP_SYS(getrlimit), SCMP_SYS(prlimit64), SCMP_SYS(set_robust_list),
    SCMP_SYS(rseq), SCMP_SYS(kill),
};
#endif

// "Argument ARG equals VALUE". libseccomp's SCMP_An(SCMP_CMP_EQ, v) leaves the comparison's second
// datum to a compound literal, which clang's -Wmissing-field-initializers refuses (the fuzz tree).
scmp_arg_cmp argEquals(unsigned int arg, scmp_datum_t value) {
  scmp_arg_cmp compare{};
  compare.arg = arg;
  compare.op = SCMP_CMP_EQ;
  compare.datum_a = value;
  compare.datum_b = 0;
  return compare;
}

Status added(int rc, int syscall) {
  if (rc == 0) return {};
  char* name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, syscall);
  std::string text = name ? name : std::to_string(syscall);
  std::free(name);
  return Error("seccomp: cannot add a rule for " + text + ": " + std::strerror(-rc));
}

template <size_t N>
Status allowAll(scmp_filter_ctx filter, const int (&syscalls)[N]) {
  for (int syscall : syscalls) {
    if (auto st = added(seccomp_rule_add(filter, SCMP_ACT_ALLOW, syscall, 0), syscall); !st) return st;
  }
  return {};
}

template <size_t N>
Status allowIoctls(scmp_filter_ctx filter, const unsigned long (&requests)[N]) {
  for (unsigned long request : requests) {
    int rc = seccomp_rule_add(filter, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
                              SCMP_A1(SCMP_CMP_MASKED_EQ, kRequestMask, request & kRequestMask));
    if (auto st = added(rc, SCMP_SYS(ioctl)); !st) return st;
  }
  return {};
}

// mmap and mprotect, never executable: no new code after setup (guest memory is already mapped).
Status allowDataMappings(scmp_filter_ctx filter) {
  for (int syscall : {SCMP_SYS(mmap), SCMP_SYS(mprotect)}) {
    int rc = seccomp_rule_add(filter, SCMP_ACT_ALLOW, syscall, 1, SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
    if (auto st = added(rc, syscall); !st) return st;
  }
  return {};
}

// Threads, never processes: clone only with CLONE_THREAD. clone3's flags sit behind a pointer
// that a filter cannot read, so it fails with ENOSYS and glibc uses clone.
Status allowThreadCreation(scmp_filter_ctx filter) {
  int rc = seccomp_rule_add(filter, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
                            SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD));
  if (auto st = added(rc, SCMP_SYS(clone)); !st) return st;
  if (auto st = added(seccomp_rule_add(filter, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0), SCMP_SYS(clone3)); !st) return st;
  // pthread_create reads the stack size limit (its own process, never sets one).
  rc = seccomp_rule_add(filter, SCMP_ACT_ALLOW, SCMP_SYS(prlimit64), 2, argEquals(0, 0), argEquals(2, 0));
  if (auto st = added(rc, SCMP_SYS(prlimit64)); !st) return st;
  // A new vCPU thread names itself ("CPU 0/KVM", as QEMU's).
  rc = seccomp_rule_add(filter, SCMP_ACT_ALLOW, SCMP_SYS(prctl), 1, argEquals(0, PR_SET_NAME));
  if (auto st = added(rc, SCMP_SYS(prctl)); !st) return st;
  // ... and narrows itself to its role: one more filter, which can only take calls away.
  rc = seccomp_rule_add(filter, SCMP_ACT_ALLOW, SCMP_SYS(seccomp), 1, argEquals(0, SECCOMP_SET_MODE_FILTER));
  return added(rc, SCMP_SYS(seccomp));
}

#ifdef VMMD_SANITIZER_SYSCALLS
// LeakSanitizer's tracer task shares the memory (CLONE_VM) without being a thread; a fork or a
// vfork (posix_spawn) stays forbidden.
Status allowSanitizerTracer(scmp_filter_ctx filter) {
  int rc = seccomp_rule_add(filter, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
                            SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_VM | CLONE_VFORK, CLONE_VM));
  return added(rc, SCMP_SYS(clone));
}
#endif

}  // namespace

const char* roleName(Role role) {
  switch (role) {
    case Role::Main: return "main loop";
    case Role::Vcpu: return "vCPU";
    case Role::Io: return "I/O pool";
    case Role::Migration: return "migration";
  }
  return "unknown";
}

Status addAllowlist(scmp_filter_ctx filter, Role role) {
  if (auto st = allowAll(filter, kEveryThread); !st) return st;
  if (auto st = allowDataMappings(filter); !st) return st;
#ifdef VMMD_SANITIZER_SYSCALLS
  if (auto st = allowAll(filter, kSanitizerRuntime); !st) return st;
  if (auto st = allowSanitizerTracer(filter); !st) return st;
#endif
  switch (role) {
    case Role::Main:
      // A reset starts new vCPU threads from the main loop; they keep its filter beneath their
      // own, so the main loop's list holds the vCPU list too.
      if (auto st = allowAll(filter, kVcpu); !st) return st;
      if (auto st = allowIoctls(filter, kVcpuIoctls); !st) return st;
      if (auto st = allowAll(filter, kMainLoop); !st) return st;
      // The migration thread starts from the main loop too, with its filter beneath.
      if (auto st = allowAll(filter, kMigration); !st) return st;
      if (auto st = allowIoctls(filter, kMigrationIoctls); !st) return st;
      if (auto st = allowThreadCreation(filter); !st) return st;
      return allowIoctls(filter, kMainIoctls);
    case Role::Vcpu:
      if (auto st = allowAll(filter, kVcpu); !st) return st;
      return allowIoctls(filter, kVcpuIoctls);
    case Role::Io:
      return allowAll(filter, kIoPool);
    case Role::Migration:
      if (auto st = allowAll(filter, kMigration); !st) return st;
      return allowIoctls(filter, kMigrationIoctls);
  }
  return {};
}

}  // namespace vmmd::sandbox
