#include "daemon/process/process_identity.h"

#include <gtest/gtest.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <thread>

#include "base/unique_fd.h"
#include "tests/support/cannot_run.h"
#include "tests/support/temp_dir.h"

namespace vmmd::daemon {
namespace {

TEST(ProcessIdentity, ParsesField22AfterTheLastParenthesis) {
  // A command name with spaces and ')' must not shift the fields.
  std::string stat = "1234 (a) b (c) S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654321 1000 10 "
                     "18446744073709551615\n";
  auto start = parseStartTime(stat);
  ASSERT_TRUE(start.ok()) << start.error().message();
  EXPECT_EQ(*start, 987654321u);
  EXPECT_FALSE(parseStartTime("1234 (x S 1 2").ok());
  EXPECT_FALSE(parseStartTime("1234 (x) S 1 2 3").ok());
  EXPECT_FALSE(parseStartTime("1234 (x) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 12x 0").ok());
}

TEST(ProcessIdentity, FindsTheFlockHolderOfAFileInProcLocks) {
  std::string locks =
      "1: POSIX  ADVISORY  WRITE 111 00:1f:1234 0 EOF\n"
      "2: FLOCK  ADVISORY  WRITE 222 08:02:1234 0 EOF\n"
      "2: -> FLOCK  ADVISORY  WRITE 333 00:1f:1234 0 EOF\n"
      "3: FLOCK  ADVISORY  WRITE 444 00:1f:1234 0 EOF\n";
  EXPECT_EQ(parseFlockHolder(locks, 0x00, 0x1f, 1234), 444);  // not the POSIX lock, not the waiter
  EXPECT_EQ(parseFlockHolder(locks, 0x08, 0x02, 1234), 222);
  EXPECT_EQ(parseFlockHolder(locks, 0x00, 0x1f, 12345), std::nullopt);
  EXPECT_EQ(parseFlockHolder("", 0, 0x1f, 1234), std::nullopt);
}

TEST(ProcessIdentity, TheHolderOfAPidfileLockIsFound) {
  test_support::TempDir dir;
  std::string path = dir.file("vmm.pid");
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
  ASSERT_TRUE(fd);
  EXPECT_EQ(flockHolder(path), std::nullopt);  // a pid file nobody holds names nobody
  ASSERT_EQ(::flock(fd.get(), LOCK_EX | LOCK_NB), 0);
  EXPECT_EQ(flockHolder(path), ::getpid());
  EXPECT_EQ(flockHolder(dir.file("absent")), std::nullopt);
}

TEST(ProcessIdentity, BootIdExeAndArgvOfThisProcess) {
  auto boot = bootId();
  ASSERT_TRUE(boot.ok()) << boot.error().message();
  EXPECT_EQ(boot->size(), 36u) << *boot;
  auto exe = processExe(::getpid());
  ASSERT_TRUE(exe.ok());
  EXPECT_NE(exe->find("daemon_definition_test"), std::string::npos) << *exe;
  auto argv = processArgv(::getpid());
  ASSERT_TRUE(argv.ok());
  ASSERT_FALSE(argv->empty());
  EXPECT_NE((*argv)[0].find("daemon_definition_test"), std::string::npos);
}

TEST(ProcessIdentity, OwnProcessIsStable) {
  auto first = processStartTime(::getpid());
  ASSERT_TRUE(first.ok()) << first.error().message();
  auto second = processStartTime(::getpid());
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(*first, *second);
  EXPECT_TRUE(isSameProcess(::getpid(), *first));
  EXPECT_FALSE(isSameProcess(::getpid(), *first + 1));
  EXPECT_FALSE(isSameProcess(0, *first));
}

TEST(ProcessIdentity, ChildWithAHostileNameAndAfterItIsGone) {
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::prctl(PR_SET_NAME, "x) (y z ) 1 2", 0, 0, 0);
    char byte = 1;
    (void)!::write(ready[1], &byte, 1);
    ::pause();
    ::_exit(0);
  }
  ::close(ready[1]);
  char byte = 0;
  ASSERT_EQ(::read(ready[0], &byte, 1), 1);
  ::close(ready[0]);
  auto mine = processStartTime(::getpid());
  auto start = processStartTime(child);
  ASSERT_TRUE(start.ok()) << start.error().message();
  EXPECT_GE(*start, *mine);  // started after us, in clock ticks since boot
  EXPECT_TRUE(isSameProcess(child, *start));
  ::kill(child, SIGKILL);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  auto gone = processStartTime(child);
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.error().code(), ENOENT);
  EXPECT_FALSE(isSameProcess(child, *start));
}

TEST(ProcessIdentity, ZombieIsDetected) {
  pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  for (int i = 0; i < 1000 && !isZombie(child); ++i) ::usleep(1000);
  EXPECT_TRUE(isZombie(child));
  ::waitpid(child, nullptr, 0);
  EXPECT_FALSE(isZombie(::getpid()));
}

// vmmd.service leaves CAP_SYS_PTRACE out of vmmd's bounding set, and each worker runs as its own
// uid: /proc/PID/exe (ptrace read access) of such a worker is still read, as the worker's fsuid,
// so that a restarted vmmd recognises its workers.
TEST(ProcessIdentity, ExeOfAnotherUidsProcessWithoutCapSysPtrace) {
  if (::geteuid() != 0) VMMD_CANNOT_RUN("taking another uid needs root");
  constexpr uid_t kWorkerId = 65534;
  pid_t worker = ::fork();
  ASSERT_GE(worker, 0);
  if (worker == 0) {
    // As vmmd starts a worker: the ids first, then exec (which makes the process dumpable again).
    if (::setresgid(kWorkerId, kWorkerId, kWorkerId) != 0 || ::setresuid(kWorkerId, kWorkerId, kWorkerId) != 0) ::_exit(1);
    ::execl("/bin/sleep", "sleep", "60", static_cast<char*>(nullptr));
    ::_exit(1);
  }
  for (int i = 0; i < 500; ++i) {
    auto argv = processArgv(worker);
    if (argv && !argv->empty() && (*argv)[0] == "sleep") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::string expected = std::filesystem::canonical("/bin/sleep").string();
  pid_t vmmd = ::fork();
  ASSERT_GE(vmmd, 0);
  if (vmmd == 0) {
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[2]{};
    if (::syscall(SYS_capget, &header, data) != 0) ::_exit(10);
    data[CAP_TO_INDEX(CAP_SYS_PTRACE)].effective &= ~CAP_TO_MASK(CAP_SYS_PTRACE);
    data[CAP_TO_INDEX(CAP_SYS_PTRACE)].permitted &= ~CAP_TO_MASK(CAP_SYS_PTRACE);
    if (::syscall(SYS_capset, &header, data) != 0) ::_exit(10);
    std::string link = "/proc/" + std::to_string(worker) + "/exe";
    char target[256];
    if (::readlink(link.c_str(), target, sizeof target) >= 0) ::_exit(11);  // the set-up shows nothing
    auto exe = processExe(worker);
    if (!exe) ::_exit(12);
    if (*exe != expected) ::_exit(13);
    // The thread's own file-system ids are back: root's file access again.
    if (::access("/proc/1/environ", R_OK) != 0) ::_exit(14);
    ::_exit(0);
  }
  int status = 0;
  ::waitpid(vmmd, &status, 0);
  ::kill(worker, SIGKILL);
  ::waitpid(worker, nullptr, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_NE(WEXITSTATUS(status), 10) << "capget/capset failed";
  EXPECT_NE(WEXITSTATUS(status), 11) << "/proc/PID/exe was readable without CAP_SYS_PTRACE: the test shows nothing";
  EXPECT_NE(WEXITSTATUS(status), 12) << "processExe failed without CAP_SYS_PTRACE";
  EXPECT_NE(WEXITSTATUS(status), 13) << "processExe read another target than " << expected;
  EXPECT_NE(WEXITSTATUS(status), 14) << "the file-system ids were not restored";
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

}  // namespace
}  // namespace vmmd::daemon
