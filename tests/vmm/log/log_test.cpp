// The logger's line format (vmmd and the tests read "vmm: ..." lines) and its levels.
#include "vmm/log/log.h"

#include <gtest/gtest.h>

#include <cstdlib>

namespace vmmd::log {
namespace {

TEST(Log, LinesKeepTheirForm) {
  EXPECT_EQ(formatLine(Level::Error, "reset failed: x"), "vmm: reset failed: x\n");
  EXPECT_EQ(formatLine(Level::Warning, "cpu flag"), "vmm: warning: cpu flag\n");
  EXPECT_EQ(formatLine(Level::Info, "already ends\n"), "vmm: already ends\n");
}

TEST(Log, LevelsParseAndComeFromTheEnvironment) {
  Level parsed = Level::Info;
  EXPECT_TRUE(parseLevel("debug", parsed));
  EXPECT_EQ(parsed, Level::Debug);
  EXPECT_FALSE(parseLevel("loud", parsed));
  EXPECT_EQ(parsed, Level::Debug);

  setLevel(Level::Info);
  ::setenv("VMM_LOG", "error", 1);
  setLevelFromEnvironment();
  EXPECT_EQ(level(), Level::Error);
  ::setenv("VMM_LOG", "nonsense", 1);
  setLevelFromEnvironment();
  EXPECT_EQ(level(), Level::Error);
  ::unsetenv("VMM_LOG");
  setLevel(Level::Info);
}

TEST(Log, WritesOnlyEnabledLevels) {
  setLevel(Level::Warning);
  testing::internal::CaptureStderr();
  info("quiet");
  warning("loud");
  debug("quieter");
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "vmm: warning: loud\n");
  setLevel(Level::Info);
}

}  // namespace
}  // namespace vmmd::log
