// The MSI-X table as the driver sees it through the BAR: entry packing, partial accesses,
// masking and pending bits, and its saved state.
#include "vmm/devices/pci/msix_table.h"

#include <gtest/gtest.h>

#include <cstring>

namespace vmmd {
namespace {

void write32(MsixTable& table, uint64_t offset, uint32_t value) {
  uint8_t raw[4];
  std::memcpy(raw, &value, 4);
  table.writeTable(offset, raw);
}

// A little-endian value read through `read` (the table's or the PBA's accessor).
template <typename T, typename Read>
T readAs(Read read, uint64_t offset) {
  uint8_t raw[sizeof(T)];
  read(offset, std::span<uint8_t>(raw));
  T value;
  std::memcpy(&value, raw, sizeof value);
  return value;
}

uint32_t read32(const MsixTable& table, uint64_t offset) {
  return readAs<uint32_t>([&](uint64_t at, std::span<uint8_t> out) { table.readTable(at, out); }, offset);
}

uint64_t readPba(const MsixTable& table, uint64_t offset) {
  return readAs<uint64_t>([&](uint64_t at, std::span<uint8_t> out) { table.readPba(at, out); }, offset);
}

TEST(MsixTable, EntriesStartMaskedAndPackAsThePciSpecLaysThemOut) {
  MsixTable table(3);
  EXPECT_EQ(table.tableBytes(), 48u);
  EXPECT_EQ(table.pbaBytes(), 8u);
  EXPECT_EQ(read32(table, 16 + 12), 1u);  // vector control: masked
  write32(table, 16 + 0, 0xFEE01000);
  write32(table, 16 + 4, 0x1);
  write32(table, 16 + 8, 0x4041);
  write32(table, 16 + 12, 0);
  EXPECT_EQ(table.entry(1).address, 0x1FEE01000ull);
  EXPECT_EQ(table.entry(1).data, 0x4041u);
  EXPECT_FALSE(table.entry(1).masked);
  EXPECT_TRUE(table.entry(0).masked);
  EXPECT_EQ(read32(table, 16 + 0), 0xFEE01000u);
  EXPECT_EQ(read32(table, 16 + 4), 0x1u);
  EXPECT_EQ(read32(table, 16 + 8), 0x4041u);
  EXPECT_EQ(read32(table, 16 + 12), 0u);
  // A 64-bit write of the address, a read straddling the entry's end (the rest reads zero).
  uint64_t address = 0xFEE02000;
  table.writeTable(32, {reinterpret_cast<const uint8_t*>(&address), 8});
  EXPECT_EQ(table.entry(2).address, 0xFEE02000ull);
  uint8_t tail[8];
  table.readTable(32 + 12, tail);
  EXPECT_EQ(tail[0], 1);  // still masked
  EXPECT_EQ(tail[4], 0);
  EXPECT_EQ(table.writeTable(32 + 8, {}), 2u);
}

TEST(MsixTable, MaskedVectorsStayPendingUntilUnmaskedAndEnabled) {
  MsixTable table(2);
  table.setControl(true, false);
  EXPECT_FALSE(table.fire(0));  // entry masked
  EXPECT_TRUE(table.entry(0).pending);
  EXPECT_EQ(readPba(table, 0), 1u);
  EXPECT_FALSE(table.takePending(0));  // still masked
  write32(table, 12, 0);
  EXPECT_TRUE(table.takePending(0));
  EXPECT_FALSE(table.takePending(0));  // delivered once
  EXPECT_EQ(readPba(table, 0), 0u);
  EXPECT_TRUE(table.fire(0));
  EXPECT_FALSE(table.fire(7));  // NO_VECTOR and beyond: never signalled, never pending
  table.setControl(true, true);  // function mask
  EXPECT_FALSE(table.fire(0));
  table.setControl(false, false);  // MSI-X off
  EXPECT_FALSE(table.takePending(0));
  table.setControl(true, false);
  EXPECT_TRUE(table.takePending(0));
}

TEST(MsixTable, PendingBitsFillQwordsOf64Vectors) {
  MsixTable table(70);
  EXPECT_EQ(table.pbaBytes(), 16u);
  table.fire(1);
  table.fire(65);
  EXPECT_EQ(readPba(table, 0), 2u);
  EXPECT_EQ(readPba(table, 8), 2u);
  uint8_t byte;
  table.readPba(8, {&byte, 1});
  EXPECT_EQ(byte, 2);
}

TEST(MsixTable, ResetMasksEverythingAndDropsPendingMessages) {
  MsixTable table(2);
  write32(table, 0, 0xFEE00000);
  write32(table, 12, 0);
  table.fire(1);
  table.reset();
  EXPECT_EQ(table.entry(0).address, 0u);
  EXPECT_TRUE(table.entry(0).masked);
  EXPECT_FALSE(table.entry(1).pending);
}

TEST(MsixTable, StateRoundTripsAndRefusesAnotherTableSize) {
  MsixTable table(3);
  write32(table, 16, 0xFEE00000);
  write32(table, 16 + 8, 0x31);
  write32(table, 16 + 12, 0);
  table.fire(2);
  StateWriter out;
  table.save(out);
  auto bytes = out.take();

  MsixTable copy(3);
  StateReader in(bytes);
  copy.load(in);
  ASSERT_TRUE(in.finish("msix").ok());
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(copy.entry(i).address, table.entry(i).address) << i;
    EXPECT_EQ(copy.entry(i).data, table.entry(i).data) << i;
    EXPECT_EQ(copy.entry(i).masked, table.entry(i).masked) << i;
    EXPECT_EQ(copy.entry(i).pending, table.entry(i).pending) << i;
  }

  MsixTable smaller(2);
  StateReader again(bytes);
  smaller.load(again);
  auto st = again.finish("msix");
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message().find("3 vectors"), std::string::npos) << st.error().message();
}

}  // namespace
}  // namespace vmmd
