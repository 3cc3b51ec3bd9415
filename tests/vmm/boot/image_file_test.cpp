#include "vmm/boot/image_file.h"

#include <unistd.h>

#include <algorithm>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/vmm/boot/test_images.h"

namespace vmmd::boot {
namespace {

using ::testing::HasSubstr;
using namespace vmmd::boot::testing;

TEST(ImageFile, OpenReportsPathAndSize) {
  TempDir dir;
  std::string path = dir.write("k", pattern(1000, 1));
  auto file = ImageFile::open(path);
  ASSERT_TRUE(file.ok()) << file.error().message();
  EXPECT_EQ(file->path(), path);
  EXPECT_EQ(file->size(), 1000u);
}

TEST(ImageFile, OpenMissingFileKeepsErrno) {
  TempDir dir;
  auto file = ImageFile::open(dir.path() + "/missing");
  ASSERT_FALSE(file.ok());
  EXPECT_EQ(file.error().message(), dir.path() + "/missing: No such file or directory");
  EXPECT_EQ(file.error().code(), ENOENT);
}

TEST(ImageFile, OpenRefusesNonRegularFiles) {
  TempDir dir;
  auto file = ImageFile::open(dir.path());
  ASSERT_FALSE(file.ok());
  EXPECT_EQ(file.error().message(), dir.path() + ": not a regular file");
}

TEST(ImageFile, ReadAtReadsExactBytes) {
  TempDir dir;
  Bytes bytes = pattern(1000, 1);
  auto file = ImageFile::open(dir.write("k", bytes));
  ASSERT_TRUE(file.ok());
  Bytes out(100);
  ASSERT_TRUE(file->readAt(900, out).ok());
  EXPECT_TRUE(std::equal(out.begin(), out.end(), bytes.begin() + 900));
  Bytes none;
  EXPECT_TRUE(file->readAt(1000, none).ok());  // an empty read at the very end
}

TEST(ImageFile, ReadAtPastTheEndIsAnErrorNamingTheFile) {
  TempDir dir;
  std::string path = dir.write("k", pattern(1000, 1));
  auto file = ImageFile::open(path);
  ASSERT_TRUE(file.ok());
  Bytes out(101);
  auto st = file->readAt(900, out);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().message(), path + ": file too short (wanted 101 bytes at offset 900, file has 1000)");
  Bytes one(1);
  EXPECT_FALSE(file->readAt(1001, one).ok());
  EXPECT_FALSE(file->readAt(UINT64_MAX, one).ok());
}

TEST(ImageFile, LoadIntoCopiesARangeIntoGuestMemory) {
  TempDir dir;
  Bytes bytes = pattern(8192, 5);
  auto file = ImageFile::open(dir.write("k", bytes));
  ASSERT_TRUE(file.ok());
  auto memory = GuestMemory::create(4 << 20);
  ASSERT_TRUE(memory.ok());
  ASSERT_TRUE(file->loadInto(*memory, 0x10000, 4096, 4096).ok());
  EXPECT_TRUE(std::equal(bytes.begin() + 4096, bytes.end(), memory->hostAddress(0x10000, 4096)));
}

// The slices cover the range exactly, in order, with every inner boundary on a 2 MiB boundary of
// guest RAM, and never more of them than CPUs, kMaximumSlices or one per kMinimumSlice bytes.
TEST(ImageFile, SlicesCoverTheRangeOnHugePageBoundaries) {
  constexpr uint64_t kMiB = 1 << 20;
  struct Case {
    uint64_t guest_address, length;
    unsigned cpus;
    size_t want;
  };
  for (auto c : {Case{0x1000000, 46 * kMiB, 2, 2}, Case{0x1000000, 46 * kMiB, 16, 4}, Case{0x1000000, 46 * kMiB, 0, 1},
                 Case{0xe6f7000, 9 * kMiB + 4321, 2, 1}, Case{0xe6f7000, 17 * kMiB + 4321, 2, 2},
                 Case{0x200000, 7 * kMiB, 8, 1}, Case{0x123456, 33 * kMiB + 1, 3, 3}, Case{0, 1, 4, 1}}) {
    auto slices = ImageFile::slices(c.guest_address, c.length, c.cpus);
    SCOPED_TRACE(std::to_string(c.guest_address) + "+" + std::to_string(c.length) + " cpus " + std::to_string(c.cpus));
    ASSERT_EQ(slices.size(), c.want);
    uint64_t next = 0;
    for (size_t i = 0; i < slices.size(); ++i) {
      EXPECT_EQ(slices[i].begin, next);
      EXPECT_GT(slices[i].length, 0u);
      next = slices[i].begin + slices[i].length;
      if (i + 1 < slices.size()) {
        EXPECT_EQ((c.guest_address + next) % ImageFile::kSliceAlignment, 0u);
      }
    }
    EXPECT_EQ(next, c.length);
  }
  EXPECT_TRUE(ImageFile::slices(0x1000000, 0, 4).empty());
}

TEST(ImageFile, LoadIntoInSlicesCopiesEveryByte) {
  TempDir dir;
  Bytes bytes = pattern(40 << 20, 7);  // five slices' worth: as many threads as this host allows
  auto file = ImageFile::open(dir.write("k", bytes));
  ASSERT_TRUE(file.ok());
  auto memory = GuestMemory::create(64 << 20);
  ASSERT_TRUE(memory.ok());
  ASSERT_TRUE(file->loadInto(*memory, 0x123000, 4096, bytes.size() - 4096).ok());
  EXPECT_TRUE(std::equal(bytes.begin() + 4096, bytes.end(), memory->hostAddress(0x123000, bytes.size() - 4096)));
}

TEST(ImageFile, LoadIntoInSlicesReportsAFileThatShrank) {
  TempDir dir;
  std::string path = dir.write("k", pattern(24 << 20, 3));
  auto file = ImageFile::open(path);
  ASSERT_TRUE(file.ok());
  ASSERT_EQ(::truncate(path.c_str(), 20 << 20), 0);  // the last slice finds the end of the file early
  auto memory = GuestMemory::create(64 << 20);
  ASSERT_TRUE(memory.ok());
  auto st = file->loadInto(*memory, 0x1000000, 0, 24 << 20);
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(st.error().message(), HasSubstr(path + ": unexpected end of file"));
}

// The bytes read() returns are a copy: a file truncated afterwards leaves them whole (a mapping
// would turn the next access into SIGBUS), and a read past the new end is an error naming it.
TEST(ImageFile, ReadBytesOutliveATruncationAndAReadPastTheEndIsAnError) {
  TempDir dir;
  Bytes contents = pattern(3 << 20, 7);
  std::string path = dir.write("k", contents);
  auto file = ImageFile::open(path);
  ASSERT_TRUE(file.ok());
  auto bytes = file->read(4096, 2 << 20);
  ASSERT_TRUE(bytes.ok()) << bytes.error().message();
  ASSERT_EQ(::truncate(path.c_str(), 0), 0);
  EXPECT_TRUE(std::equal(bytes->bytes().begin(), bytes->bytes().end(), contents.begin() + 4096));
  auto again = file->read(4096, 2 << 20);
  ASSERT_FALSE(again.ok());
  EXPECT_THAT(again.error().message(), HasSubstr(path + ": unexpected end of file"));
  auto beyond = file->read(3 << 20, 1);
  ASSERT_FALSE(beyond.ok());
  EXPECT_THAT(beyond.error().message(), HasSubstr("no 1 bytes at offset"));
}

TEST(ImageFile, LoadIntoOutsideRamIsAnError) {
  TempDir dir;
  std::string path = dir.write("k", pattern(8192, 5));
  auto file = ImageFile::open(path);
  ASSERT_TRUE(file.ok());
  auto memory = GuestMemory::create(4 << 20);
  ASSERT_TRUE(memory.ok());
  auto st = file->loadInto(*memory, (4 << 20) - 100, 0, 8192);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().message(), path + ": 8192 bytes at guest address 0x3fff9c do not fit in guest RAM (4 MiB)");
  auto past = file->loadInto(*memory, 0, 4096, 8192);
  ASSERT_FALSE(past.ok());
  EXPECT_THAT(past.error().message(), HasSubstr("file too short"));
}

}  // namespace
}  // namespace vmmd::boot
