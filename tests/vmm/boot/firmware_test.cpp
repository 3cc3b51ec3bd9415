#include "vmm/boot/firmware.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "vmm/platform/layout.h"

namespace vmmd::boot {
namespace {

acpi::AcpiTables tablesAt(uint64_t base) {
  acpi::AcpiLayout layout;
  layout.vcpus = 2;
  layout.base_address = base;
  layout.pci = true;
  return std::move(*acpi::buildAcpiTables(layout));
}

std::string name(const uint8_t* at) { return std::string(reinterpret_cast<const char*>(at), strnlen(reinterpret_cast<const char*>(at), 56)); }
uint32_t get32(const uint8_t* at) {
  uint32_t v;
  std::memcpy(&v, at, 4);
  return v;
}

// Runs the table-loader script as SeaBIOS's romfile_loader does, with the allocations placed at
// the given addresses; returns the files as the guest then has them.
std::map<std::string, std::vector<uint8_t>> execute(const AcpiFirmwareFiles& files, const std::map<std::string, uint64_t>& placed) {
  std::map<std::string, std::vector<uint8_t>> blobs{{kAcpiTablesFile, files.tables}, {kAcpiRsdpFile, files.rsdp}};
  std::map<std::string, bool> allocated;
  EXPECT_EQ(files.loader.size() % 128, 0u);
  for (size_t at = 0; at + 128 <= files.loader.size(); at += 128) {
    const uint8_t* e = files.loader.data() + at;
    switch (get32(e)) {
      case 1: {  // ALLOCATE
        std::string file = name(e + 4);
        EXPECT_TRUE(blobs.count(file)) << file;
        EXPECT_EQ(placed.at(file) % get32(e + 60), 0u);
        EXPECT_EQ(e[64], file == kAcpiRsdpFile ? 2 : 1);  // zone: the RSDP in the F segment
        allocated[file] = true;
        break;
      }
      case 2: {  // ADD_POINTER
        std::string dest = name(e + 4), source = name(e + 60);
        EXPECT_TRUE(allocated[dest] && allocated[source]) << "a file used before its ALLOCATE";
        uint32_t offset = get32(e + 116);
        uint8_t size = e[120];
        auto& blob = blobs[dest];
        EXPECT_LE(offset + size, blob.size());
        uint64_t value = 0;
        std::memcpy(&value, &blob[offset], size);
        value += placed.at(source);
        std::memcpy(&blob[offset], &value, size);
        break;
      }
      case 3: {  // ADD_CHECKSUM
        auto& blob = blobs[name(e + 4)];
        uint32_t offset = get32(e + 60), start = get32(e + 64), length = get32(e + 68);
        EXPECT_LE(start + length, blob.size());
        blob[offset] = static_cast<uint8_t>(blob[offset] - acpi::checksum(&blob[start], length));
        break;
      }
      default:
        ADD_FAILURE() << "unexpected command " << get32(e);
    }
  }
  return blobs;
}

TEST(TableLoader, GuestSeesTheSameTablesAsWithDirectBoot) {
  // Placed where direct boot puts them, the loaded files are the direct-boot blob byte for byte.
  auto direct = tablesAt(layout::kBiosAreaStart);
  auto files = buildAcpiFirmwareFiles(direct, layout::kBiosAreaStart);
  ASSERT_TRUE(files) << files.error().message();
  auto loaded = execute(*files, {{kAcpiTablesFile, layout::kBiosAreaStart}, {kAcpiRsdpFile, layout::kBiosAreaStart}});
  std::vector<uint8_t> rebuilt = loaded[kAcpiTablesFile];
  std::memcpy(rebuilt.data(), loaded[kAcpiRsdpFile].data(), acpi::kRsdpLength);
  EXPECT_EQ(rebuilt, direct.blob);
}

TEST(TableLoader, TablesPlacedAnywhereAreLinkedAndChecksummed) {
  constexpr uint64_t kTables = 0x7FFE000, kRsdp = 0xF5A60;
  auto direct = tablesAt(layout::kBiosAreaStart);
  auto files = buildAcpiFirmwareFiles(direct, layout::kBiosAreaStart);
  ASSERT_TRUE(files);
  auto loaded = execute(*files, {{kAcpiTablesFile, kTables}, {kAcpiRsdpFile, kRsdp}});
  const auto& rsdp = loaded[kAcpiRsdpFile];
  const auto& tables = loaded[kAcpiTablesFile];
  EXPECT_EQ(acpi::checksum(rsdp.data(), 20), 0);
  EXPECT_EQ(acpi::checksum(rsdp.data(), 36), 0);
  uint64_t xsdt = 0;
  std::memcpy(&xsdt, &rsdp[24], 8);
  ASSERT_GE(xsdt, kTables);
  size_t xsdt_offset = xsdt - kTables;
  ASSERT_EQ(std::string(reinterpret_cast<const char*>(&tables[xsdt_offset]), 4), "XSDT");
  uint32_t xsdt_length = get32(&tables[xsdt_offset + 4]);
  EXPECT_EQ(acpi::checksum(&tables[xsdt_offset], xsdt_length), 0);
  // Every table the XSDT names is where it says, with a valid checksum; the FADT's DSDT too.
  for (size_t entry = xsdt_offset + 36; entry < xsdt_offset + xsdt_length; entry += 8) {
    uint64_t address = 0;
    std::memcpy(&address, &tables[entry], 8);
    size_t offset = address - kTables;
    ASSERT_LT(offset, tables.size());
    std::string signature(reinterpret_cast<const char*>(&tables[offset]), 4);
    EXPECT_EQ(acpi::checksum(&tables[offset], get32(&tables[offset + 4])), 0) << signature;
    if (signature == "FACP") {
      uint32_t dsdt = get32(&tables[offset + 40]);
      EXPECT_EQ(std::string(reinterpret_cast<const char*>(&tables[dsdt - kTables]), 4), "DSDT");
      uint32_t facs = get32(&tables[offset + 36]);
      EXPECT_EQ(std::string(reinterpret_cast<const char*>(&tables[facs - kTables]), 4), "FACS");
    }
  }
  // Only the F segment's RSDP exists: operating systems scan for its signature.
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(tables.data()), 8), std::string(8, '\0'));
}

TEST(FirmwareFiles, E820ListsRamAndTheKvmPages) {
  auto memory = GuestMemory::create(256ull << 20);
  ASSERT_TRUE(memory);
  auto file = buildE820File(*memory);
  ASSERT_EQ(file.size(), 2 * 20u);
  uint64_t address, length;
  std::memcpy(&address, &file[0], 8);
  std::memcpy(&length, &file[8], 8);
  EXPECT_EQ(address, 0u);
  EXPECT_EQ(length, 256ull << 20);
  EXPECT_EQ(get32(&file[16]), 1u);
  std::memcpy(&address, &file[20], 8);
  std::memcpy(&length, &file[28], 8);
  EXPECT_EQ(address, layout::kIdentityMap);
  EXPECT_EQ(address + length, layout::kFourGiB - FirmwareImage::kMaxSize);
  EXPECT_EQ(get32(&file[36]), 2u);
}

TEST(FirmwareFiles, BootOrderByBootindex) {
  auto file = buildBootOrderFile({{5, 2}, {3, 1}, {0x1a, 7}});
  EXPECT_EQ(std::string(file.begin(), file.end()),
            "/pci@i0cf8/scsi@3/disk@0,0\n/pci@i0cf8/scsi@5/disk@0,0\n/pci@i0cf8/scsi@1a/disk@0,0\n");
}

class FirmwareImageTest : public ::testing::Test {
 protected:
  std::string write(const std::string& name, size_t size) {
    auto path = (std::filesystem::path(::testing::TempDir()) / name).string();
    std::ofstream out(path, std::ios::binary);
    std::vector<char> bytes(size);
    for (size_t i = 0; i < size; ++i) bytes[i] = static_cast<char>(i * 7);
    out.write(bytes.data(), static_cast<std::streamsize>(size));
    return path;
  }
};

TEST_F(FirmwareImageTest, ImageEndsAt4GiBAndAt1MiB) {
  auto path = write("bios128.bin", 128 * 1024);
  auto image = FirmwareImage::open(path);
  ASSERT_TRUE(image) << image.error().message();
  EXPECT_EQ(image->guestAddress(), 0xFFFE0000u);
  auto memory = GuestMemory::create(16ull << 20);
  ASSERT_TRUE(image->loadLowCopy(*memory));
  std::vector<uint8_t> low(128 * 1024);
  ASSERT_TRUE(memory->read(0xE0000, low));
  EXPECT_EQ(0, std::memcmp(low.data(), image->data(), low.size()));
}

TEST_F(FirmwareImageTest, BadImagesAreRefused) {
  auto odd = FirmwareImage::open(write("odd.bin", 1000));
  ASSERT_FALSE(odd);
  EXPECT_NE(odd.error().message().find("multiple of 64 KiB"), std::string::npos) << odd.error().message();
  EXPECT_FALSE(FirmwareImage::open(write("big.bin", 512 * 1024)));
  EXPECT_FALSE(FirmwareImage::open(write("empty.bin", 0)));
  auto missing = FirmwareImage::open("/nonexistent/bios.bin");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message().find("/nonexistent/bios.bin"), std::string::npos);
}

TEST_F(FirmwareImageTest, DebianSeaBiosFits) {
  ASSERT_TRUE(std::filesystem::exists(kDefaultBios)) << "Debian package seabios (scripts/install-deps.sh)";
  auto image = FirmwareImage::open(kDefaultBios);
  ASSERT_TRUE(image) << image.error().message();
  EXPECT_EQ(image->guestAddress(), layout::kFourGiB - FirmwareImage::kMaxSize);
}

}  // namespace
}  // namespace vmmd::boot
