#include "vmm/boot/image_file.h"

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
