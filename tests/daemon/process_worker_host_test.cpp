// ProcessWorkerHost's look-ups of workers vmmd did not record: by -uuid (a worker spawned by a
// vmmd killed before it recorded the pid, not yet holding its pidfile lock on a slow host).
#include "daemon/supervisor/process_worker_host.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

namespace vmmd::daemon {
namespace {

// A child whose command line holds "-uuid UUID" (sh ignores the extra arguments). Its sleep gets
// none of the test's output pipes: ctest waits for those to close, and the sleep outlives sh.
pid_t spawnWithUuid(const std::string& uuid) {
  pid_t pid = ::fork();
  if (pid == 0) {
    ::execl("/bin/sh", "sh", "-c", "sleep 30 </dev/null >/dev/null 2>&1; :", "-uuid", uuid.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  return pid;
}

TEST(ProcessWorkerHost, FindsAProcessByItsUuid) {
  ProcessWorkerHost host(nullptr);
  const std::string uuid = "5f0e3c1a-0000-4000-8000-" + std::to_string(::getpid() + 100000000000LL);
  pid_t child = spawnWithUuid(uuid);
  ASSERT_GT(child, 0);
  std::optional<pid_t> found;
  for (int i = 0; i < 200 && !found; ++i) {  // until the child has exec'd (its cmdline is sh's)
    found = host.processWithUuid(uuid);
    if (!found) ::usleep(10000);
  }
  EXPECT_EQ(found, child);
  EXPECT_EQ(host.processWithUuid(uuid + "-other"), std::nullopt);
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
  EXPECT_EQ(host.processWithUuid(uuid), std::nullopt);
}

}  // namespace
}  // namespace vmmd::daemon
