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
#include "tests/daemon/temp_dir.h"

namespace vmmd::daemon {
namespace {

constexpr int kDefines = 1000;

struct ChildRun {
  std::set<std::string> acknowledged;
  int wait_status = 0;
};

// Runs the child on `path` and kills it after `kill_after` acknowledgements (kDefines: never).
ChildRun runChild(const std::string& path, int kill_after) {
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
    if (kill_after == 0 && !killed) {
      ::kill(child, SIGKILL);
      killed = true;
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
  // One early kill (during the schema migration or the first defines) and two anywhere.
  for (int kill_after : {0, std::uniform_int_distribution<int>(1, kDefines - 1)(rng),
                         std::uniform_int_distribution<int>(1, kDefines - 1)(rng)}) {
    SCOPED_TRACE("killed after " + std::to_string(kill_after) + " acknowledgements");
    testing::TempDir dir;
    std::string path = dir.file("vmmd.db");
    ChildRun run = runChild(path, kill_after);
    ASSERT_TRUE(WIFSIGNALED(run.wait_status) && WTERMSIG(run.wait_status) == SIGKILL)
        << "child was not killed; wait status " << run.wait_status;
    EXPECT_GE(static_cast<int>(run.acknowledged.size()), kill_after);
    expectAllAcknowledgedPresent(path, run);
  }
}

TEST(StoreDurability, CompleteRunKeepsEverything) {
  testing::TempDir dir;
  std::string path = dir.file("vmmd.db");
  ChildRun run = runChild(path, kDefines + 1);
  ASSERT_TRUE(WIFEXITED(run.wait_status) && WEXITSTATUS(run.wait_status) == 0) << run.wait_status;
  ASSERT_EQ(run.acknowledged.size(), static_cast<size_t>(kDefines));
  expectAllAcknowledgedPresent(path, run);
}

}  // namespace
}  // namespace vmmd::daemon
