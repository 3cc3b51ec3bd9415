// "Nothing acknowledged is lost": a child process defines VMs and reports each one after its
// commit; it is killed with SIGKILL at a random point; the reopened store must hold every VM it
// reported, and pass SQLite's integrity check.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <random>
#include <set>
#include <string>

#include "daemon/store/store.h"
#include "tests/support/temp_dir.h"

namespace vmmd::daemon {
namespace {

constexpr int kDefines = 1000;

struct ChildRun {
  std::set<std::string> acknowledged;
  int wait_status = 0;
};

// Runs the child on `path` and kills it after `kill_after` acknowledgements (above kDefines:
// never). With kill_after == 0 it is killed `early_kill_us` after it was started, before or
// during the schema migration or the first defines.
ChildRun runChild(const std::string& path, int kill_after, int early_kill_us = 0) {
  ChildRun run;
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) {
    ADD_FAILURE() << "pipe";
    return run;
  }
  pid_t child = ::fork();
  if (child == 0) {
    ::dup2(out[1], STDOUT_FILENO);
    std::string count = std::to_string(kDefines);
    ::execl(VMMD_STORE_DEFINE_CHILD, VMMD_STORE_DEFINE_CHILD, path.c_str(), count.c_str(), nullptr);
    ::_exit(127);
  }
  ::close(out[1]);
  std::string pending;
  int lines = 0;
  bool killed = false;
  if (kill_after == 0) {
    ::usleep(static_cast<useconds_t>(early_kill_us));
    ::kill(child, SIGKILL);
    killed = true;
  }
  char buffer[4096];
  for (;;) {
    ssize_t n = ::read(out[0], buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // EOF: the child is gone and everything it wrote has been read
    pending.append(buffer, static_cast<size_t>(n));
    for (size_t nl; (nl = pending.find('\n')) != std::string::npos; pending.erase(0, nl + 1)) {
      run.acknowledged.insert(pending.substr(0, nl));
      if (++lines >= kill_after && !killed) {
        ::kill(child, SIGKILL);
        killed = true;
      }
    }
  }
  ::close(out[0]);
  ::waitpid(child, &run.wait_status, 0);
  EXPECT_TRUE(pending.empty()) << "a partial line: " << pending;
  return run;
}

void expectAllAcknowledgedPresent(const std::string& path, const ChildRun& run) {
  auto store = Store::open(path);
  ASSERT_TRUE(store.ok()) << store.error().message();
  auto integrity = store->integrityCheck();
  ASSERT_TRUE(integrity.ok());
  EXPECT_EQ(*integrity, "ok");
  auto all = store->definitions();
  ASSERT_TRUE(all.ok()) << all.error().message();
  std::set<std::string> stored;
  for (const auto& d : *all) stored.insert(d.definition.name);
  for (const std::string& name : run.acknowledged) EXPECT_TRUE(stored.count(name)) << "lost acknowledged " << name;
  // At most one define can have committed without its acknowledgement reaching the pipe.
  EXPECT_LE(stored.size(), run.acknowledged.size() + 1);
}

TEST(StoreDurability, KillDuringDefinesLosesNothingAcknowledged) {
  std::random_device seed;
  std::mt19937 rng(seed());
  // An early kill (the child's exec, schema migration or first defines), one anywhere in the run,
  // and a run left to finish, which shows the child really makes every define.
  const int early_us = std::uniform_int_distribution<int>(0, 30000)(rng);
  for (int kill_after : {0, std::uniform_int_distribution<int>(1, kDefines - 1)(rng), kDefines + 1}) {
    SCOPED_TRACE("kill after " + std::to_string(kill_after) + " acknowledgements" +
                 (kill_after == 0 ? " (" + std::to_string(early_us) + " us after the start)" : ""));
    test_support::TempDir dir;
    std::string path = dir.file("vmmd.db");
    ChildRun run = runChild(path, kill_after, early_us);
    if (kill_after > kDefines) {
      ASSERT_TRUE(WIFEXITED(run.wait_status) && WEXITSTATUS(run.wait_status) == 0) << run.wait_status;
      EXPECT_EQ(run.acknowledged.size(), static_cast<size_t>(kDefines));
    } else {
      ASSERT_TRUE(WIFSIGNALED(run.wait_status) && WTERMSIG(run.wait_status) == SIGKILL)
          << "child was not killed; wait status " << run.wait_status;
      EXPECT_GE(static_cast<int>(run.acknowledged.size()), kill_after);
    }
    expectAllAcknowledgedPresent(path, run);
  }
}

}  // namespace
}  // namespace vmmd::daemon
