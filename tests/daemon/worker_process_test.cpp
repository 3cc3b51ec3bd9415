// WorkerProcess against real processes: exit status and signal of a spawned child, its own
// session, the pidfd watch of an adopted (non-child) process, and pid-reuse protection.
#include "daemon/supervisor/worker_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <optional>

#include <gtest/gtest.h>

#include "daemon/process/process_identity.h"
#include "qmp/unix_socket.h"
#include "tests/support/cannot_run.h"
#include "tests/support/temp_dir.h"

namespace vmmd::daemon {
namespace {

using test_support::TempDir;

struct Loop {
  uv_loop_t loop{};
  Loop() { uv_loop_init(&loop); }
  ~Loop() {
    uv_run(&loop, UV_RUN_NOWAIT);
    uv_loop_close(&loop);
  }
  // Runs until `done` or ~5 s.
  template <typename Pred>
  bool runUntil(Pred done) {
    for (int i = 0; i < 5000 && !done(); ++i) {
      uv_run(&loop, UV_RUN_NOWAIT);
      if (!done()) ::usleep(1000);
    }
    return done();
  }
};

TEST(WorkerProcess, SpawnReportsExitStatusAndLogsOutput) {
  TempDir dir;
  Loop loop;
  std::optional<WorkerExit> exit;
  auto p = WorkerProcess::spawn(&loop.loop, "/bin/sh", {"-c", "echo hello; echo oops >&2; exit 3"}, dir.file("log"),
                                [&](const WorkerExit& e) { exit = e; });
  ASSERT_TRUE(p.ok()) << p.error().message();
  ASSERT_TRUE(loop.runUntil([&] { return exit.has_value(); }));
  EXPECT_EQ(exit->status, 3);
  EXPECT_FALSE(exit->signal);
  EXPECT_EQ(exit->describe(), "exited with status 3");
  std::ifstream log(dir.file("log"));
  std::string all((std::istreambuf_iterator<char>(log)), {});
  EXPECT_EQ(all, "hello\noops\n");
}

TEST(WorkerProcess, SpawnedChildLeadsItsOwnSessionAndReportsItsSignal) {
  TempDir dir;
  Loop loop;
  std::optional<WorkerExit> exit;
  auto p = WorkerProcess::spawn(&loop.loop, "/bin/sleep", {"30"}, dir.file("log"), [&](const WorkerExit& e) { exit = e; });
  ASSERT_TRUE(p.ok()) << p.error().message();
  pid_t pid = (*p)->pid();
  EXPECT_EQ(::getsid(pid), pid) << "not in its own session: a signal to vmmd's group would reach it";
  ASSERT_TRUE((*p)->signal(SIGKILL).ok());
  ASSERT_TRUE(loop.runUntil([&] { return exit.has_value(); }));
  EXPECT_EQ(exit->signal, SIGKILL);
  EXPECT_NE(exit->describe().find("killed by signal 9"), std::string::npos);
  EXPECT_FALSE((*p)->signal(SIGKILL).ok()) << "signalled a process that has exited";
}

// A root vmmd's worker runs as the identity it is given: that uid and gid, no supplementary group,
// and so no capability in its effective or permitted set. (The test host runs as root; as anyone
// else the switch cannot be made, which vmmd knows: it passes no identity then.)
TEST(WorkerProcess, AnIdentityMakesTheChildAnUnprivilegedUserWithoutCapabilities) {
  if (::geteuid() != 0) VMMD_CANNOT_RUN("changing a child's uid needs root");
  TempDir dir;
  ::chmod(dir.path().c_str(), 0711);
  Loop loop;
  std::optional<WorkerExit> exit;
  auto p = WorkerProcess::spawn(&loop.loop, "/bin/sh", {"-c", "cat /proc/self/status; ls " + dir.path()}, dir.file("log"),
                                [&](const WorkerExit& e) { exit = e; }, {}, WorkerIdentity{1879048192, 1879048193});
  ASSERT_TRUE(p.ok()) << p.error().message();
  ASSERT_TRUE(loop.runUntil([&] { return exit.has_value(); }));
  std::ifstream log(dir.file("log"));
  std::string status((std::istreambuf_iterator<char>(log)), {});
  EXPECT_NE(status.find("\nUid:\t1879048192\t1879048192\t1879048192\t1879048192\n"), std::string::npos) << status;
  EXPECT_NE(status.find("\nGid:\t1879048193\t1879048193\t1879048193\t1879048193\n"), std::string::npos) << status;
  EXPECT_NE(status.find("\nGroups:\t \n"), std::string::npos) << status;
  EXPECT_NE(status.find("\nCapEff:\t0000000000000000\n"), std::string::npos) << status;
  EXPECT_NE(status.find("\nCapPrm:\t0000000000000000\n"), std::string::npos) << status;
  // What the child cannot do any more: read a directory of root's (mode 0711).
  EXPECT_NE(status.find("Permission denied"), std::string::npos) << status;
  EXPECT_NE(exit->status, 0);
}

// The QMP listener reaches the worker as fd 3 and nowhere else: vmmd's own fds (all close-on-exec,
// like this second listener) stay behind, so no worker holds another VM's socket.
TEST(WorkerProcess, PassedFdsLandFromFdThreeAndNothingElseLeaks) {
  TempDir dir;
  Loop loop;
  auto passed = qmp::listenUnix(dir.file("qmp.sock"));
  auto other = qmp::listenUnix(dir.file("other.sock"));
  ASSERT_TRUE(passed.ok() && other.ok());
  std::optional<WorkerExit> exit;
  // The child lists its open fds as "N target" lines.
  auto p = WorkerProcess::spawn(&loop.loop, "/bin/sh", {"-c", "for f in /proc/self/fd/*; do echo \"${f##*/} $(readlink $f)\"; done"},
                                dir.file("log"), [&](const WorkerExit& e) { exit = e; }, {passed->get()});
  ASSERT_TRUE(p.ok()) << p.error().message();
  ASSERT_TRUE(loop.runUntil([&] { return exit.has_value(); }));
  EXPECT_EQ(exit->status, 0);
  std::ifstream log(dir.file("log"));
  std::string all((std::istreambuf_iterator<char>(log)), {});
  auto socketName = [](int fd) {
    struct stat st {};
    ::fstat(fd, &st);
    return "socket:[" + std::to_string(st.st_ino) + "]";
  };
  std::string passed_name = socketName(passed->get());
  EXPECT_NE(all.find("\n3 " + passed_name + "\n"), std::string::npos) << "fd 3 is not the passed socket:\n" << all;
  EXPECT_EQ(all.find(passed_name), all.rfind(passed_name)) << "the passed socket twice:\n" << all;
  EXPECT_EQ(all.find(socketName(other->get())), std::string::npos) << "another socket leaked into the worker:\n" << all;
  int flags = ::fcntl(passed->get(), F_GETFD);
  EXPECT_TRUE(flags & FD_CLOEXEC) << "the parent's copy must stay close-on-exec";
}

TEST(WorkerProcess, SpawnOfAMissingBinaryFails) {
  TempDir dir;
  Loop loop;
  auto p = WorkerProcess::spawn(&loop.loop, "/nonexistent/vmm", {}, dir.file("log"), [](const WorkerExit&) {});
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.error().message().find("/nonexistent/vmm"), std::string::npos);
}

TEST(WorkerProcess, AdoptWatchesANonChildThroughItsPidfd) {
  // A grandchild stands in for a worker left by an earlier vmmd: not ours to wait for.
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  pid_t middle = ::fork();
  ASSERT_GE(middle, 0);
  if (middle == 0) {
    pid_t worker = ::fork();
    if (worker == 0) {
      ::execl("/bin/sleep", "sleep", "30", nullptr);
      ::_exit(127);
    }
    (void)!::write(fds[1], &worker, sizeof worker);
    ::_exit(0);
  }
  pid_t worker = 0;
  ASSERT_EQ(::read(fds[0], &worker, sizeof worker), static_cast<ssize_t>(sizeof worker));
  ::close(fds[0]);
  ::close(fds[1]);
  ::waitpid(middle, nullptr, 0);
  auto start = processStartTime(worker);
  ASSERT_TRUE(start.ok());

  Loop loop;
  auto wrong = WorkerProcess::adopt(&loop.loop, worker, *start + 1, [](const WorkerExit&) {});
  EXPECT_FALSE(wrong.ok()) << "adopted a process with another start time (pid reuse)";

  std::optional<WorkerExit> exit;
  auto p = WorkerProcess::adopt(&loop.loop, worker, *start, [&](const WorkerExit& e) { exit = e; });
  ASSERT_TRUE(p.ok()) << p.error().message();
  ASSERT_TRUE((*p)->signal(SIGKILL).ok());
  ASSERT_TRUE(loop.runUntil([&] { return exit.has_value(); }));
  EXPECT_FALSE(exit->status);
  EXPECT_FALSE(exit->signal);
  EXPECT_NE(exit->describe().find("unknown"), std::string::npos);
}

TEST(WorkerProcess, AdoptOfAGoneProcessFails) {
  pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  ::waitpid(child, nullptr, 0);
  Loop loop;
  auto p = WorkerProcess::adopt(&loop.loop, child, 1, [](const WorkerExit&) {});
  EXPECT_FALSE(p.ok());
}

}  // namespace
}  // namespace vmmd::daemon
