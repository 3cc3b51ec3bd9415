#include "vmm/sandbox/violation_report.h"

#include <seccomp.h>
#include <signal.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include <array>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "base/log.h"

namespace vmmd::sandbox {
namespace {

constexpr int kSyscallTableSize = 512;  // x86-64 numbers end below 470
constexpr size_t kNameSize = 32;
std::array<std::array<char, kNameSize>, kSyscallTableSize> syscall_names{};
std::array<char, 16> line_prefix{};  // "vmm: " or "<3>" under the journal

// Set once by setThreadRole; read by the handler. Zero-initialised TLS needs no allocation.
thread_local const char* thread_role = nullptr;

// Appends to a fixed buffer; nothing here may allocate or lock.
struct LineBuffer {
  char text[256];
  size_t length = 0;
  void append(const char* part) {
    while (*part && length < sizeof text - 1) text[length++] = *part++;
  }
  void appendNumber(long value) {
    char digits[24];
    int n = 0;
    if (value < 0) {
      append("-");
      value = -value;
    }
    do {
      digits[n++] = static_cast<char>('0' + value % 10);
      value /= 10;
    } while (value > 0 && n < 23);
    while (n > 0 && length < sizeof text - 1) text[length++] = digits[--n];
  }
  void appendHex(unsigned long value) {
    append("0x");
    char digits[17];
    int n = 0;
    do {
      digits[n++] = "0123456789abcdef"[value & 0xf];
      value >>= 4;
    } while (value > 0 && n < 16);
    while (n > 0 && length < sizeof text - 1) text[length++] = digits[--n];
  }
};

void formatLine(LineBuffer& line, const char* role, int syscall, unsigned long first_args[2]) {
  line.append(line_prefix.data());
  line.append("seccomp: ");
  line.append(role);
  line.append(" thread made a forbidden system call ");
  line.appendNumber(syscall);
  line.append(" (");
  line.append(syscall >= 0 && syscall < kSyscallTableSize && syscall_names[syscall][0] ? syscall_names[syscall].data() : "unknown");
  line.append(")");
  // Which ioctl, and what clone was asked for: the argument the filter checked.
  if (first_args && syscall == SYS_ioctl) {
    line.append(" request ");
    line.appendHex(first_args[1] & 0xffffffff);
  } else if (first_args && syscall == SYS_clone) {
    line.append(" flags ");
    line.appendHex(first_args[0]);
  }
  line.append("\n");
}

void onSigsys(int, siginfo_t* info, void* context) {
  int saved_errno = errno;
  const greg_t* regs = static_cast<ucontext_t*>(context)->uc_mcontext.gregs;
  unsigned long first_args[2] = {static_cast<unsigned long>(regs[REG_RDI]), static_cast<unsigned long>(regs[REG_RSI])};
  LineBuffer line;
  formatLine(line, thread_role ? thread_role : "worker", info->si_syscall, first_args);
  (void)!::write(STDERR_FILENO, line.text, line.length);
  // The same call again, with the same arguments, inside this handler: SIGSYS is blocked here,
  // so the kernel resets it to the default action and the process dies by SIGSYS.
  ::syscall(info->si_syscall, regs[REG_RDI], regs[REG_RSI], regs[REG_RDX], regs[REG_R10], regs[REG_R8], regs[REG_R9]);
  // Unreachable unless the call was allowed after all; never return into a skipped system call.
  errno = saved_errno;
  ::_exit(128 + SIGSYS);
}

}  // namespace

Status installViolationReporter() {
  for (int nr = 0; nr < kSyscallTableSize; ++nr) {
    char* name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
    if (name) std::string_view(name).copy(syscall_names[nr].data(), kNameSize - 1);
    std::free(name);
  }
  // The logger's own prefix for an error line ("vmm: ", or the journal's "<3>").
  std::string prefix = log::toJournal() ? "<3>" : log::formatLine(log::Level::Error, "");
  if (prefix.back() == '\n') prefix.pop_back();
  prefix.copy(line_prefix.data(), line_prefix.size() - 1);
  struct sigaction action {};
  action.sa_sigaction = onSigsys;
  action.sa_flags = SA_SIGINFO;
  sigemptyset(&action.sa_mask);
  if (::sigaction(SIGSYS, &action, nullptr) < 0) return Error::fromErrno("seccomp: cannot install the SIGSYS handler");
  return {};
}

void setThreadRole(Role role) { thread_role = roleName(role); }

std::string violationLine(const char* role, int syscall) {
  LineBuffer line;
  formatLine(line, role, syscall, nullptr);
  return std::string(line.text, line.length);
}

}  // namespace vmmd::sandbox
