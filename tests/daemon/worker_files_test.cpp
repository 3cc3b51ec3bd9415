// worker_files: which files vmmd opens for a worker, how, and what the worker is told.
#include "daemon/launch/worker_files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <gtest/gtest.h>

#include <fstream>
#include <map>

#include "storage/qcow2.h"
#include "tests/support/temp_dir.h"

namespace vmmd::daemon {
namespace {

class WorkerFilesTest : public ::testing::Test {
 protected:
  WorkerFilesTest() {
    std::ofstream(dir_ / "kernel") << "a kernel";
    std::ofstream(dir_ / "initrd") << "an initrd";
    std::ofstream(dir_ / "base.raw") << std::string(65536, '\0');
    def_.name = "a";
    def_.kernel = dir_ / "kernel";
  }

  // Opens for real and notes each call: the path and whether it asked to write.
  FileOpener recordingOpener() {
    return [this](const std::string& path, int flags) {
      opened_[path] = (flags & O_ACCMODE);
      return openPlainFile(path, flags);
    };
  }

  void qcow2(const std::string& name, const std::string& backing, const std::string& format) {
    storage::Qcow2CreateOptions options;
    options.size = 1 << 20;
    options.backingFile = backing;
    options.backingFormat = format;
    auto created = storage::createQcow2(dir_ / name, options);
    ASSERT_TRUE(created.ok()) << created.error().message();
  }

  void addDisk(const std::string& path, DiskFormat format, bool readonly = false) {
    def_.disks.push_back(DiskSpec{"disk" + std::to_string(def_.disks.size()), path, format, readonly});
  }

  test_support::TempDir dir_{"worker-files"};
  VmDefinition def_;
  std::map<std::string, int> opened_;
};

TEST_F(WorkerFilesTest, KernelInitrdAndDisksAreOpenedInTheirModes) {
  def_.initrd = dir_ / "initrd";
  addDisk(dir_ / "base.raw", DiskFormat::kRaw);
  std::ofstream(dir_ / "cdrom.raw") << "iso";
  addDisk(dir_ / "cdrom.raw", DiskFormat::kRaw, true);
  auto files = openWorkerFiles(def_, recordingOpener());
  ASSERT_TRUE(files.ok()) << files.error().message();
  ASSERT_EQ(files->size(), 4u);
  EXPECT_EQ((*files)[0].path, dir_ / "kernel");
  EXPECT_EQ(opened_[dir_ / "kernel"], O_RDONLY);
  EXPECT_EQ(opened_[dir_ / "initrd"], O_RDONLY);
  EXPECT_EQ(opened_[dir_ / "base.raw"], O_RDWR);
  EXPECT_EQ(opened_[dir_ / "cdrom.raw"], O_RDONLY);
  for (const WorkerFile& file : *files) {
    EXPECT_TRUE(file.fd.valid());
    EXPECT_EQ(::fcntl(file.fd.get(), F_GETFD) & FD_CLOEXEC, FD_CLOEXEC) << "vmmd's copy never leaks into another child";
  }
}

TEST_F(WorkerFilesTest, AQcow2BringsItsWholeBackingChainReadOnly) {
  ::mkdir((dir_ / "sub").c_str(), 0700);
  qcow2("sub/middle.qcow2", "../base.raw", "raw");          // relative to sub/
  qcow2("top.qcow2", dir_ / "sub/middle.qcow2", "qcow2");  // absolute
  addDisk(dir_ / "top.qcow2", DiskFormat::kQcow2);
  auto files = openWorkerFiles(def_, recordingOpener());
  ASSERT_TRUE(files.ok()) << files.error().message();
  ASSERT_EQ(files->size(), 4u);
  EXPECT_EQ(opened_[dir_ / "top.qcow2"], O_RDWR);
  EXPECT_EQ(opened_[dir_ / "sub/middle.qcow2"], O_RDONLY);
  // The very string the worker will open: the image's directory + "/" + the stored name.
  EXPECT_EQ((*files)[3].path, dir_ / "sub/../base.raw");
  EXPECT_EQ(opened_[dir_ / "sub/../base.raw"], O_RDONLY);
  EXPECT_FALSE((*files)[3].writable);
}

TEST_F(WorkerFilesTest, TwoDisksOnOneBackingFileOpenItOnce) {
  qcow2("a.qcow2", "base.raw", "raw");
  qcow2("b.qcow2", "base.raw", "raw");
  addDisk(dir_ / "a.qcow2", DiskFormat::kQcow2);
  addDisk(dir_ / "b.qcow2", DiskFormat::kQcow2);
  auto files = openWorkerFiles(def_, openPlainFile);
  ASSERT_TRUE(files.ok()) << files.error().message();
  EXPECT_EQ(files->size(), 4u);  // kernel, a, b, base once
}

TEST_F(WorkerFilesTest, ABackingFileWithoutAFormatIsRefused) {
  qcow2("top.qcow2", "base.raw", "");
  addDisk(dir_ / "top.qcow2", DiskFormat::kQcow2);
  auto files = openWorkerFiles(def_, openPlainFile);
  ASSERT_FALSE(files.ok());
  EXPECT_EQ(files.error().message(), "disks[0].path: " + (dir_ / "top.qcow2") +
                                        ": backing file base.raw does not name its format (vmm-img rebase -F raw|qcow2)");
}

TEST_F(WorkerFilesTest, ABackingFormatOtherThanRawOrQcow2IsRefused) {
  qcow2("top.qcow2", "base.raw", "vmdk");
  addDisk(dir_ / "top.qcow2", DiskFormat::kQcow2);
  auto files = openWorkerFiles(def_, openPlainFile);
  ASSERT_FALSE(files.ok());
  EXPECT_NE(files.error().message().find("has format 'vmdk' (raw or qcow2)"), std::string::npos) << files.error().message();
}

TEST_F(WorkerFilesTest, MissingFilesNameTheirField) {
  def_.initrd = dir_ / "no-initrd";
  auto files = openWorkerFiles(def_, openPlainFile);
  ASSERT_FALSE(files.ok());
  EXPECT_EQ(files.error().message(), "initrd: " + (dir_ / "no-initrd") + ": No such file or directory");
  EXPECT_EQ(files.error().code(), ENOENT);

  def_.initrd.reset();
  qcow2("top.qcow2", "gone.raw", "raw");
  addDisk(dir_ / "top.qcow2", DiskFormat::kQcow2);
  files = openWorkerFiles(def_, openPlainFile);
  ASSERT_FALSE(files.ok());
  EXPECT_EQ(files.error().message(),
            "disks[0].path: " + (dir_ / "top.qcow2") + ": backing file " + (dir_ / "gone.raw") + ": No such file or directory");
}

TEST_F(WorkerFilesTest, WhatTheOpenerRefusesFailsTheStart) {
  addDisk(dir_ / "base.raw", DiskFormat::kRaw);
  auto refuse = [](const std::string& path, int) -> Result<UniqueFd> { return Error::fromErrno(path, EACCES); };
  auto files = openWorkerFiles(def_, refuse);
  ASSERT_FALSE(files.ok());
  EXPECT_EQ(files.error().message(), "kernel: " + (dir_ / "kernel") + ": Permission denied");
}

TEST_F(WorkerFilesTest, ABackingLoopIsRefused) {
  qcow2("a.qcow2", "b.qcow2", "qcow2");
  qcow2("b.qcow2", "a.qcow2", "qcow2");
  addDisk(dir_ / "a.qcow2", DiskFormat::kQcow2, true);
  auto files = openWorkerFiles(def_, openPlainFile);
  ASSERT_FALSE(files.ok());
  EXPECT_NE(files.error().message().find("backing file loop"), std::string::npos) << files.error().message();
}

TEST_F(WorkerFilesTest, AnImageThatIsNoQcow2IsRefused) {
  addDisk(dir_ / "base.raw", DiskFormat::kQcow2);
  auto files = openWorkerFiles(def_, openPlainFile);
  ASSERT_FALSE(files.ok());
  EXPECT_EQ(files.error().message().rfind("disks[0].path: ", 0), 0u) << files.error().message();
}

TEST_F(WorkerFilesTest, AddFdArgumentsNameTheFdsAsTheWorkerGetsThem) {
  std::ofstream(dir_ / "a,b") << "x";
  def_.kernel = dir_ / "a,b";
  auto files = openWorkerFiles(def_, openPlainFile);
  ASSERT_TRUE(files.ok()) << files.error().message();
  PassedFds fds;
  fds.add(UniqueFd(::open("/dev/null", O_RDONLY | O_CLOEXEC)));  // the QMP listener's place
  auto args = addFdArgs(std::move(*files), fds);
  EXPECT_EQ(args, (std::vector<std::string>{"-add-fd", "fd=4,set=1,opaque=" + dir_.path() + "/a,,b"}));
  EXPECT_EQ(fds.size(), 2u);
}

}  // namespace
}  // namespace vmmd::daemon
