#include "vmm/sandbox/sandbox.h"

#include <linux/filter.h>
#include <linux/seccomp.h>
#include <malloc.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <ctime>
#include <cstring>
#include <map>
#include <memory>
#include <vector>

#include "base/unique_fd.h"
#include "vmm/sandbox/violation_report.h"

namespace vmmd::sandbox {
namespace {

using Program = std::vector<sock_filter>;

struct Programs {
  Program process;  // the union of all roles
  std::map<Role, Program> roles;
};

// Written once by prepare() before any other thread exists; read-only afterwards.
Programs* programs = nullptr;
std::atomic<bool> entered{false};

struct FilterDeleter {
  void operator()(void* filter) const { seccomp_release(filter); }
};

Result<Program> compile(std::initializer_list<Role> roles) {
  std::unique_ptr<void, FilterDeleter> filter(seccomp_init(SCMP_ACT_TRAP));
  if (!filter) return Error("seccomp: cannot create a filter");
  // Another architecture's system calls (x32, i386 int 0x80) kill outright.
  if (int rc = seccomp_attr_set(filter.get(), SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS); rc < 0) {
    return Error(std::string("seccomp: cannot set the bad-architecture action: ") + std::strerror(-rc));
  }
  for (Role role : roles) {
    if (auto st = addAllowlist(filter.get(), role); !st) return st.error();
  }
  // libseccomp writes the BPF program to a file descriptor; a memfd holds it for reading back.
  UniqueFd memory(static_cast<int>(::syscall(SYS_memfd_create, "seccomp-bpf", MFD_CLOEXEC)));
  if (!memory) return Error::fromErrno("seccomp: memfd_create");
  if (int rc = seccomp_export_bpf(filter.get(), memory.get()); rc < 0) {
    return Error(std::string("seccomp: cannot export the filter: ") + std::strerror(-rc));
  }
  off_t size = ::lseek(memory.get(), 0, SEEK_END);
  if (size <= 0 || size % sizeof(sock_filter) != 0) return Error("seccomp: the exported filter has a bad size");
  Program program(static_cast<size_t>(size) / sizeof(sock_filter));
  if (::pread(memory.get(), program.data(), static_cast<size_t>(size), 0) != size) return Error::fromErrno("seccomp: cannot read the filter back");
  return program;
}

Status load(const Program& program, unsigned flags, const char* what) {
  sock_fprog prog{static_cast<unsigned short>(program.size()), const_cast<sock_filter*>(program.data())};
  if (::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog) != 0) {
    return Error::fromErrno(std::string("seccomp: cannot install the ") + what + " filter");
  }
  return {};
}

}  // namespace

Status prepare() {
  if (programs) return {};
  auto compiled = std::make_unique<Programs>();
  auto process = compile({Role::Main, Role::Vcpu, Role::Io, Role::Migration});
  if (!process) return process.error();
  compiled->process = std::move(*process);
  for (Role role : kAllRoles) {
    auto program = compile({role});
    if (!program) return program.error().withContext(roleName(role));
    compiled->roles[role] = std::move(*program);
  }
  if (auto st = installViolationReporter(); !st) return st;
  // The RTC's localtime_r loads the time zone on its first call, from a vCPU thread: load it now.
  ::tzset();
  // One malloc arena, the main one, for every thread started from here on: glibc shrinks a
  // thread arena's heap only after reading /proc/sys/vm/overcommit_memory (check_may_shrink_heap),
  // an open(2) the filters forbid; the migration thread's freed stream buffers hit it. The main
  // arena gives memory back with brk, which every role may call. (The sanitizer runtimes'
  // allocator has no arenas and ignores mallopt: its result is not checked.)
  (void)::mallopt(M_ARENA_MAX, 1);
  programs = compiled.release();  // lives as long as the process: threads read it until they exit
  return {};
}

Status enterProcess() {
  if (!programs) return Error("seccomp: enterProcess() before prepare()");
  // Needed to install a filter without CAP_SYS_ADMIN; nothing this process runs may gain privileges.
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return Error::fromErrno("seccomp: PR_SET_NO_NEW_PRIVS");
  if (auto st = load(programs->process, SECCOMP_FILTER_FLAG_TSYNC, "process"); !st) return st;
  entered = true;
  return {};
}

Status confineThread(Role role) {
  if (!entered) return {};
  setThreadRole(role);
  // no_new_privs needs no call here: TSYNC set it on every thread, and new threads inherit it.
  return load(programs->roles.at(role), 0, roleName(role));
}

bool active() { return entered; }

}  // namespace vmmd::sandbox
