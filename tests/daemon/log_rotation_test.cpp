#include "daemon/launch/log_rotation.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <iterator>

#include "base/unique_fd.h"
#include "tests/support/temp_dir.h"

namespace vmmd::daemon {
namespace {

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void append(int fd, const std::string& text) { ASSERT_EQ(::write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size())); }

// The worker holds worker.log open (O_APPEND) for its whole life; vmmd rotates it under it.
TEST(LogRotation, CopiesToDotOneAndTruncatesUnderTheWriter) {
  test_support::TempDir dir;
  std::string path = dir.file("worker.log");
  UniqueFd writer(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0640));
  ASSERT_TRUE(writer);
  append(writer.get(), std::string(100, 'a'));
  EXPECT_EQ(*rotateLogIfOver(path, 100), false);  // at the cap, not over it
  append(writer.get(), "b\n");
  EXPECT_EQ(*rotateLogIfOver(path, 100), true);
  EXPECT_EQ(readFile(path + ".1"), std::string(100, 'a') + "b\n");
  EXPECT_EQ(readFile(path), "");
  append(writer.get(), "after\n");  // lands at the new start, no hole where the old text was
  EXPECT_EQ(readFile(path), "after\n");
  append(writer.get(), std::string(200, 'c'));
  EXPECT_EQ(*rotateLogIfOver(path, 100), true);  // the previous .1 is replaced
  EXPECT_EQ(readFile(path + ".1"), "after\n" + std::string(200, 'c'));
  EXPECT_FALSE(std::ifstream(path + ".1.tmp").good());
}

TEST(LogRotation, AMissingLogIsNothingToDo) {
  test_support::TempDir dir;
  auto rotated = rotateLogIfOver(dir.file("worker.log"), 100);
  ASSERT_TRUE(rotated.ok());
  EXPECT_FALSE(*rotated);
}

}  // namespace
}  // namespace vmmd::daemon
