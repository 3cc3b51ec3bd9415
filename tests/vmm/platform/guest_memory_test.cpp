#include "vmm/platform/guest_memory.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>

namespace vmmd {
namespace {

using layout::E820Type;
using ::testing::HasSubstr;

constexpr uint64_t kMiB = 1ull << 20, kGiB = 1ull << 30;

GuestMemory create(uint64_t bytes) {
  auto memory = GuestMemory::create(bytes);
  EXPECT_TRUE(memory.ok()) << memory.error().message();
  return std::move(*memory);
}

TEST(GuestMemory, TooSmallIsRefused) {
  auto memory = GuestMemory::create(2 * kMiB - 4096);
  ASSERT_FALSE(memory.ok());
  EXPECT_EQ(memory.error().message(), "guest memory: at least 2 MiB needed");
  EXPECT_TRUE(GuestMemory::create(2 * kMiB).ok());
}

TEST(GuestMemory, SmallGuestHasOneRegionAtZero) {
  GuestMemory memory = create(64 * kMiB);
  EXPECT_EQ(memory.ramBytes(), 64 * kMiB);
  EXPECT_EQ(memory.ramBelow4G(), 64 * kMiB);
  EXPECT_EQ(memory.ramAbove4G(), 0u);
  ASSERT_EQ(memory.regions().size(), 1u);
  EXPECT_EQ(memory.regions()[0].guest_address, 0u);
  EXPECT_EQ(memory.regions()[0].size, 64 * kMiB);
}

// Huge pages (and KVM's large mappings of them) need host and guest addresses congruent mod 2 MiB.
TEST(GuestMemory, HostMemoryStartsOnAHugePageBoundary) {
  for (uint64_t mib : {2, 3, 64, 257}) {
    GuestMemory memory = create(mib * kMiB);
    for (const auto& region : memory.regions()) {
      EXPECT_EQ(reinterpret_cast<uintptr_t>(region.host) % (2 * kMiB), region.guest_address % (2 * kMiB)) << mib;
    }
    // The whole of it is usable, end to end.
    std::memset(memory.regions()[0].host, 0xa5, memory.regions()[0].size);
  }
  GuestMemory big = create(4 * kGiB);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(big.regions()[1].host) % (2 * kMiB), 0u);
}

TEST(GuestMemory, ExactlyThreeGiBStaysBelowTheHole) {
  GuestMemory memory = create(3 * kGiB);
  EXPECT_EQ(memory.regions().size(), 1u);
  EXPECT_EQ(memory.ramBelow4G(), 3 * kGiB);
  EXPECT_EQ(memory.ramAbove4G(), 0u);
}

TEST(GuestMemory, FourGiBSplitsAroundThePciHole) {
  GuestMemory memory = create(4 * kGiB);  // lazily mapped: cheap
  EXPECT_EQ(memory.ramBytes(), 4 * kGiB);
  ASSERT_EQ(memory.regions().size(), 2u);
  const auto& low = memory.regions()[0];
  const auto& high = memory.regions()[1];
  EXPECT_EQ(low.guest_address, 0u);
  EXPECT_EQ(low.size, 3 * kGiB);
  EXPECT_EQ(high.guest_address, 4 * kGiB);
  EXPECT_EQ(high.size, 1 * kGiB);
  EXPECT_EQ(high.host, low.host + 3 * kGiB) << "one mapping, the high region right after the low one";
  EXPECT_EQ(memory.ramBelow4G(), 3 * kGiB);
  EXPECT_EQ(memory.ramAbove4G(), 1 * kGiB);
}

TEST(GuestMemory, HostAddressInsideRegions) {
  GuestMemory memory = create(4 * kGiB);
  uint8_t* base = memory.regions()[0].host;
  EXPECT_EQ(memory.hostAddress(0, 1), base);
  EXPECT_EQ(memory.hostAddress(0x1000, 16), base + 0x1000);
  EXPECT_EQ(memory.hostAddress(0, 3 * kGiB), base) << "the whole low region";
  EXPECT_EQ(memory.hostAddress(3 * kGiB - 1, 1), base + 3 * kGiB - 1) << "last low byte";
  EXPECT_EQ(memory.hostAddress(4 * kGiB, 1), base + 3 * kGiB) << "first high byte";
  EXPECT_EQ(memory.hostAddress(5 * kGiB - 8, 8), base + 4 * kGiB - 8) << "last high bytes";
}

TEST(GuestMemory, HostAddressOutsideRegionsIsNull) {
  GuestMemory memory = create(4 * kGiB);
  EXPECT_EQ(memory.hostAddress(3 * kGiB, 1), nullptr) << "start of the PCI hole";
  EXPECT_EQ(memory.hostAddress(3 * kGiB - 8, 16), nullptr) << "straddles the low region's end";
  EXPECT_EQ(memory.hostAddress(4 * kGiB - 1, 2), nullptr) << "straddles the start of the high region";
  EXPECT_EQ(memory.hostAddress(layout::kIoApic, 4), nullptr);
  EXPECT_EQ(memory.hostAddress(5 * kGiB, 1), nullptr) << "past the end";
  EXPECT_EQ(memory.hostAddress(5 * kGiB - 8, 9), nullptr);
  EXPECT_EQ(memory.hostAddress(0, 3 * kGiB + 1), nullptr) << "longer than the region";
}

TEST(GuestMemory, HostAddressDoesNotWrapAround) {
  GuestMemory memory = create(64 * kMiB);
  EXPECT_EQ(memory.hostAddress(UINT64_MAX, 2), nullptr);
  EXPECT_EQ(memory.hostAddress(UINT64_MAX - 15, 32), nullptr) << "address + length wraps to 16";
  EXPECT_EQ(memory.hostAddress(0x1000, UINT64_MAX), nullptr);
  EXPECT_EQ(memory.hostAddress(16, UINT64_MAX - 8), nullptr) << "address + length wraps to 7";
  GuestMemory big = create(4 * kGiB);
  EXPECT_EQ(big.hostAddress(4 * kGiB + 16, UINT64_MAX - 8), nullptr);
  EXPECT_EQ(big.hostAddress(UINT64_MAX - 8, 16), nullptr);
}

TEST(GuestMemory, ReadWriteRoundTripInBothRegions) {
  GuestMemory memory = create(4 * kGiB);
  const uint8_t bytes[] = {1, 2, 3, 4, 5};
  ASSERT_TRUE(memory.write(0x2000, bytes).ok());
  ASSERT_TRUE(memory.write(4 * kGiB + 0x10, bytes).ok());
  uint8_t back[5] = {};
  ASSERT_TRUE(memory.read(0x2000, back).ok());
  EXPECT_EQ(std::memcmp(back, bytes, 5), 0);
  ASSERT_TRUE(memory.read(4 * kGiB + 0x10, back).ok());
  EXPECT_EQ(std::memcmp(back, bytes, 5), 0);
  EXPECT_EQ(memory.regions()[1].host[0x10], 1) << "the high region's bytes live right after the low region";
}

TEST(GuestMemory, WriteObjectStoresItsBytes) {
  GuestMemory memory = create(4 * kMiB);
  struct {
    uint32_t a;
    uint16_t b;
  } object{0x11223344, 0x5566};
  ASSERT_TRUE(memory.writeObject(0x100, object).ok());
  EXPECT_EQ(memory.hostAddress(0x100, 1)[0], 0x44);
  EXPECT_EQ(memory.hostAddress(0x104, 1)[0], 0x66);
}

TEST(GuestMemory, AccessesOutsideRamFailNamingTheAddress) {
  GuestMemory memory = create(4 * kMiB);
  const uint8_t bytes[8] = {};
  auto write = memory.write(4 * kMiB - 4, bytes);
  ASSERT_FALSE(write.ok());
  EXPECT_EQ(write.error().message(), "guest memory: write of 8 bytes at 0x3ffffc is outside RAM");
  uint8_t back[8];
  auto read = memory.read(UINT64_MAX - 3, back);
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.error().message(), "guest memory: read of 8 bytes at 0xfffffffffffffffc is outside RAM");
}

TEST(GuestMemory, MemoryMapForASmallGuest) {
  GuestMemory memory = create(64 * kMiB);
  auto map = memory.memoryMap();
  ASSERT_EQ(map.size(), 4u);
  EXPECT_EQ(map[0].address, 0u);
  EXPECT_EQ(map[0].size, 0x9FC00u);
  EXPECT_EQ(map[0].type, E820Type::Ram);
  EXPECT_EQ(map[1].address, 0x9FC00u);
  EXPECT_EQ(map[1].size, 0x400u);
  EXPECT_EQ(map[1].type, E820Type::Reserved) << "EBDA";
  EXPECT_EQ(map[2].address, 0xE0000u);
  EXPECT_EQ(map[2].size, 0x20000u);
  EXPECT_EQ(map[2].type, E820Type::Reserved) << "BIOS area with the ACPI tables";
  EXPECT_EQ(map[3].address, 1 * kMiB);
  EXPECT_EQ(map[3].size, 63 * kMiB);
  EXPECT_EQ(map[3].type, E820Type::Ram);
}

TEST(GuestMemory, MemoryMapForFourGiB) {
  GuestMemory memory = create(4 * kGiB);
  auto map = memory.memoryMap();
  ASSERT_EQ(map.size(), 5u);
  EXPECT_EQ(map[3].address, 1 * kMiB);
  EXPECT_EQ(map[3].size, 3 * kGiB - 1 * kMiB);
  EXPECT_EQ(map[4].address, 4 * kGiB);
  EXPECT_EQ(map[4].size, 1 * kGiB);
  EXPECT_EQ(map[4].type, E820Type::Ram);
}

TEST(GuestMemory, MemoryMapIsSortedAndWithoutOverlapsAndRamIsBacked) {
  for (uint64_t size : {2 * kMiB, 64 * kMiB, 3 * kGiB, 3 * kGiB + 4096, 4 * kGiB}) {
    SCOPED_TRACE(size);
    GuestMemory memory = create(size);
    auto map = memory.memoryMap();
    uint64_t ram = 0;
    for (size_t i = 0; i < map.size(); ++i) {
      if (i > 0) {
        EXPECT_GE(map[i].address, map[i - 1].address + map[i - 1].size);
      }
      if (map[i].type == E820Type::Ram) {
        ram += map[i].size;
        EXPECT_NE(memory.hostAddress(map[i].address, map[i].size), nullptr) << "RAM entry " << i << " not backed";
      }
    }
    // All RAM is reported but 0x9FC00..1 MiB (EBDA, VGA window, BIOS area).
    EXPECT_EQ(ram, size - (0x100000 - 0x9FC00));
  }
}

TEST(GuestMemory, MoveKeepsTheMapping) {
  GuestMemory a = create(4 * kMiB);
  uint8_t* host = a.hostAddress(0, 1);
  host[0] = 0x42;
  GuestMemory b = std::move(a);
  EXPECT_EQ(b.hostAddress(0, 1), host);
  EXPECT_EQ(b.hostAddress(0, 1)[0], 0x42);
}

}  // namespace
}  // namespace vmmd
