// Live migration's hand-over of an image between two processes (BlockDevice::release/acquire),
// played with two opens of one file in this process (two open file descriptions, so the OFD
// locks exclude each other as they would across processes): the destination opens without
// locks while the source still writes, takes the image once the source released it, and must
// see everything the source wrote, allocations included, without corrupting its metadata.
#include <gtest/gtest.h>

#include <vector>

#include "storage/qcow2.h"
#include "storage/raw.h"
#include "tests/storage/test_util.h"

namespace vmmd::storage {
namespace {

using test::ScratchDir;

std::unique_ptr<BlockDevice> openOrFail(const std::string& path, bool lock) {
  OpenOptions o;
  o.lock = lock;
  auto dev = openImage(path, o);
  EXPECT_TRUE(dev.ok()) << dev.error().message();
  return dev.ok() ? std::move(*dev) : nullptr;
}

std::vector<uint8_t> pattern(uint8_t seed, size_t bytes) {
  std::vector<uint8_t> out(bytes);
  for (size_t i = 0; i < bytes; ++i) out[i] = static_cast<uint8_t>(seed + i * 7 + (i >> 9));
  return out;
}

void expectReads(BlockDevice& dev, uint64_t offset, const std::vector<uint8_t>& want) {
  std::vector<uint8_t> got(want.size());
  auto r = dev.read(offset, got);
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(got, want) << "at offset " << offset;
}

void expectClean(BlockDevice& dev) {
  auto* q = dynamic_cast<Qcow2Device*>(&dev);
  ASSERT_NE(q, nullptr);
  auto r = q->check(RepairMode::None);
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(r->corruptions, 0u);
  EXPECT_EQ(r->leaks, 0u);
  for (const auto& m : r->messages) ADD_FAILURE() << m;
}

TEST(StorageHandover, Qcow2MovesBetweenTwoOpensAndBack) {
  ScratchDir dir;
  const std::string path = dir / "disk.qcow2";
  ASSERT_TRUE(createQcow2(path, test::qcow2Options(64 << 20)).ok());
  auto source = openOrFail(path, true);
  ASSERT_TRUE(source);
  auto before = pattern(1, 256 << 10);
  ASSERT_TRUE(source->write(0, before).ok());
  // The destination starts while the source runs: no locks, metadata of this moment.
  auto destination = openOrFail(path, false);
  ASSERT_TRUE(destination);
  // The source goes on allocating (new clusters, a new L2 table far away), keeping a reserved
  // batch of clusters that only it knows about.
  auto during = pattern(2, 192 << 10);
  ASSERT_TRUE(source->write(40 << 20, during).ok());
  auto taken = destination->acquire();
  ASSERT_FALSE(taken.ok()) << "the destination got the locks while the source holds them";
  EXPECT_NE(taken.error().message().find("lock"), std::string::npos) << taken.error().message();

  ASSERT_TRUE(source->release().ok());
  EXPECT_TRUE(source->released());
  auto refused = source->write(0, before);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message().find("handed to another process"), std::string::npos) << refused.error().message();

  auto acquired = destination->acquire();
  ASSERT_TRUE(acquired.ok()) << acquired.error().message();
  expectReads(*destination, 0, before);
  expectReads(*destination, 40 << 20, during);
  // It allocates next to what the source allocated, never over it.
  auto after = pattern(3, 320 << 10);
  ASSERT_TRUE(destination->write(20 << 20, after).ok());
  ASSERT_TRUE(destination->write(40 << 20, pattern(4, 4096)).ok());
  ASSERT_FALSE(source->acquire().ok()) << "the source took the image back while the destination has it";

  // And back (the source resumes: a failed migration, or the next one).
  ASSERT_TRUE(destination->release().ok());
  ASSERT_TRUE(source->acquire().ok());
  EXPECT_FALSE(source->released());
  expectReads(*source, 0, before);
  expectReads(*source, 20 << 20, after);
  expectReads(*source, 40 << 20, pattern(4, 4096));
  ASSERT_TRUE(source->write(30 << 20, pattern(5, 128 << 10)).ok());
  destination.reset();
  expectClean(*source);
  source.reset();
  auto reopened = openOrFail(path, true);
  ASSERT_TRUE(reopened);
  expectReads(*reopened, 30 << 20, pattern(5, 128 << 10));
  expectClean(*reopened);
}

TEST(StorageHandover, AcquiringAnImageStillHeldLeaksNothing) {
  ScratchDir dir;
  const std::string path = dir / "disk.qcow2";
  ASSERT_TRUE(createQcow2(path, test::qcow2Options(16 << 20)).ok());
  auto dev = openOrFail(path, true);
  ASSERT_TRUE(dev);
  ASSERT_TRUE(dev->write(0, pattern(7, 64 << 10)).ok());  // a batch of clusters reserved beyond it
  auto acquired = dev->acquire();
  ASSERT_TRUE(acquired.ok()) << acquired.error().message();
  expectReads(*dev, 0, pattern(7, 64 << 10));
  expectClean(*dev);
}

TEST(StorageHandover, RawDropsAndRetakesItsLocks) {
  ScratchDir dir;
  const std::string path = dir / "disk.raw";
  ASSERT_TRUE(createRaw(path, 1 << 20).ok());
  auto source = openOrFail(path, true);
  auto destination = openOrFail(path, false);
  ASSERT_TRUE(source && destination);
  ASSERT_FALSE(destination->acquire().ok());
  ASSERT_TRUE(source->write(0, pattern(6, 4096)).ok());
  ASSERT_TRUE(source->release().ok());
  EXPECT_FALSE(source->write(0, pattern(6, 4096)).ok());
  ASSERT_TRUE(destination->acquire().ok());
  expectReads(*destination, 0, pattern(6, 4096));
  EXPECT_FALSE(source->acquire().ok());
}

}  // namespace
}  // namespace vmmd::storage
