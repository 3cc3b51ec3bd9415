// The seccomp roles of -sandbox on, each applied in a forked child (filters cannot be removed,
// so never in the test process itself): allowed calls work, a forbidden one kills the child by
// SIGSYS after one line on its stderr naming the role and the call.
#include "vmm/sandbox/sandbox.h"

#include <fcntl.h>
#include <linux/kvm.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "base/log.h"
#include "base/unique_fd.h"
#include "vmm/sandbox/violation_report.h"

namespace vmmd::sandbox {
namespace {

struct ChildEnd {
  int status = 0;
  std::string stderr_text;
  bool exitedWith(int code) const { return WIFEXITED(status) && WEXITSTATUS(status) == code; }
  bool killedBy(int signal) const { return WIFSIGNALED(status) && WTERMSIG(status) == signal; }
};

// Runs `body` in a child confined to `role` (none: the process filter alone), its stderr
// captured; the child exits 0 after it.
ChildEnd runConfined(std::optional<Role> role, const std::function<void()>& body) {
  int fds[2];
  EXPECT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  std::fflush(nullptr);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(fds[1], STDERR_FILENO);
    log::setProgram("vmm");
    log::redetectJournal();
    if (!prepare() || !enterProcess() || (role && !confineThread(*role))) ::_exit(90);
    body();
    ::_exit(0);
  }
  ::close(fds[1]);
  ChildEnd end;
  char buffer[512];
  ssize_t n;
  while ((n = ::read(fds[0], buffer, sizeof buffer)) > 0) end.stderr_text.append(buffer, static_cast<size_t>(n));
  ::close(fds[0]);
  ::waitpid(pid, &end.status, 0);
  return end;
}

TEST(Sandbox, TheLineNamesRoleAndCall) {
  ASSERT_TRUE(prepare());
  EXPECT_EQ(violationLine("vCPU", SYS_execve), "vmm: seccomp: vCPU thread made a forbidden system call 59 (execve)\n");
  EXPECT_EQ(violationLine("I/O pool", 9999), "vmm: seccomp: I/O pool thread made a forbidden system call 9999 (unknown)\n");
}

TEST(Sandbox, EveryRoleKeepsTheCallsItNeeds) {
  auto everyone = [] {
    if (::getpid() <= 0) ::_exit(1);
    timespec now{};
    if (::clock_gettime(CLOCK_MONOTONIC, &now) != 0) ::_exit(2);
    std::string text(1 << 20, 'x');  // malloc: mmap without PROT_EXEC
    if (::write(STDERR_FILENO, "", 0) != 0) ::_exit(3);
  };
  EXPECT_TRUE(runConfined(Role::Main, [&] {
    everyone();
    UniqueFd event(::eventfd(0, EFD_CLOEXEC));  // the main loop makes and closes eventfds
    if (!event) ::_exit(4);
    int on = 1;
    if (::ioctl(event.get(), FIONBIO, &on) != 0) ::_exit(5);  // libuv's nonblocking switch
    std::thread([] {}).join();  // threads (a reset starts new vCPU threads)
  }).exitedWith(0));
  EXPECT_TRUE(runConfined(Role::Vcpu, [&] {
    everyone();
    UniqueFd event(::eventfd(0, EFD_CLOEXEC));  // a queue's ioeventfd, set up on a vCPU thread
    if (!event) ::_exit(4);
    uint64_t one = 1;
    if (::write(event.get(), &one, sizeof one) != sizeof one) ::_exit(5);
  }).exitedWith(0));
  EXPECT_TRUE(runConfined(Role::Io, [&] {
    everyone();
    char byte;
    if (::pread(STDIN_FILENO, &byte, 0, 0) < 0 && errno != ESPIPE) ::_exit(4);
    (void)::fdatasync(STDERR_FILENO);  // EINVAL on a pipe: the call itself is allowed
  }).exitedWith(0));
  int pair[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
  UniqueFd near(pair[0]), far(pair[1]);
  EXPECT_TRUE(runConfined(Role::Migration, [&] {
    everyone();
    // The stream on an fd: descriptor: send, poll, recv, tell a socket, end it, close it.
    uint8_t byte = 7;
    if (::send(near.get(), &byte, 1, MSG_NOSIGNAL | MSG_DONTWAIT) != 1) ::_exit(4);
    pollfd p{far.get(), POLLIN, 0};
    if (::poll(&p, 1, 1000) != 1) ::_exit(5);
    if (::recv(far.get(), &byte, 1, 0) != 1) ::_exit(6);
    int type = 0;
    socklen_t length = sizeof type;
    if (::getsockopt(near.get(), SOL_SOCKET, SO_TYPE, &type, &length) != 0) ::_exit(7);
    if (::fcntl(near.get(), F_GETFD) < 0 || ::shutdown(near.get(), SHUT_WR) != 0 || ::close(near.release()) != 0) ::_exit(8);
    // KVM dirty logging: ENOTTY on a socket, but the request itself is allowed.
    kvm_dirty_log log{};
    if (::ioctl(far.get(), KVM_GET_DIRTY_LOG, &log) == 0 || errno != ENOTTY) ::_exit(9);
  }).exitedWith(0));
}

// A thread's large buffers, freed, must not make glibc shrink a thread arena: that reads
// /proc/sys/vm/overcommit_memory (the migration thread's stream buffers did, and died by SIGSYS).
TEST(Sandbox, AThreadFreeingLargeBuffersOpensNoFile) {
  auto end = runConfined(Role::Main, [] {
    std::thread([] {
      if (!confineThread(Role::Migration)) ::_exit(4);
      // A freed 4 MiB mapping raises malloc's mmap threshold (to 4 MiB, trim threshold 8 MiB):
      // twelve 2 MiB buffers then come from the arena's heap, and freeing them trims it.
      {
        std::vector<uint8_t> mapped(size_t{4} << 20, 1);
        if (mapped.back() != 1) ::_exit(5);
      }
      std::vector<std::vector<uint8_t>> buffers;
      for (int i = 0; i < 12; ++i) buffers.emplace_back(size_t{2} << 20, 1);
      if (buffers.back().back() != 1) ::_exit(5);
      buffers.clear();
    }).join();
  });
  EXPECT_TRUE(end.exitedWith(0)) << end.status << " " << end.stderr_text;
}

TEST(Sandbox, TheMigrationThreadMakesNoSocketAndRunsNoVcpu) {
  auto socket = runConfined(Role::Migration, [] { (void)::socket(AF_UNIX, SOCK_STREAM, 0); });
  EXPECT_TRUE(socket.killedBy(SIGSYS)) << socket.status;
  EXPECT_EQ(socket.stderr_text, "vmm: seccomp: migration thread made a forbidden system call 41 (socket)\n");
  auto kvm = runConfined(Role::Migration, [] { (void)::ioctl(STDIN_FILENO, KVM_RUN, 0); });
  EXPECT_TRUE(kvm.killedBy(SIGSYS)) << kvm.status;
  EXPECT_EQ(kvm.stderr_text, "vmm: seccomp: migration thread made a forbidden system call 16 (ioctl) request 0xae80\n");
}

TEST(Sandbox, AForbiddenCallKillsBySigsysAndSaysWhich) {
  auto vcpu = runConfined(Role::Vcpu, [] {
    const char* argv[] = {"/bin/true", nullptr};
    ::execve(argv[0], const_cast<char**>(argv), nullptr);
  });
  EXPECT_TRUE(vcpu.killedBy(SIGSYS)) << vcpu.status;
  EXPECT_EQ(vcpu.stderr_text, "vmm: seccomp: vCPU thread made a forbidden system call 59 (execve)\n");

  auto io = runConfined(Role::Io, [] { (void)::socket(AF_INET, SOCK_STREAM, 0); });
  EXPECT_TRUE(io.killedBy(SIGSYS)) << io.status;
  EXPECT_EQ(io.stderr_text, "vmm: seccomp: I/O pool thread made a forbidden system call 41 (socket)\n");

  // The I/O pool may not touch KVM; the report names the ioctl request.
  auto kvm = runConfined(Role::Io, [] { (void)::ioctl(STDIN_FILENO, KVM_RUN, 0); });
  EXPECT_TRUE(kvm.killedBy(SIGSYS)) << kvm.status;
  EXPECT_EQ(kvm.stderr_text, "vmm: seccomp: I/O pool thread made a forbidden system call 16 (ioctl) request 0xae80\n");

  // The main loop may start threads, never processes, and opens no file after setup.
  auto fork = runConfined(Role::Main, [] { (void)::fork(); });
  EXPECT_TRUE(fork.killedBy(SIGSYS)) << fork.status;
  EXPECT_NE(fork.stderr_text.find("vmm: seccomp: main loop thread made a forbidden system call 56 (clone) flags 0x"), std::string::npos)
      << fork.stderr_text;
#ifndef VMMD_SANITIZER_SYSCALLS  // the sanitizer runtimes open files (/proc/self/maps) themselves
  auto open = runConfined(Role::Main, [] { (void)::open("/etc/hostname", O_RDONLY | O_CLOEXEC); });
  EXPECT_TRUE(open.killedBy(SIGSYS)) << open.status;
  EXPECT_EQ(open.stderr_text, "vmm: seccomp: main loop thread made a forbidden system call 257 (openat)\n");
#endif
}

// A thread that never narrowed itself has the process filter, the union of the roles: still no exec.
TEST(Sandbox, TheProcessFilterAloneForbidsExec) {
  auto end = runConfined(std::nullopt, [] {
    const char* argv[] = {"/bin/true", nullptr};
    ::execve(argv[0], const_cast<char**>(argv), nullptr);
  });
  EXPECT_TRUE(end.killedBy(SIGSYS)) << end.status;
  EXPECT_EQ(end.stderr_text, "vmm: seccomp: worker thread made a forbidden system call 59 (execve)\n");
}

}  // namespace
}  // namespace vmmd::sandbox
