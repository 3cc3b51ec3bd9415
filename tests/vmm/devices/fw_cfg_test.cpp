#include "vmm/devices/fw_cfg.h"

#include <gtest/gtest.h>

#include <array>
#include <cstring>
#include <string>

#include "tests/vmm/devices/state_checks.h"

namespace vmmd {
namespace {

class FwCfgTest : public ::testing::Test {
 protected:
  FwCfgTest() : memory_(std::move(*GuestMemory::create(4ull << 20))), fw_cfg_(memory_) {}

  void select(uint16_t key) { fw_cfg_.write(FwCfg::kSelectorOffset, {reinterpret_cast<const uint8_t*>(&key), 2}); }
  std::vector<uint8_t> readData(size_t n) {
    std::vector<uint8_t> out(n);
    for (auto& byte : out) fw_cfg_.read(FwCfg::kDataOffset, {&byte, 1});
    return out;
  }
  static std::array<uint8_t, 4> bigEndian32(uint32_t value) {
    return {static_cast<uint8_t>(value >> 24), static_cast<uint8_t>(value >> 16), static_cast<uint8_t>(value >> 8),
            static_cast<uint8_t>(value)};
  }
  // Writes a descriptor at `at` and starts it the way SeaBIOS does (the low half only, or both).
  uint32_t dma(uint64_t at, uint32_t control, uint32_t length, uint64_t address) {
    std::array<uint8_t, 16> descriptor{};
    auto c = bigEndian32(control), l = bigEndian32(length), hi = bigEndian32(static_cast<uint32_t>(address >> 32)),
         lo = bigEndian32(static_cast<uint32_t>(address));
    std::memcpy(&descriptor[0], c.data(), 4);
    std::memcpy(&descriptor[4], l.data(), 4);
    std::memcpy(&descriptor[8], hi.data(), 4);
    std::memcpy(&descriptor[12], lo.data(), 4);
    EXPECT_TRUE(memory_.write(at, descriptor));
    start(at);
    std::array<uint8_t, 4> result{};
    EXPECT_TRUE(memory_.read(at, result));
    return uint32_t{result[0]} << 24 | uint32_t{result[1]} << 16 | uint32_t{result[2]} << 8 | result[3];
  }
  void start(uint64_t at) {
    if (at >> 32) {
      auto hi = bigEndian32(static_cast<uint32_t>(at >> 32));
      fw_cfg_.write(FwCfg::kDmaOffset, hi);
    }
    auto lo = bigEndian32(static_cast<uint32_t>(at));
    fw_cfg_.write(FwCfg::kDmaOffset + 4, lo);
  }
  std::vector<uint8_t> guest(uint64_t at, size_t n) {
    std::vector<uint8_t> out(n);
    EXPECT_TRUE(memory_.read(at, out));
    return out;
  }

  GuestMemory memory_;
  FwCfg fw_cfg_;
};

TEST_F(FwCfgTest, SignatureAndIdThroughTheDataPort) {
  select(FwCfg::kSignature);
  EXPECT_EQ(readData(4), (std::vector<uint8_t>{'Q', 'E', 'M', 'U'}));
  EXPECT_EQ(readData(2), (std::vector<uint8_t>{0, 0}));  // past the end: zeros
  select(FwCfg::kId);
  EXPECT_EQ(readData(4), (std::vector<uint8_t>{0x03, 0, 0, 0}));  // traditional interface + DMA
  select(0x1234);  // no such item
  EXPECT_EQ(readData(3), (std::vector<uint8_t>{0, 0, 0}));
}

TEST_F(FwCfgTest, DmaRegisterReadsBackItsSignature) {
  std::array<uint8_t, 8> bytes{};
  for (size_t i = 0; i < 8; ++i) fw_cfg_.read(FwCfg::kDmaOffset + i, {&bytes[i], 1});
  EXPECT_EQ(std::string(bytes.begin(), bytes.end()), "QEMU CFG");
}

TEST_F(FwCfgTest, FileDirectoryListsFilesBigEndian) {
  ASSERT_TRUE(fw_cfg_.addFile("etc/e820", std::vector<uint8_t>(40, 1)));
  ASSERT_TRUE(fw_cfg_.addFile("bootorder", {'x', '\n'}));
  select(FwCfg::kFileDir);
  auto count = readData(4);
  EXPECT_EQ(count, (std::vector<uint8_t>{0, 0, 0, 2}));
  auto first = readData(64);
  EXPECT_EQ(first[3], 40);                       // size
  EXPECT_EQ(first[4] << 8 | first[5], 0x20);     // select
  EXPECT_STREQ(reinterpret_cast<const char*>(&first[8]), "etc/e820");
  auto second = readData(64);
  EXPECT_EQ(second[4] << 8 | second[5], 0x21);
  EXPECT_STREQ(reinterpret_cast<const char*>(&second[8]), "bootorder");
  select(0x21);
  EXPECT_EQ(readData(2), (std::vector<uint8_t>{'x', '\n'}));
}

TEST_F(FwCfgTest, BadFileNamesAreRefused) {
  EXPECT_FALSE(fw_cfg_.addFile("", {}));
  EXPECT_FALSE(fw_cfg_.addFile(std::string(56, 'a'), {}));
  EXPECT_TRUE(fw_cfg_.addFile(std::string(55, 'a'), {}));
  EXPECT_TRUE(fw_cfg_.addFile("etc/x", {}));
  EXPECT_FALSE(fw_cfg_.addFile("etc/x", {}));
}

TEST_F(FwCfgTest, DmaSelectReadSkip) {
  ASSERT_TRUE(fw_cfg_.addFile("etc/data", {1, 2, 3, 4, 5, 6, 7, 8}));
  EXPECT_TRUE(memory_.write(0x2000, std::vector<uint8_t>(16, 0xEE)));
  EXPECT_EQ(dma(0x1000, 0x20u << 16 | FwCfg::kDmaSelect | FwCfg::kDmaRead, 3, 0x2000), 0u);
  EXPECT_EQ(guest(0x2000, 4), (std::vector<uint8_t>{1, 2, 3, 0xEE}));
  EXPECT_EQ(dma(0x1000, FwCfg::kDmaSkip, 2, 0), 0u);
  // Reading past the end zero-fills the rest of the buffer, as QEMU does.
  EXPECT_EQ(dma(0x1000, FwCfg::kDmaRead, 6, 0x2000), 0u);
  EXPECT_EQ(guest(0x2000, 7), (std::vector<uint8_t>{6, 7, 8, 0, 0, 0, 0xEE}));
  // The data port continues where DMA stopped.
  EXPECT_EQ(dma(0x1000, 0x20u << 16 | FwCfg::kDmaSelect | FwCfg::kDmaSkip, 7, 0), 0u);
  EXPECT_EQ(readData(2), (std::vector<uint8_t>{8, 0}));
}

TEST_F(FwCfgTest, DmaDescriptorAbove4GiBUsesTheHighHalf) {
  GuestMemory big = std::move(*GuestMemory::create(0xC0000000ull + (1u << 20)));  // 1 MiB above 4 GiB, sparse
  FwCfg fw_cfg(big);
  std::array<uint8_t, 16> descriptor{0, 0, 0, FwCfg::kDmaSelect | FwCfg::kDmaRead, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0x30, 0};
  ASSERT_TRUE(big.write(0x100000000ull + 0x100, descriptor));
  std::array<uint8_t, 4> hi{0, 0, 0, 1}, lo{0, 0, 1, 0};
  fw_cfg.write(FwCfg::kDmaOffset, hi);
  fw_cfg.write(FwCfg::kDmaOffset + 4, lo);
  std::array<uint8_t, 4> signature{}, control{};
  ASSERT_TRUE(big.read(0x3000, signature));
  ASSERT_TRUE(big.read(0x100000000ull + 0x100, control));
  EXPECT_EQ(std::string(signature.begin(), signature.end()), "QEMU");
  EXPECT_EQ(control, (std::array<uint8_t, 4>{0, 0, 0, 0}));
}

TEST_F(FwCfgTest, HostileDescriptorsEndInTheErrorBitNeverOutsideRam) {
  ASSERT_TRUE(fw_cfg_.addFile("etc/data", std::vector<uint8_t>(64, 0xAB)));
  uint32_t read_file = 0x20u << 16 | FwCfg::kDmaSelect | FwCfg::kDmaRead;
  EXPECT_EQ(dma(0x1000, read_file, 16, 0xFFFFFFFFFFFFFFF0ull), FwCfg::kDmaError);  // wraps around
  EXPECT_EQ(dma(0x1000, read_file, 16, (4ull << 20) - 8), FwCfg::kDmaError);     // runs off the end of RAM
  EXPECT_EQ(dma(0x1000, read_file, 0xFFFFFFFFu, 0x2000), FwCfg::kDmaError);       // 4 GiB into 4 MiB
  EXPECT_EQ(dma(0x1000, read_file | FwCfg::kDmaWrite, 0, 0x2000), 0u);            // read wins over write
  EXPECT_EQ(dma(0x1000, 0x20u << 16 | FwCfg::kDmaSelect | FwCfg::kDmaWrite, 4, 0x2000), FwCfg::kDmaError);  // read-only
  EXPECT_EQ(dma(0x1000, FwCfg::kDmaSkip, 0xFFFFFFFFu, 0), 0u);                    // skipping far is harmless
  EXPECT_EQ(dma(0x1000, 0, 0, 0), 0u);                                            // no operation
  // A descriptor outside RAM (or straddling its end) is ignored: nothing to write back to.
  start(4ull << 20);
  start((4ull << 20) - 8);
  start(0xFFFFFFFFFFFFFFF8ull);
  // The interface still works afterwards.
  EXPECT_EQ(dma(0x1000, read_file, 2, 0x2000), 0u);
  EXPECT_EQ(guest(0x2000, 2), (std::vector<uint8_t>{0xAB, 0xAB}));
}

TEST_F(FwCfgTest, ResetSelectsTheSignatureAgain) {
  select(FwCfg::kId);
  (void)readData(1);
  fw_cfg_.reset();
  EXPECT_EQ(readData(1), (std::vector<uint8_t>{'Q'}));
}

}  // namespace
}  // namespace vmmd

namespace vmmd {
namespace {

TEST_F(FwCfgTest, StateCarriesSelectorAndOffset) {
  ASSERT_TRUE(fw_cfg_.addFile("etc/answer", {'f', 'o', 'r', 't', 'y', '-', 't', 'w', 'o'}).ok());
  select(FwCfg::kFirstFileKey);
  EXPECT_EQ(readData(3), (std::vector<uint8_t>{'f', 'o', 'r'}));

  FwCfg target(memory_);
  ASSERT_TRUE(target.addFile("etc/answer", {'f', 'o', 'r', 't', 'y', '-', 't', 'w', 'o'}).ok());
  auto saved = testing::expectRoundTrip(fw_cfg_, target);
  std::vector<uint8_t> rest(6);
  for (auto& byte : rest) target.read(FwCfg::kDataOffset, {&byte, 1});
  EXPECT_EQ(rest, (std::vector<uint8_t>{'t', 'y', '-', 't', 'w', 'o'})) << "reading goes on where it stopped";

  FwCfg other_machine(memory_);  // without the file: another configuration
  auto refused = other_machine.loadState(saved);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message().find("items"), std::string::npos) << refused.error().message();

  FwCfg hostile(memory_);
  ASSERT_TRUE(hostile.addFile("etc/answer", {'x'}).ok());
  testing::expectHostileStatesRefused(hostile, saved);
}

}  // namespace
}  // namespace vmmd
