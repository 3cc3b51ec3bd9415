// The migration stream: what the writer produces the loader reads back into RAM and states;
// damaged, truncated, reordered or mismatched streams are refused with the reason.
#include <gtest/gtest.h>

#include <cstring>

#include "vmm/migration/stream_reader.h"
#include "vmm/migration/stream_writer.h"

namespace vmmd::migration {
namespace {

constexpr uint64_t kRam = 64 * kPageSize;

MachineSummary summary(uint64_t ram = kRam) {
  MachineSummary s;
  s.machine_type = "pc";
  s.ram_bytes = ram;
  s.vcpus = 1;
  s.devices = {{"virtio-rng-pci", "rng0"}, {"virtio-blk-pci", ""}};
  return s;
}

// A stream of `source_ram` (two passes, a state section) from a machine summarized as `from`.
std::vector<uint8_t> makeStream(const std::vector<uint8_t>& source_ram, const MachineSummary& from) {
  MemorySink sink;
  StreamWriter writer(sink);
  EXPECT_TRUE(writer.header());
  EXPECT_TRUE(writer.summary(from));
  EXPECT_TRUE(writer.ram(0, 0, {source_ram.data(), 32 * kPageSize}));
  EXPECT_TRUE(writer.ram(0, 32 * kPageSize, {source_ram.data() + 32 * kPageSize, 32 * kPageSize}));
  EXPECT_TRUE(writer.ram(1, 5 * kPageSize, {source_ram.data() + 5 * kPageSize, kPageSize}));
  EXPECT_TRUE(writer.state({"cpu/0", {"cpu", 1, {1, 2, 3}}}));
  EXPECT_TRUE(writer.end());
  EXPECT_EQ(writer.bytesWritten(), sink.data.size());
  return sink.data;
}

struct Destination {
  std::vector<uint8_t> ram = std::vector<uint8_t>(kRam, 0xAA);  // not zero: zero runs must clear it
  std::vector<RamRegion> regions{{0, kRam, ram.data()}};
  Result<LoadedStream> load(const std::vector<uint8_t>& stream, const MachineSummary& local = summary()) {
    MemorySource source(stream);
    return StreamLoader(source, local, regions).load();
  }
};

std::vector<uint8_t> sourceRam() {
  std::vector<uint8_t> ram(kRam, 0);
  for (size_t page = 0; page < 64; page += 3) std::memset(ram.data() + page * kPageSize, static_cast<int>(page + 1), kPageSize);
  return ram;
}

TEST(MigrationStream, RoundTripsRamAndState) {
  auto ram = sourceRam();
  Destination dest;
  auto loaded = dest.load(makeStream(ram, summary()));
  ASSERT_TRUE(loaded) << loaded.error().message();
  EXPECT_EQ(dest.ram, ram);
  EXPECT_EQ(loaded->passes, 2u);
  EXPECT_EQ(loaded->pages, 65u);
  ASSERT_EQ(loaded->machine.sections.size(), 1u);
  EXPECT_EQ(loaded->machine.sections[0].id, "cpu/0");
  EXPECT_EQ(loaded->machine.sections[0].state.kind, "cpu");
  EXPECT_EQ(loaded->machine.sections[0].state.bytes, (std::vector<uint8_t>{1, 2, 3}));
}

TEST(MigrationStream, ZeroPagesTravelAsCounts) {
  std::vector<uint8_t> ram(kRam, 0);
  MemorySink sink;
  StreamWriter writer(sink);
  auto zero = writer.ram(0, 0, {ram.data(), 32 * kPageSize});
  ASSERT_TRUE(zero);
  EXPECT_EQ(*zero, 32u);
  EXPECT_LT(sink.data.size(), 64u);
}

TEST(MigrationStream, EveryFlippedByteIsRefused) {
  auto stream = makeStream(sourceRam(), summary());
  // Every byte of the framing and a sample of the page data.
  for (size_t i = 0; i < stream.size(); i += (i < 64 || i > stream.size() - 64) ? 1 : 997) {
    auto damaged = stream;
    damaged[i] ^= 0x40;
    Destination dest;
    auto loaded = dest.load(damaged);
    EXPECT_FALSE(loaded) << "byte " << i;
  }
}

TEST(MigrationStream, ChecksumMismatchIsNamed) {
  auto stream = makeStream(sourceRam(), summary());
  stream[16 + 8 + 4] ^= 1;  // inside the summary's payload
  Destination dest;
  auto loaded = dest.load(stream);
  ASSERT_FALSE(loaded);
  EXPECT_NE(loaded.error().message().find("checksum mismatch"), std::string::npos) << loaded.error().message();
}

TEST(MigrationStream, EveryTruncationIsRefused) {
  auto stream = makeStream(sourceRam(), summary());
  for (size_t size = 0; size < stream.size(); size += (size < 64 || size > stream.size() - 64) ? 1 : 1021) {
    Destination dest;
    auto loaded = dest.load({stream.begin(), stream.begin() + static_cast<std::ptrdiff_t>(size)});
    ASSERT_FALSE(loaded) << size;
    if (size >= 16) {
      EXPECT_NE(loaded.error().message().find("ended early"), std::string::npos) << loaded.error().message();
    }
  }
}

TEST(MigrationStream, WrongMagicOrVersionIsRefused) {
  auto stream = makeStream(sourceRam(), summary());
  auto other = stream;
  other[0] = 'Q';
  Destination dest;
  auto loaded = dest.load(other);
  ASSERT_FALSE(loaded);
  EXPECT_NE(loaded.error().message().find("not a vmm migration stream"), std::string::npos);
  other = stream;
  other[8] = 9;
  loaded = dest.load(other);
  ASSERT_FALSE(loaded);
  EXPECT_NE(loaded.error().message().find("version 9 is not supported"), std::string::npos);
}

TEST(MigrationStream, MismatchedRamSizeIsRefusedBeforeAnyPageLands) {
  Destination dest;
  auto loaded = dest.load(makeStream(sourceRam(), summary(2 * kRam)));
  ASSERT_FALSE(loaded);
  EXPECT_NE(loaded.error().message().find("RAM size differs"), std::string::npos) << loaded.error().message();
  EXPECT_EQ(dest.ram, std::vector<uint8_t>(kRam, 0xAA));
}

TEST(MigrationStream, MismatchedDeviceIsNamed) {
  auto from = summary();
  from.devices.push_back({"virtio-net-pci", "net0"});
  Destination dest;
  auto loaded = dest.load(makeStream(sourceRam(), from));
  ASSERT_FALSE(loaded);
  EXPECT_EQ(loaded.error().message(),
            "the destination does not match the source: device #2 virtio-net-pci (id net0): the destination has none");
  from = summary();
  from.devices[0].driver = "virtio-serial-pci";
  loaded = dest.load(makeStream(sourceRam(), from));
  ASSERT_FALSE(loaded);
  EXPECT_NE(loaded.error().message().find("device #0 virtio-serial-pci (id rng0) on the source is device #0 virtio-rng-pci (id rng0)"),
            std::string::npos)
      << loaded.error().message();
}

TEST(MigrationStream, PagesOutsideRamAreRefused) {
  std::vector<uint8_t> page(kPageSize, 7);
  MemorySink sink;
  StreamWriter writer(sink);
  ASSERT_TRUE(writer.header());
  ASSERT_TRUE(writer.summary(summary()));
  ASSERT_TRUE(writer.ram(0, kRam, page));
  ASSERT_TRUE(writer.end());
  Destination dest;
  auto loaded = dest.load(sink.data);
  ASSERT_FALSE(loaded);
  EXPECT_NE(loaded.error().message().find("not inside this machine's RAM"), std::string::npos);
}

TEST(MigrationStream, SummaryMustComeFirst) {
  std::vector<uint8_t> page(kPageSize, 7);
  MemorySink sink;
  StreamWriter writer(sink);
  ASSERT_TRUE(writer.header());
  ASSERT_TRUE(writer.ram(0, 0, page));
  Destination dest;
  auto loaded = dest.load(sink.data);
  ASSERT_FALSE(loaded);
  EXPECT_NE(loaded.error().message().find("before the machine summary"), std::string::npos);
}

TEST(MachineSummaryTest, OfConfigListsDevicesWithIds) {
  config::MachineConfig config;
  config.memory_bytes = 256ull << 20;
  config.vcpus = 2;
  config.machine_type = "q35";
  config.devices.push_back({"virtio-rng-pci", {{"id", "rng0"}}});
  auto s = MachineSummary::of(config);
  EXPECT_EQ(s.machine_type, "pc");
  EXPECT_EQ(s.ram_bytes, 256ull << 20);
  ASSERT_EQ(s.devices.size(), 1u);
  EXPECT_EQ(s.devices[0].id, "rng0");
  auto back = MachineSummary::decode(s.encode());
  ASSERT_TRUE(back);
  EXPECT_TRUE(checkCompatible(s, *back));
}

}  // namespace
}  // namespace vmmd::migration
