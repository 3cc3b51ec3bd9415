// The worker's fd sets: which inherited descriptors are accepted at start, and how a path is
// served (from a set named /dev/fdset/N, from a set whose opaque text is the path, or by open(2)).
// Files are removed from the disk once their descriptors are taken, so anything that still
// reads them can only have come through the sets.
#include "vmm/backends/fd_sets.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "storage/block_device.h"
#include "storage/qcow2.h"
#include "tests/support/temp_dir.h"
#include "vmm/boot/image_file.h"

namespace vmmd {
namespace {

using ::testing::HasSubstr;
using test_support::TempDir;

std::string write(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

// An inherited descriptor as the parent would pass it: open, not close-on-exec.
int inherit(const std::string& path, int flags) {
  int fd = ::open(path.c_str(), flags);
  EXPECT_GE(fd, 3) << path << ": " << std::strerror(errno);
  return fd;
}

std::string readAll(int fd) {
  std::string text(4096, '\0');
  ssize_t n = ::pread(fd, text.data(), text.size(), 0);
  text.resize(n > 0 ? static_cast<size_t>(n) : 0);
  return text;
}

Result<FdSets> adopt(std::vector<config::AddFdConfig> add_fds) {
  config::MachineConfig config;
  config.add_fds = std::move(add_fds);
  return FdSets::adopt(config);
}

TEST(FdSets, PathsInNoSetAreOpenedAsUsual) {
  TempDir dir;
  std::string path = write(dir / "kernel", "plain");
  auto sets = adopt({});
  ASSERT_TRUE(sets.ok()) << sets.error().message();
  auto fd = sets->open(path, O_RDONLY);
  ASSERT_TRUE(fd.ok()) << fd.error().message();
  EXPECT_EQ(readAll(fd->get()), "plain");
  EXPECT_NE(::fcntl(fd->get(), F_GETFD) & FD_CLOEXEC, 0);
  auto missing = sets->open(dir / "missing", O_RDONLY);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code(), ENOENT);
  EXPECT_EQ(sets->realPath(path), path);
}

TEST(FdSets, DevFdsetServesADuplicateOfTheSetsDescriptor) {
  TempDir dir;
  int fd = inherit(write(dir / "initrd", "from the set"), O_RDONLY);
  ::unlink((dir / "initrd").c_str());
  auto sets = adopt({{fd, 7, ""}});
  ASSERT_TRUE(sets.ok()) << sets.error().message();
  EXPECT_NE(::fcntl(fd, F_GETFD) & FD_CLOEXEC, 0) << "adopted descriptors become close-on-exec";
  auto first = sets->open("/dev/fdset/7", O_RDONLY);
  auto second = sets->open("/dev/fdset/7", O_RDONLY);
  ASSERT_TRUE(first.ok()) << first.error().message();
  ASSERT_TRUE(second.ok());
  EXPECT_NE(first->get(), fd);
  EXPECT_NE(first->get(), second->get());
  EXPECT_EQ(readAll(first->get()), "from the set");
  first->reset();
  EXPECT_EQ(readAll(second->get()), "from the set") << "closing one copy leaves the set's descriptor open";
  EXPECT_EQ(sets->realPath("/dev/fdset/7"), "/dev/fdset/7") << "no opaque path: nothing to resolve against";
}

// QEMU's rule: read-only requests take O_RDONLY or O_RDWR descriptors, read-write ones O_RDWR.
TEST(FdSets, AccessModeMustFit) {
  TempDir dir;
  int read_only = inherit(write(dir / "ro", "ro"), O_RDONLY);
  int read_write = inherit(write(dir / "rw", "rw"), O_RDWR);
  auto sets = adopt({{read_only, 1, ""}, {read_write, 2, ""}});
  ASSERT_TRUE(sets.ok()) << sets.error().message();

  auto refused = sets->open("/dev/fdset/1", O_RDWR);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().message(), "/dev/fdset/1: fd set 1 has no descriptor open for O_RDWR (it has O_RDONLY)");
  EXPECT_EQ(refused.error().code(), 0) << "fd set errors are not open(2)'s";
  EXPECT_FALSE(sets->open("/dev/fdset/1", O_WRONLY).ok());

  auto rw_for_read = sets->open("/dev/fdset/2", O_RDONLY);
  ASSERT_TRUE(rw_for_read.ok()) << rw_for_read.error().message();
  EXPECT_EQ(readAll(rw_for_read->get()), "rw");
  EXPECT_TRUE(sets->open("/dev/fdset/2", O_RDWR).ok());
  EXPECT_TRUE(sets->open("/dev/fdset/2", O_WRONLY | O_CREAT | O_TRUNC, 0644).ok());

  auto direct = sets->open("/dev/fdset/2", O_RDWR | O_DIRECT);
  ASSERT_FALSE(direct.ok()) << "O_DIRECT must match: the set has no O_DIRECT descriptor";
  EXPECT_THAT(direct.error().message(), HasSubstr("O_RDWR|O_DIRECT"));
}

// A set with both kinds serves each request from the first descriptor that fits.
TEST(FdSets, ASetMayHoldSeveralDescriptors) {
  TempDir dir;
  std::string path = write(dir / "disk", "disk");
  int read_only = inherit(path, O_RDONLY);
  int read_write = inherit(path, O_RDWR);
  auto sets = adopt({{read_only, 3, path}, {read_write, 3, path}});
  ASSERT_TRUE(sets.ok()) << sets.error().message();
  auto rw = sets->open(path, O_RDWR);
  ASSERT_TRUE(rw.ok()) << rw.error().message();
  EXPECT_EQ(::fcntl(rw->get(), F_GETFL) & O_ACCMODE, O_RDWR);
  auto ro = sets->open(path, O_RDONLY);
  ASSERT_TRUE(ro.ok());
  EXPECT_EQ(::fcntl(ro->get(), F_GETFL) & O_ACCMODE, O_RDONLY);
}

// vmmd's convention: an fd whose opaque text is the path it stands for serves that path, which
// then need not exist for the worker (here it does not exist at all).
TEST(FdSets, OpaquePathIsServedFromItsSet) {
  TempDir dir;
  int fd = inherit(write(dir / "real", "behind the path"), O_RDONLY);
  ::unlink((dir / "real").c_str());
  auto sets = adopt({{fd, 4, "/srv/images/base.raw"}});
  ASSERT_TRUE(sets.ok()) << sets.error().message();
  auto opened = sets->open("/srv/images/base.raw", O_RDONLY);
  ASSERT_TRUE(opened.ok()) << opened.error().message();
  EXPECT_EQ(readAll(opened->get()), "behind the path");
  EXPECT_EQ(sets->realPath("/dev/fdset/4"), "/srv/images/base.raw");
  auto refused = sets->open("/srv/images/base.raw", O_RDWR);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().message(),
            "/srv/images/base.raw: fd set 4 has no descriptor open for O_RDWR (it has O_RDONLY)");
}

TEST(FdSets, UnknownOrMalformedSetIsAClearError) {
  auto sets = adopt({});
  ASSERT_TRUE(sets.ok());
  auto unknown = sets->open("/dev/fdset/9", O_RDONLY);
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().message(), "/dev/fdset/9: there is no fd set 9 (-add-fd fd=N,set=9)");
  auto malformed = sets->open("/dev/fdset/disk", O_RDONLY);
  ASSERT_FALSE(malformed.ok());
  EXPECT_EQ(malformed.error().message(), "/dev/fdset/disk: 'disk' is not an fd set number (/dev/fdset/N)");
}

TEST(FdSets, InheritedDescriptorsAreCheckedAtStart) {
  TempDir dir;
  std::string path = write(dir / "f", "x");
  int closed = inherit(path, O_RDONLY);
  ::close(closed);
  auto not_open = adopt({{closed, 1, ""}});
  ASSERT_FALSE(not_open.ok());
  EXPECT_EQ(not_open.error().message(), "-add-fd set=1: fd " + std::to_string(closed) +
                                            " is not open (the parent must leave it open, without close-on-exec)");

  auto stdio = adopt({{1, 1, ""}});
  ASSERT_FALSE(stdio.ok());
  EXPECT_EQ(stdio.error().message(), "-add-fd set=1: fd 1 is a standard stream (0-2), not a descriptor passed for it");

  int fd = inherit(path, O_RDONLY);
  auto twice = adopt({{fd, 1, ""}, {fd, 2, ""}});
  ASSERT_FALSE(twice.ok());
  EXPECT_EQ(twice.error().message(), "-add-fd set=2: fd " + std::to_string(fd) + " is named twice on the command line");

  int other = inherit(path, O_RDONLY);
  auto same_opaque = adopt({{fd, 1, "/a"}, {other, 2, "/a"}});
  ASSERT_FALSE(same_opaque.ok());
  EXPECT_EQ(same_opaque.error().message(), "-add-fd set=2: opaque=/a already names fd set 1");
  ::close(fd);
  ::close(other);

  config::MachineConfig config;
  config.netdevs.push_back({"net0", "", closed});
  auto tap = FdSets::adopt(config);
  ASSERT_FALSE(tap.ok());
  EXPECT_THAT(tap.error().message(), HasSubstr("-netdev net0: fd " + std::to_string(closed) + " is not open"));
  config.netdevs.clear();
  config::ChardevConfig chardev;
  chardev.id = "qga";
  chardev.backend = config::ChardevConfig::Backend::Socket;
  chardev.fd = 0;
  config.chardevs.push_back(chardev);
  auto socket = FdSets::adopt(config);
  ASSERT_FALSE(socket.ok());
  EXPECT_THAT(socket.error().message(), HasSubstr("-chardev qga: fd 0 is a standard stream"));
}

// A kernel loads through the sets like any other file.
TEST(FdSets, KernelFileComesFromASet) {
  TempDir dir;
  int fd = inherit(write(dir / "vmlinuz", "kernel bytes"), O_RDONLY);
  ::unlink((dir / "vmlinuz").c_str());
  auto sets = adopt({{fd, 0, "/boot/vmlinuz"}});
  ASSERT_TRUE(sets.ok());
  auto kernel = boot::ImageFile::open("/boot/vmlinuz", *sets);
  ASSERT_TRUE(kernel.ok()) << kernel.error().message();
  EXPECT_EQ(kernel->size(), 12u);
}

// A qcow2 image named /dev/fdset/1 whose relative backing file name resolves against the set's
// opaque path, and the backing file served by its own set through that path: neither file is
// on the disk any more when the image is opened, read and written.
TEST(FdSets, Qcow2BackingFileResolvesThroughTheSets) {
  TempDir dir;
  std::string base_path = dir / "base.raw", top_path = dir / "top.qcow2";
  std::string pattern(512, 'B');
  write(base_path, pattern + std::string(65536 - 512, '\0'));
  storage::Qcow2CreateOptions create;
  create.size = 65536;
  create.backingFile = "base.raw";  // relative: resolved against the top image's folder
  create.backingFormat = "raw";
  ASSERT_TRUE(storage::createQcow2(top_path, create).ok());
  int top = inherit(top_path, O_RDWR);
  int base = inherit(base_path, O_RDONLY);
  ::unlink(top_path.c_str());
  ::unlink(base_path.c_str());
  auto sets = adopt({{top, 1, top_path}, {base, 2, base_path}});
  ASSERT_TRUE(sets.ok()) << sets.error().message();

  storage::OpenOptions options;
  options.format = storage::ImageFormat::Qcow2;
  options.opener = &*sets;
  auto disk = storage::openImage("/dev/fdset/1", options);
  ASSERT_TRUE(disk.ok()) << disk.error().message();
  ASSERT_NE((*disk)->backing(), nullptr);
  std::vector<uint8_t> sector(512);
  ASSERT_TRUE((*disk)->read(0, sector).ok());
  EXPECT_EQ(std::string(sector.begin(), sector.end()), pattern) << "unwritten data comes from the backing file";
  std::vector<uint8_t> written(512, 'T');
  ASSERT_TRUE((*disk)->write(512, written).ok());
  ASSERT_TRUE((*disk)->flush().ok());
  ASSERT_TRUE((*disk)->read(512, sector).ok());
  EXPECT_EQ(sector, written);
  std::vector<uint8_t> base_after(512);
  ASSERT_EQ(::pread(base, base_after.data(), 512, 512), 512);
  EXPECT_EQ(base_after, std::vector<uint8_t>(512, 0)) << "the backing file is never written";

  // The top image's set holds only a read-write fd: a read-only open of it is still served.
  disk->reset();
  options.readOnly = true;
  EXPECT_TRUE(storage::openImage(top_path, options).ok());
}

TEST(FdSets, BackingFileWithoutAFittingDescriptorNamesPathAndSet) {
  TempDir dir;
  std::string base_path = dir / "base.raw", top_path = dir / "top.qcow2";
  write(base_path, std::string(65536, '\0'));
  storage::Qcow2CreateOptions create;
  create.size = 65536;
  create.backingFile = base_path;
  create.backingFormat = "raw";
  ASSERT_TRUE(storage::createQcow2(top_path, create).ok());
  int top = inherit(top_path, O_RDWR);
  int base = inherit(base_path, O_WRONLY);  // backing files are opened read-only: this one cannot serve
  auto sets = adopt({{top, 1, ""}, {base, 2, base_path}});
  ASSERT_TRUE(sets.ok()) << sets.error().message();
  storage::OpenOptions options;
  options.opener = &*sets;
  auto disk = storage::openImage("/dev/fdset/1", options);
  ASSERT_FALSE(disk.ok());
  EXPECT_THAT(disk.error().message(), HasSubstr(base_path + ": fd set 2 has no descriptor open for O_RDONLY (it has O_WRONLY)"));
}

}  // namespace
}  // namespace vmmd
