#include "vmm/boot/image_file.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

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

// The path of the file mapped at `address` in this process (/proc/self/maps), or "".
std::string mappedFileAt(const uint8_t* address) {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  auto at = reinterpret_cast<uintptr_t>(address);
  while (std::getline(maps, line)) {
    uintptr_t start = 0, end = 0;
    char dash = 0;
    std::istringstream fields(line);
    fields >> std::hex >> start >> dash >> end;
    if (at < start || at >= end) continue;
    std::string perms, offset, device, inode, path;
    fields >> perms >> offset >> device >> inode >> path;
    return path;
  }
  return "";
}

TEST(ImageFile, LoadIntoMapsWholePagesAndCopiesTheEnds) {
  TempDir dir;
  Bytes bytes = pattern(5 * 4096, 7);
  std::string path = dir.write("k", bytes);
  auto file = ImageFile::open(path);
  ASSERT_TRUE(file.ok());
  auto memory = GuestMemory::create(4 << 20);
  ASSERT_TRUE(memory.ok());
  // File offset 100 at guest 0x10064: same page offset, so pages 1-3 of the file are mapped and
  // the 3996 bytes before and the 100 bytes after them are copied.
  uint8_t* guest = memory->hostAddress(0x10000, 5 * 4096);
  std::memset(guest, 0xEE, 5 * 4096);
  ASSERT_TRUE(file->loadInto(*memory, 0x10064, 100, 4 * 4096).ok());
  EXPECT_EQ(guest[0x63], 0xEE);  // the byte before the range is untouched
  EXPECT_TRUE(std::equal(bytes.begin() + 100, bytes.begin() + 100 + 4 * 4096, guest + 0x64));
  EXPECT_EQ(guest[0x64 + 4 * 4096], 0xEE);  // and the byte after it
  EXPECT_EQ(mappedFileAt(guest + 4096), path);
  EXPECT_EQ(mappedFileAt(guest + 3 * 4096), path);
  EXPECT_NE(mappedFileAt(guest), path);  // the partial pages are RAM, written by copy
  EXPECT_NE(mappedFileAt(guest + 4 * 4096), path);
}

TEST(ImageFile, GuestWritesToAMappedKernelNeverReachTheFile) {
  TempDir dir;
  Bytes bytes = pattern(4 * 4096, 9);
  std::string path = dir.write("k", bytes);
  auto file = ImageFile::open(path);
  ASSERT_TRUE(file.ok());
  auto memory = GuestMemory::create(4 << 20);
  ASSERT_TRUE(memory.ok());
  ASSERT_TRUE(file->loadInto(*memory, 0x20000, 0, 4 * 4096).ok());
  uint8_t* guest = memory->hostAddress(0x20000, 4 * 4096);
  ASSERT_EQ(mappedFileAt(guest), path);
  std::memset(guest, 0, 4 * 4096);  // the guest overwrites its kernel (as it frees init memory)
  Bytes on_disk(4 * 4096);
  ASSERT_TRUE(file->readAt(0, on_disk).ok());
  EXPECT_EQ(on_disk, bytes);
  // A second load (a reboot) brings the file's bytes back.
  ASSERT_TRUE(file->loadInto(*memory, 0x20000, 0, 4 * 4096).ok());
  EXPECT_TRUE(std::equal(bytes.begin(), bytes.end(), guest));
}

TEST(ImageFile, LoadIntoCopiesWhenPageOffsetsDiffer) {
  TempDir dir;
  Bytes bytes = pattern(4 * 4096, 11);
  std::string path = dir.write("k", bytes);
  auto file = ImageFile::open(path);
  ASSERT_TRUE(file.ok());
  auto memory = GuestMemory::create(4 << 20);
  ASSERT_TRUE(memory.ok());
  ASSERT_TRUE(file->loadInto(*memory, 0x30000, 8, 3 * 4096).ok());
  uint8_t* guest = memory->hostAddress(0x30000, 3 * 4096);
  EXPECT_TRUE(std::equal(bytes.begin() + 8, bytes.begin() + 8 + 3 * 4096, guest));
  EXPECT_NE(mappedFileAt(guest + 4096), path);
}

}  // namespace
}  // namespace vmmd::boot
