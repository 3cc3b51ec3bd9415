#include "daemon/process/process_identity.h"

#include <gtest/gtest.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>

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

}  // namespace
}  // namespace vmmd::daemon
