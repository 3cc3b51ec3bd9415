#include <gtest/gtest.h>

#include "storage/raw.h"
#include "tests/storage/test_util.h"

namespace vmmd::storage {
namespace {

using test::ScratchDir;

TEST(StorageRaw, ReadWriteZeroDiscardResize) {
  ScratchDir dir;
  std::string path = dir / "disk.raw";
  ASSERT_TRUE(createRaw(path, 4 << 20).ok());
  auto dev = test::openOrDie(path);
  ASSERT_TRUE(dev);
  EXPECT_EQ(dev->format(), ImageFormat::Raw);
  EXPECT_EQ(dev->size(), 4u << 20);
  std::vector<uint8_t> data(10000, 0x5a), back(10000);
  ASSERT_TRUE(dev->write(12345, data).ok());
  ASSERT_TRUE(dev->read(12345, back).ok());
  EXPECT_EQ(data, back);
  ASSERT_TRUE(dev->writeZeroes(12345, 5000).ok());
  ASSERT_TRUE(dev->read(12345, back).ok());
  EXPECT_TRUE(std::all_of(back.begin(), back.begin() + 5000, [](uint8_t b) { return b == 0; }));
  EXPECT_EQ(back[5000], 0x5a);
  ASSERT_TRUE(dev->discard(0, 1 << 20).ok());
  auto st = dev->blockStatus(2 << 20, 1 << 20);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->kind, ExtentKind::Zero);
  EXPECT_FALSE(dev->read((4 << 20) - 10, back).ok());  // beyond the end
  ASSERT_TRUE(dev->resize(8 << 20).ok());
  EXPECT_EQ(dev->size(), 8u << 20);
  ASSERT_TRUE(dev->flush().ok());
}

TEST(StorageRaw, ReadOnlyRefusesWrites) {
  ScratchDir dir;
  std::string path = dir / "disk.raw";
  ASSERT_TRUE(createRaw(path, 1 << 20).ok());
  auto dev = test::openOrDie(path, true);
  ASSERT_TRUE(dev);
  std::vector<uint8_t> data(512, 1);
  EXPECT_FALSE(dev->write(0, data).ok());
  EXPECT_TRUE(dev->readOnly());
}

TEST(StorageRaw, MissingFileNamesThePath) {
  OpenOptions o;
  auto dev = openImage("/nonexistent/disk.img", o);
  ASSERT_FALSE(dev.ok());
  EXPECT_NE(dev.error().message().find("/nonexistent/disk.img"), std::string::npos);
}

}  // namespace
}  // namespace vmmd::storage
