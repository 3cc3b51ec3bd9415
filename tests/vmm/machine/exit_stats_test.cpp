#include "vmm/machine/exit_stats.h"

#include <gtest/gtest.h>

#include <thread>

namespace vmmd {
namespace {

TEST(ExitStats, CountsReasonsAndAddresses) {
  ExitStats stats;
  for (int i = 0; i < 5; ++i) stats.countIo(0x3f8);
  stats.countIo(0xcf8);
  stats.countIo(0xcf8);
  stats.countMmio(0xfee00000);
  stats.count(ExitReason::Intr);
  auto snap = stats.snapshot();
  EXPECT_EQ(snap.total(), 9u);
  EXPECT_EQ(snap.reasons[static_cast<size_t>(ExitReason::Io)], 7u);
  EXPECT_EQ(snap.reasons[static_cast<size_t>(ExitReason::Mmio)], 1u);
  EXPECT_EQ(snap.reasons[static_cast<size_t>(ExitReason::Intr)], 1u);
  auto io = snap.top(AddressSpace::Io, 10);
  ASSERT_EQ(io.size(), 2u);
  EXPECT_EQ(io[0].address, 0x3f8u);
  EXPECT_EQ(io[0].exits, 5u);
  EXPECT_EQ(io[1].address, 0xcf8u);
  EXPECT_EQ(addressStatName(io[0]), "io_exits_port_0x3f8");
  auto mmio = snap.top(AddressSpace::Mmio, 10);
  ASSERT_EQ(mmio.size(), 1u);
  EXPECT_EQ(addressStatName(mmio[0]), "mmio_exits_addr_0xfee00000");
  EXPECT_EQ(snap.top(AddressSpace::Io, 1).size(), 1u);
}

TEST(ExitStats, PortAndMmioAtTheSameNumberStayApart) {
  ExitStats stats;
  stats.countIo(0x70);
  stats.countMmio(0x70);
  stats.countMmio(0x70);
  auto snap = stats.snapshot();
  ASSERT_EQ(snap.addresses.size(), 2u);
  EXPECT_EQ(snap.addresses[0].space, AddressSpace::Mmio);
  EXPECT_EQ(snap.addresses[0].exits, 2u);
  EXPECT_EQ(snap.addresses[1].space, AddressSpace::Io);
}

TEST(ExitStats, AddressesBeyondTheTableCountAsUntracked) {
  ExitStats stats;
  // A hostile guest walking every page: the table fills, nothing is lost, nothing allocates.
  for (uint64_t i = 0; i < ExitStats::kAddressSlots + 100; ++i) stats.countMmio(0xd0000000 + i * 4096);
  auto snap = stats.snapshot();
  EXPECT_EQ(snap.addresses.size(), ExitStats::kAddressSlots);
  EXPECT_EQ(snap.other_addresses, 100u);
  EXPECT_EQ(snap.total(), ExitStats::kAddressSlots + 100);
}

TEST(ExitStats, SnapshotsAddAcrossVcpus) {
  ExitStats a, b;
  a.countIo(0x80);
  b.countIo(0x80);
  b.countIo(0x80);
  b.countIo(0x61);
  auto whole = a.snapshot();
  whole.add(b.snapshot());
  EXPECT_EQ(whole.total(), 4u);
  ASSERT_EQ(whole.addresses.size(), 2u);
  EXPECT_EQ(whole.addresses[0].address, 0x80u);
  EXPECT_EQ(whole.addresses[0].exits, 3u);
}

TEST(ExitStats, ReadableWhileTheVcpuCounts) {
  ExitStats stats;
  std::thread writer([&] {
    for (int i = 0; i < 200000; ++i) stats.countIo(static_cast<uint16_t>(i % 64));
  });
  uint64_t last = 0;
  for (int i = 0; i < 1000; ++i) {
    uint64_t now = stats.snapshot().total();
    EXPECT_GE(now, last);  // counts only grow
    last = now;
  }
  writer.join();
  EXPECT_EQ(stats.snapshot().total(), 200000u);
}

TEST(ExitStats, FormatsInfoStatsBlocks) {
  ExitStats a, b;
  a.countIo(0x3f8);
  b.countIo(0x3f8);
  b.countMmio(0xfeb00000);
  std::string text = formatExitStats({a.snapshot(), b.snapshot()}, 8);
  EXPECT_NE(text.find("vcpu /machine/unattached/device[0]\n  provider: vmm\n    exits (cumulative): 1\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("vm\n  provider: vmm\n    exits (cumulative): 3\n    io_exits (cumulative): 2\n"
                      "    mmio_exits (cumulative): 1\n    io_exits_port_0x3f8 (cumulative): 2\n"
                      "    mmio_exits_addr_0xfeb00000 (cumulative): 1\n"),
            std::string::npos)
      << text;
}

}  // namespace
}  // namespace vmmd
