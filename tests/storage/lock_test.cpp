// Image locks: we exclude ourselves, and QEMU and we exclude each other (QEMU's lock bytes).
#include <gtest/gtest.h>
#include <signal.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "base/unique_fd.h"
#include "storage/image_lock.h"
#include "storage/qcow2.h"
#include "tests/storage/test_util.h"

namespace vmmd::storage {
namespace {

using test::ScratchDir;

Result<std::unique_ptr<BlockDevice>> openRw(const std::string& path, bool readOnly = false) {
  OpenOptions o;
  o.readOnly = readOnly;
  return openImage(path, o);
}

TEST(StorageLock, TwoWritersExcludeEachOther) {
  ScratchDir dir;
  Qcow2CreateOptions c;
  c.size = 1 << 20;
  ASSERT_TRUE(createQcow2(dir / "a.qcow2", c).ok());
  auto first = openRw(dir / "a.qcow2");
  ASSERT_TRUE(first.ok());
  auto second = openRw(dir / "a.qcow2");
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.error().message().find("Failed to get \"write\" lock"), std::string::npos) << second.error().message();
  auto reader = openRw(dir / "a.qcow2", true);
  ASSERT_FALSE(reader.ok());
  EXPECT_NE(reader.error().message().find("Failed to get shared \"write\" lock"), std::string::npos);
  first->reset();
  EXPECT_TRUE(openRw(dir / "a.qcow2").ok());
}

TEST(StorageLock, ReadersShareAndBlockWriters) {
  ScratchDir dir;
  Qcow2CreateOptions c;
  c.size = 1 << 20;
  ASSERT_TRUE(createQcow2(dir / "a.qcow2", c).ok());
  auto r1 = openRw(dir / "a.qcow2", true);
  auto r2 = openRw(dir / "a.qcow2", true);
  ASSERT_TRUE(r1.ok());
  ASSERT_TRUE(r2.ok());
  auto w = openRw(dir / "a.qcow2");
  ASSERT_FALSE(w.ok());
  EXPECT_NE(w.error().message().find("lock"), std::string::npos);
}

TEST(StorageLock, BackingFileIsLockedAgainstWriters) {
  ScratchDir dir;
  Qcow2CreateOptions c;
  c.size = 1 << 20;
  ASSERT_TRUE(createQcow2(dir / "base.qcow2", c).ok());
  c.backingFile = "base.qcow2";
  c.backingFormat = "qcow2";
  ASSERT_TRUE(createQcow2(dir / "top.qcow2", c).ok());
  auto top = openRw(dir / "top.qcow2");
  ASSERT_TRUE(top.ok());
  EXPECT_FALSE(openRw(dir / "base.qcow2").ok());
  EXPECT_TRUE(openRw(dir / "base.qcow2", true).ok());
}

// A qemu-io process holding the image open; killed when the test ends.
struct QemuIo {
  pid_t pid = -1;
  QemuIo(const std::string& path, bool readOnly) {
    pid = ::fork();
    if (pid == 0) {
      if (readOnly) {
        ::execlp("qemu-io", "qemu-io", "-r", "-c", "sleep 20000", path.c_str(), nullptr);
      } else {
        ::execlp("qemu-io", "qemu-io", "-c", "sleep 20000", path.c_str(), nullptr);
      }
      ::_exit(127);
    }
  }
  ~QemuIo() {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  }
};

// Waits until qemu-io has taken its locks (our writable open starts failing).
bool waitLocked(const std::string& path, bool readOnly) {
  for (int i = 0; i < 100; ++i) {
    if (!openRw(path, readOnly).ok()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

TEST(StorageLock, QemuWriterBlocksUs) {
  if (test::run("qemu-io --version").status != 0) GTEST_SKIP() << "qemu-io not installed";
  ScratchDir dir;
  Qcow2CreateOptions c;
  c.size = 1 << 20;
  ASSERT_TRUE(createQcow2(dir / "a.qcow2", c).ok());
  QemuIo q(dir / "a.qcow2", false);
  ASSERT_TRUE(waitLocked(dir / "a.qcow2", false));
  auto w = openRw(dir / "a.qcow2");
  ASSERT_FALSE(w.ok());
  EXPECT_NE(w.error().message().find("Failed to get \"write\" lock"), std::string::npos) << w.error().message();
  auto r = openRw(dir / "a.qcow2", true);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("Failed to get shared \"write\" lock"), std::string::npos) << r.error().message();
}

TEST(StorageLock, QemuReaderBlocksOurWriterOnly) {
  if (test::run("qemu-io --version").status != 0) GTEST_SKIP() << "qemu-io not installed";
  ScratchDir dir;
  Qcow2CreateOptions c;
  c.size = 1 << 20;
  ASSERT_TRUE(createQcow2(dir / "a.qcow2", c).ok());
  QemuIo q(dir / "a.qcow2", true);
  ASSERT_TRUE(waitLocked(dir / "a.qcow2", false));
  EXPECT_TRUE(openRw(dir / "a.qcow2", true).ok());
}

TEST(StorageLock, WeBlockQemu) {
  REQUIRE_QEMU_IMG();
  ScratchDir dir;
  Qcow2CreateOptions c;
  c.size = 1 << 20;
  ASSERT_TRUE(createQcow2(dir / "a.qcow2", c).ok());
  {
    auto w = openRw(dir / "a.qcow2");
    ASSERT_TRUE(w.ok());
    auto info = test::run("qemu-img info " + dir / "a.qcow2");
    EXPECT_NE(info.status, 0);
    EXPECT_NE(info.output.find("Failed to get shared \"write\" lock"), std::string::npos) << info.output;
    auto io = test::run("qemu-io -c 'read 0 512' " + dir / "a.qcow2");
    EXPECT_NE(io.output.find("Failed to get \"write\" lock"), std::string::npos) << io.output;
  }
  {
    auto r = openRw(dir / "a.qcow2", true);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(test::run("qemu-img info " + dir / "a.qcow2").status, 0);  // readers share
    auto io = test::run("qemu-io -c 'write 0 512' " + dir / "a.qcow2");
    EXPECT_NE(io.output.find("Failed to get \"write\" lock"), std::string::npos) << io.output;
  }
}

// A migration's source drops its locks through any descriptor of the open file description that
// took them (vmm's images come in fd sets: every open of one is a dup of the same description).
TEST(StorageLock, UnlockThroughADupLetsAnotherWriterIn) {
  ScratchDir dir;
  Qcow2CreateOptions c;
  c.size = 1 << 20;
  ASSERT_TRUE(createQcow2(dir / "a.qcow2", c).ok());
  UniqueFd holder(::open((dir / "a.qcow2").c_str(), O_RDWR | O_CLOEXEC));
  ASSERT_TRUE(holder);
  ASSERT_TRUE(lockImage(holder.get(), dir / "a.qcow2", true).ok());
  EXPECT_FALSE(openRw(dir / "a.qcow2").ok());
  // Another description of the same file holds nothing: unlocking through it changes nothing.
  UniqueFd other(::open((dir / "a.qcow2").c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(unlockImage(other.get(), dir / "a.qcow2").ok());
  EXPECT_FALSE(openRw(dir / "a.qcow2").ok());
  UniqueFd dup(::fcntl(holder.get(), F_DUPFD_CLOEXEC, 0));
  ASSERT_TRUE(unlockImage(dup.get(), dir / "a.qcow2").ok());
  auto writer = openRw(dir / "a.qcow2");
  EXPECT_TRUE(writer.ok()) << writer.error().message();
}

}  // namespace
}  // namespace vmmd::storage
