// The logger's line format (vmmd and the tests read "vmm: ..." lines), its levels, and the journal
// priority prefixes it adds only when stderr is the journal.
#include "base/log.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

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
  setLevelFromEnvironment("VMM_LOG");
  EXPECT_EQ(level(), Level::Error);
  ::setenv("VMM_LOG", "nonsense", 1);
  setLevelFromEnvironment("VMM_LOG");
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

TEST(Log, ProgramNamesTheLines) {
  setProgram("vmmd");
  EXPECT_EQ(formatLine(Level::Info, "started"), "vmmd: started\n");
  setProgram("vmm");
}

// stderr redirected to a file while `body` runs; returns what was written there.
template <typename Body>
std::string stderrToFile(const char* journal_stream_of_file, Body body) {
  std::string path = (std::filesystem::temp_directory_path() / ("vmmd-log-test-" + std::to_string(::getpid()))).string();
  int file = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  EXPECT_GE(file, 0);
  struct stat st{};
  ::fstat(file, &st);
  std::string stream = journal_stream_of_file ? journal_stream_of_file
                                              : std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
  ::setenv("JOURNAL_STREAM", stream.c_str(), 1);
  int saved = ::dup(STDERR_FILENO);
  ::dup2(file, STDERR_FILENO);
  redetectJournal();
  body();
  ::dup2(saved, STDERR_FILENO);
  ::close(saved);
  ::close(file);
  ::unsetenv("JOURNAL_STREAM");
  redetectJournal();
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  std::filesystem::remove(path);
  return text.str();
}

TEST(Log, JournalGetsPriorities) {
  std::string written = stderrToFile(nullptr, [] {
    EXPECT_TRUE(toJournal());
    error("failed");
    warning("careful");
    info("started");
  });
  EXPECT_EQ(written, "<3>failed\n<4>careful\n<6>started\n");
}

TEST(Log, InheritedJournalStreamOfAnotherFileIsIgnored) {
  // A worker inherits vmmd's JOURNAL_STREAM but writes to its own log file: plain lines.
  std::string written = stderrToFile("1:2", [] {
    EXPECT_FALSE(toJournal());
    info("started");
  });
  EXPECT_EQ(written, "vmm: started\n");
}

}  // namespace
}  // namespace vmmd::log
